"""An organization administrator runs the organization in the browser: users, plans,
domains, operations and the change log, every change recorded with its actor."""

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.urls import reverse

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
    assert "Operations in flight or failed" in page and "provision_user" in page


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
