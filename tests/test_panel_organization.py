"""An organization administrator runs the organization in the browser: users, plans,
domains, operations and the change log, every change recorded with its actor."""

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from panel.views.organizations import ChangeLogView
from provisioning import constants as c
from provisioning import journal, services
from provisioning.models import Customer, Event, Operation
from servicplans.models import ServicePlan
from tests.support.views import (
    ADMINS,
    HELPDESK,
    MANAGERS,
    NEW_PASSWORD,
    PASSWORD,
    ViewTestCases,
    form_errors,
    login,
)


@pytest.fixture
def admin_client(client, demo):
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    return client


@pytest.fixture
def megan(demo):
    return demo.children.get(upn="megan@contoso.example")


def test_dashboard_shows_quota_bars_events_and_open_operations(admin_client, demo):
    page = admin_client.get(reverse("organization", args=[demo.pk])).content.decode()
    for label in ("Users", "Mailboxes", "Domains", "Mailbox disk space (MB)"):
        assert label in page
    assert "3 <small>/ 25</small>" in page  # three demo users of 25
    assert "Operations in flight or failed" in page and "Provision user" in page


class TestUserPages(ViewTestCases.PrimaryObjectViewTestCase):
    list_url, detail_url, create_url = "users", "user", "user_create"
    edit_url, delete_url, object_kwarg = "user_edit", "user_delete", "user_id"
    create_logins = edit_logins = delete_logins = MANAGERS
    create_data = {"display_name": "Adele Vance", "local_part": "adele",
                   "domain": "contoso.example", "password": NEW_PASSWORD,
                   "service_plan": lambda: ServicePlan.objects.get(name="Gold").pk}
    created = {"upn": "adele@contoso.example", "service_plan__name": "Gold"}
    edit_data = {"display_name": "Lynne Renamed"}
    edited = {"name": "Lynne Renamed"}

    def live_objects(self, organization):
        return Customer.objects.filter(parent=organization).users().live()

    def make_object(self, organization):
        return services.create_user(organization, display_name="Lynne Robbins",
                                    local_part="lynne", domain="contoso.example",
                                    password=PASSWORD)

    def foreign_object(self, other_tenant):
        return other_tenant["user"]

    def text_of(self, obj):
        return obj.upn

    def test_create_user_states_the_password_rules_and_creates_it(self, admin_client, demo):
        url = reverse("user_create", args=[demo.pk])
        page = admin_client.get(url).content.decode()
        assert "at least 10 characters" in page
        gold = ServicePlan.objects.get(name="Gold")
        response = admin_client.post(url, {"display_name": "Adele Vance", "local_part": "adele",
                                           "domain": "contoso.example", "service_plan": gold.pk,
                                           "password": NEW_PASSWORD})
        user = Customer.objects.get(upn="adele@contoso.example")
        assert response.status_code == 302 and response.url == reverse("user", args=[demo.pk,
                                                                                      user.pk])
        assert user.service_plan == gold
        assert Event.objects.get(customer=user, event_type_id=c.CREATED).actor.username == \
            "contoso-admin"
        assert Operation.objects.get(customer=user).action == "provision_user"

    def test_service_errors_come_back_on_the_form(self, admin_client, demo):
        response = admin_client.post(reverse("user_create", args=[demo.pk]), {
            "display_name": "Megan Again", "local_part": "megan", "domain": "contoso.example",
            "password": "short"})
        assert response.status_code == 200
        errors = response.context["form"].errors
        assert "password" in errors
        response = admin_client.post(reverse("user_create", args=[demo.pk]), {
            "display_name": "Megan Again", "local_part": "megan", "domain": "contoso.example",
            "password": NEW_PASSWORD})
        assert "already in use" in str(response.context["form"].errors["local_part"])

    def test_edit_reset_plan_disable_enable_delete(self, admin_client, demo, megan):
        base = [demo.pk, megan.pk]
        assert admin_client.post(reverse("user_edit", args=base),
                                 {"display_name": "Megan B."}).status_code == 302
        assert admin_client.post(reverse("user_password", args=base), {
            "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
        silver = ServicePlan.objects.get(name="Silver")
        assert admin_client.post(reverse("user_plan", args=base),
                                 {"service_plan": silver.pk}).status_code == 302
        # Destructive actions ask first: GET only shows the question.
        confirm = admin_client.get(reverse("user_disable", args=base))
        assert b"Disable Megan B. (megan@contoso.example)?" in confirm.content
        megan.refresh_from_db()
        assert megan.status_id == c.ENABLED
        admin_client.post(reverse("user_disable", args=base))
        megan.refresh_from_db()
        assert (megan.name, megan.service_plan, megan.status_id) == ("Megan B.", silver, c.DISABLED)
        admin_client.post(reverse("user_enable", args=base))
        admin_client.post(reverse("user_delete", args=base))
        megan.refresh_from_db()
        assert megan.status_id == c.DELETED
        assert list(Operation.objects.filter(customer=megan).order_by("pk").values_list(
            "action", flat=True)) == ["provision_user", "rename_user", "reset_password",
                                      "change_plan", "set_user_enabled", "set_user_enabled",
                                      "delete_user"]
        assert set(Operation.objects.filter(customer=megan).exclude(action="provision_user")
                   .values_list("requested_by__username", flat=True)) == {"contoso-admin"}
        # A deleted user is gone from the list and its pages.
        assert admin_client.get(reverse("user", args=base)).status_code == 404


def test_the_change_log_shows_before_and_after_with_the_actor(admin_client, demo, megan):
    admin_client.post(reverse("user_edit", args=[demo.pk, megan.pk]),
                      {"display_name": "Megan Renamed"})
    entry = LogEntry.objects.get_for_object(megan).filter(action=LogEntry.Action.UPDATE).first()
    assert entry.actor.username == "contoso-admin"
    page = admin_client.get(reverse("changelog", args=[demo.pk])).content.decode()
    assert "Megan Bowen" in page and "Megan Renamed" in page and "contoso-admin" in page


# --- The change log reads as names and labels, a request's changes in one group ---------

INTERNALS = ("lft", "rght", "tree_id", "level", "name_key", "Lft", "Tree id", "Name key",
             "provisioning.CustomerAsset.None", "Object guid", "objectGUID")


@pytest.fixture
def tailspin_signed_up(client, reseller):
    """Tailspin, signed up through the reseller's page, and one user its administrator
    added through its own."""
    from servicplans.models import HostingPlan

    login(client, "reseller")
    response = client.post(reverse("sign_up"), {
        "reseller": reseller.pk, "name": "Tailspin", "primary_domain": "tailspin.example",
        "admin_username": "tailspin-admin", "admin_password": NEW_PASSWORD,
        "hosting_plan": HostingPlan.objects.get(name="Business Premium").pk,
        "service_plans": [ServicePlan.objects.get(name="Gold").pk]})
    assert response.status_code == 302, form_errors(response)
    org = Customer.objects.organizations().get(name="Tailspin")
    login(client, "tailspin-admin")
    response = client.post(reverse("user_create", args=[org.pk]), {
        "display_name": "Adele Vance", "local_part": "adele", "domain": "tailspin.example",
        "password": NEW_PASSWORD, "service_plan": ServicePlan.objects.get(name="Gold").pk})
    assert response.status_code == 302, form_errors(response)
    return org


def change_log(client, org, **query):
    response = client.get(reverse("changelog", args=[org.pk]), query)
    assert response.status_code == 200
    return response


def test_the_change_log_shows_labels_and_names_not_internals(client, tailspin_signed_up):
    page = change_log(client, tailspin_signed_up).content.decode()
    for internal in INTERNALS:
        assert internal not in page, internal
    # Field labels (the model's verbose names), not attribute names.
    assert "<strong>Customer type</strong>" in page and "<strong>UPN</strong>" in page
    assert "customer_type" not in page and "service_plan" not in page
    # A foreign key by the related object's name: the user's organization, its plan.
    adele = tailspin_signed_up.children.get(upn="adele@tailspin.example")
    assert "<strong>Parent</strong>: Tailspin" in page
    assert "<strong>Service plan</strong>: Gold" in page
    assert "<strong>Hosting plan</strong>: Business Premium" in page
    assert f"<strong>Parent</strong>: {tailspin_signed_up.pk}<" not in page
    assert f"<strong>Customer</strong>: {adele.pk}<" not in page


def test_entries_recorded_before_the_exclusions_hide_internals_too(admin_client, demo, megan):
    """Entries written before the internal fields were excluded from the record still
    carry them: the page leaves them out, and an entry with nothing else is not shown."""
    from django.contrib.contenttypes.models import ContentType

    def old_entry(changes):
        return LogEntry.objects.create(
            content_type=ContentType.objects.get_for_model(Customer), object_pk=str(megan.pk),
            object_id=megan.pk, object_repr=str(megan), action=LogEntry.Action.UPDATE,
            changes=changes)

    old_entry({"lft": ["2", "4"], "rght": ["3", "5"], "tree_id": ["1", "1"],
               "level": ["1", "1"], "name_key": ["megan bowen", "megan b"],
               "updated": ["2026-01-01 10:00:00", "2026-01-02 10:00:00"],
               "assets": ["None", "provisioning.CustomerAsset.None"],
               "name": ["Megan Bowen", "Megan B"], "status": ["Enabled", "Disabled"]})
    only_internals = old_entry({"lft": ["4", "6"], "updated": ["2026-01-02", "2026-01-03"]})
    response = change_log(admin_client, demo)
    page = response.content.decode()
    for internal in INTERNALS + ("Updated", "Assets"):
        assert internal not in page, internal
    assert "<strong>Name</strong>: <span class=\"muted\">Megan Bowen</span> → Megan B" in page
    assert "<strong>Status</strong>: <span class=\"muted\">Enabled</span> → Disabled" in page
    shown = [row.entry.pk for group in response.context["groups"] for row in group.rows]
    assert only_internals.pk not in shown


def test_a_sign_up_is_one_group_under_its_request(client, tailspin_signed_up):
    response = change_log(client, tailspin_signed_up)
    groups = response.context["groups"]
    sign_up = [g for g in groups if g.title == "Sign-up of Tailspin"]
    assert len(sign_up) == 1 and sign_up[0].actor == "reseller"
    nouns = {row.noun for row in sign_up[0].rows}
    assert {"Organization", "Domain", "Hosting space", "Panel account", "Login"} <= nouns
    assert len({row.entry.cid for row in sign_up[0].rows}) == 1
    new_user = [g for g in groups if g.title == "New user adele@tailspin.example"]
    assert len(new_user) == 1 and new_user[0].actor == "tailspin-admin"
    page = response.content.decode()
    assert page.count("Sign-up of Tailspin") == 1 and "by reseller" in page


def test_the_change_log_pages_with_a_capped_size(admin_client, demo, megan):
    for i in range(12):
        admin_client.post(reverse("user_edit", args=[demo.pk, megan.pk]),
                          {"display_name": f"Megan {i}"})
    total = LogEntry.objects.filter(content_type__model="customer",
                                    object_id=megan.pk).count()
    first = change_log(admin_client, demo, per_page=5)
    assert len(first.context["page"].object_list) == 5
    assert first.context["page"].paginator.count >= total
    assert "Megan 11" in first.content.decode() and "Megan 2<" not in first.content.decode()
    assert "?per_page=5&amp;page=2" in first.content.decode()
    second = change_log(admin_client, demo, per_page=5, page=2)
    assert "Megan 6" in second.content.decode() and "Megan 11" not in second.content.decode()
    # However many are asked for, a page holds at most the cap.
    capped = change_log(admin_client, demo, per_page=100000)
    assert len(capped.context["page"].object_list) <= ChangeLogView.max_per_page
    assert capped.context["page"].paginator.per_page == ChangeLogView.max_per_page
    assert change_log(admin_client, demo, per_page="x").context["page"].paginator.per_page \
        == ChangeLogView.per_page


def test_another_tenants_sign_up_never_appears_in_the_change_log(client, demo,
                                                                 tailspin_signed_up):
    # Browsers of their own: the flash messages of the sign-up must not follow.
    contoso = login(Client(), "contoso-admin")
    page = change_log(contoso, demo, per_page=100).content.decode()
    assert "Tailspin" not in page and "tailspin" not in page and "Adele" not in page
    tailspin = login(Client(), "tailspin-admin")
    page = change_log(tailspin, tailspin_signed_up, per_page=100).content.decode()
    assert "Contoso" not in page and "contoso" not in page and "Megan" not in page
    assert tailspin.get(reverse("changelog", args=[demo.pk])).status_code == 404


class TestDomainPages(ViewTestCases.ListViewTestMixin, ViewTestCases.CreateViewTestMixin):
    # The form to add a domain is on the list page.
    list_url = create_url = "domains"
    create_logins = ADMINS
    create_data = {"name": "Sales.Contoso.Example", "asset_type": c.SECONDARY_DOMAIN}
    created = {"name": "sales.contoso.example", "asset_type_id": c.SECONDARY_DOMAIN}

    def live_objects(self, organization):
        return organization.assets.exclude(status_id=c.DELETED)

    def make_object(self, organization):
        return services.add_domain(organization, "extra.contoso.example")

    def foreign_object(self, other_tenant):
        return other_tenant["organization"].assets.get(asset_type_id=c.PRIMARY_DOMAIN)

    def text_of(self, obj):
        return obj.name

    def test_domains_page_shows_primary_and_adds_a_secondary(self, admin_client, demo):
        url = reverse("domains", args=[demo.pk])
        assert "Primary" in admin_client.get(url).content.decode()
        response = admin_client.post(url, {"name": "Sales.Contoso.Example",
                                           "asset_type": c.SECONDARY_DOMAIN})
        assert response.status_code == 302
        assert demo.assets.filter(name="sales.contoso.example",
                                  asset_type_id=c.SECONDARY_DOMAIN).exists()
        duplicate = admin_client.post(url, {"name": "sales.contoso.example",
                                            "asset_type": c.SECONDARY_DOMAIN})
        assert "already in use" in duplicate.content.decode()

    def test_helpdesk_cannot_add_domains(self, client, demo):
        client.force_login(get_user_model().objects.get(username=HELPDESK))
        url = reverse("domains", args=[demo.pk])
        assert "Add a domain" not in client.get(url).content.decode()
        assert client.post(url, {"name": "x.example", "asset_type": c.SECONDARY_DOMAIN}
                           ).status_code == 403


def test_failed_operation_retry_asks_for_a_password_when_it_needs_one(admin_client, demo,
                                                                      megan, eager_dryrun,
                                                                      django_capture_on_commit_callbacks):
    operation = Operation.objects.get(customer=megan, action="provision_user")
    Operation.objects.filter(pk=operation.pk).update(state="failed", last_error="LDAP down")
    # The organization's earlier operations ran (operations of one scope run in order).
    with django_capture_on_commit_callbacks(execute=True):
        for earlier in Operation.objects.filter(scope=demo, pk__lt=operation.pk):
            journal.execute(earlier.pk)
    url = reverse("operation_retry", args=[demo.pk, operation.pk])
    listing = admin_client.get(reverse("operations", args=[demo.pk]) + "?state=failed")
    assert "LDAP down" in listing.content.decode() and url in listing.content.decode()
    page = admin_client.get(url).content.decode()
    assert "New password" in page
    assert "secret" in admin_client.post(url, {}).context["form"].errors
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"secret": NEW_PASSWORD})
    assert response.status_code == 302
    operation.refresh_from_db()
    assert operation.state == "succeeded", operation.last_error


def test_reseller_signs_up_suspends_and_resumes(client, reseller):
    client.force_login(get_user_model().objects.get(username="reseller"))
    from servicplans.models import HostingPlan

    response = client.post(reverse("sign_up"), {
        "reseller": reseller.pk, "name": "Tailspin", "primary_domain": "tailspin.example",
        "admin_username": "tailspin-admin", "admin_password": NEW_PASSWORD,
        "hosting_plan": HostingPlan.objects.get(name="Business Premium").pk,
        "service_plans": [ServicePlan.objects.get(name="Gold").pk]})
    org = Customer.objects.organizations().get(name="Tailspin")
    assert response.status_code == 302 and response.url == reverse("organization",
                                                                   args=[org.pk])
    assert org.parent == reseller
    client.post(reverse("organization_suspend", args=[org.pk]))
    org.refresh_from_db()
    assert org.status_id == c.DISABLED
    client.post(reverse("organization_resume", args=[org.pk]))
    org.refresh_from_db()
    assert org.status_id == c.ENABLED
    spaces = client.get(reverse("hosting_spaces")).content.decode()
    assert "Tailspin" in spaces and "Business Premium" in spaces


def test_a_reseller_cannot_sign_up_under_another_reseller(client, reseller, other_tenant):
    client.force_login(get_user_model().objects.get(username="reseller"))
    from servicplans.models import HostingPlan

    response = client.post(reverse("sign_up"), {
        "reseller": other_tenant["reseller"].pk, "name": "Sneaky",
        "primary_domain": "sneaky.example", "admin_username": "sneaky",
        "admin_password": NEW_PASSWORD,
        "hosting_plan": HostingPlan.objects.get(name="Business Basic").pk})
    assert response.status_code == 200
    assert not Customer.objects.filter(name="Sneaky").exists()


def test_events_filter_by_type_and_date_and_export_csv(client, demo):
    client.force_login(get_user_model().objects.get(username="reseller"))
    url = reverse("events")
    page = client.get(url, {"event_type": c.PLAN_SIGNUP}).context["table"]
    assert {row.record.event_type_id for row in page.paginated_rows} == {c.PLAN_SIGNUP}
    assert not list(client.get(url, {"until": "2000-01-01"}).context["table"].paginated_rows)
    response = client.get(url, {"event_type": c.CREATED, "export": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("occurred_at,event_type")
    assert all(",Created," in line for line in lines[1:]) and len(lines) > 3


def test_csv_export_neutralises_formulas(client, demo):
    from provisioning import services

    services.create_user(demo, display_name="=HYPERLINK(1)", local_part="formula",
                         domain="contoso.example", password=NEW_PASSWORD)
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    body = b"".join(client.get(reverse("organization_events", args=[demo.pk]),
                               {"export": "csv"}).streaming_content).decode()
    assert "'=HYPERLINK(1)" in body


def test_the_users_list_shows_which_users_are_in_the_directory(admin_client, demo):
    import uuid

    Customer.objects.filter(upn="megan@contoso.example").update(object_guid=uuid.uuid4())
    html = admin_client.get(reverse("users", args=[demo.pk])).content.decode()
    rows = {upn: row for row in html.split("<tr")[1:]
            for upn in ("megan@contoso.example", "alex@contoso.example") if upn in row}
    assert "Provisioned" in rows["megan@contoso.example"]
    assert "Pending" not in rows["megan@contoso.example"]
    assert "Pending" in rows["alex@contoso.example"]


# --- Quotas a provider can read ----------------------------------------------------------

def test_quota_usage_reads_zero_as_not_included_and_none_as_unlimited():
    from provisioning.quotas import QuotaUsage

    assert (QuotaUsage("q", "Q", 0, 0).percent, QuotaUsage("q", "Q", 0, 0).not_included) == (
        0, True)
    assert QuotaUsage("q", "Q", 2, 0).percent == 100  # a limit lowered below what is used
    assert (QuotaUsage("q", "Q", 7, None).percent, QuotaUsage("q", "Q", 7, None).unlimited) \
        == (0, True)
    assert QuotaUsage("q", "Q", 3, 4).percent == 75


@pytest.fixture
def tailspin(reseller):
    """An organization without users whose space offers no mailboxes and unlimited users."""
    from provisioning.models import HostingSpaceQuota
    from servicplans.models import HostingPlan

    org = services.sign_up_organization(
        reseller=reseller, name="Tailspin", primary_domain="tailspin.example",
        admin_username="tailspin-admin", admin_password=PASSWORD,
        hosting_plan=HostingPlan.objects.get(name="Business Basic"),
        service_plans=ServicePlan.objects.filter(name="Gold"))
    space = org.hosting_spaces.get()
    HostingSpaceQuota.objects.create(hosting_space=space, quota="mailboxes", limit=0)
    HostingSpaceQuota.objects.create(hosting_space=space, quota="users", unlimited=True)
    return org


def test_the_dashboard_says_not_included_and_unlimited_without_an_alarm(client, tailspin):
    client.force_login(get_user_model().objects.get(username="tailspin-admin"))
    page = client.get(reverse("organization", args=[tailspin.pk])).content.decode()
    assert 'aria-label="Mailboxes: not included"' in page
    assert "<small>Not included</small>" in page
    assert "0 <small>/ unlimited</small>" in page
    assert "bar full" not in page


def test_hosting_spaces_say_not_included_for_a_limit_of_zero(client, demo, tailspin):
    client.force_login(get_user_model().objects.get(username="reseller"))
    page = client.get(reverse("hosting_spaces")).content.decode()
    # Business Basic offers no organizations of their own: 0 of 0 is not an alarm.
    assert 'aria-label="Organizations: not included"' in page
    assert "unlimited" in page
    assert "bar full" not in page


# --- Wording by role ---------------------------------------------------------------------

def test_a_customer_administrator_is_not_spoken_to_as_a_reseller(admin_client, demo):
    for name in ("organizations", "events"):
        page = admin_client.get(reverse(name)).content.decode()
        assert "you sell" not in page and "your customers" not in page, name
    assert "Your organization" in admin_client.get(reverse("organizations")).content.decode()
    assert "What happened in your organization" in admin_client.get(
        reverse("events")).content.decode()


def test_a_reseller_reads_about_what_it_sells(client, demo):
    client.force_login(get_user_model().objects.get(username="reseller"))
    assert "Every organization you sell" in client.get(reverse("organizations")).content.decode()
    assert "What happened to your customers" in client.get(reverse("events")).content.decode()


def test_a_reseller_changes_the_hosting_plan_in_the_panel_with_the_apis_rule(client, demo):
    from provisioning.models import HostingSpace
    from servicplans.models import HostingPlan

    login(client, "reseller")
    url = reverse("organization_hosting_plan", args=[demo.pk])
    premium = HostingPlan.objects.get(name="Business Premium")
    assert client.post(url, {"hosting_plan": premium.pk}).status_code == 302
    assert HostingSpace.objects.get(customer=demo).hosting_plan == premium
    for n in range(3):
        services.add_domain(demo, f"d{n}.contoso.example")
    basic = HostingPlan.objects.get(name="Business Basic")
    response = client.post(url, {"hosting_plan": basic.pk})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "hosting_plan": ["Domains: the plan Business Basic allows 3, Contoso uses 4."]}
    assert HostingSpace.objects.get(customer=demo).hosting_plan == premium


def test_a_reseller_deletes_an_organization_in_the_panel(client, demo):
    login(client, "reseller")
    url = reverse("organization_delete", args=[demo.pk])
    assert "Delete Contoso?" in client.get(url).content.decode()
    assert client.post(url).url == reverse("organizations")
    assert Customer.objects.get(pk=demo.pk).status_id == c.DELETED
    assert client.get(reverse("organization", args=[demo.pk])).status_code == 404
