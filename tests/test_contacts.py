"""An organization's mail contacts (issue #12): the service rules, the quota, the pages,
the dry run's journal, and the journaled actions against the WS-Management endpoint
(tests/support/wsman_server.py) with the dry-run directory: what Exchange then holds."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from provisioning import backends, journal, quotas, services
from provisioning.exchange import ExchangeClient
from provisioning.models import ContactStatus, HostingSpaceQuota, MailContact, Operation
from servicplans.models import QuotaName
from tests.support.views import MANAGERS, PRIMARY, READ_ONLY, login
from tests.test_exchange_client import settings_for

CONTOSO_OU = "OU=Contoso,OU=Microsoft Exchange Hosted Organizations,DC=hosting,DC=test"


def space_of(org):
    return services.hosting_space_of(org)


def contact_usage(org):
    (usage,) = quotas.usage(space_of(org), only=[QuotaName.MAIL_CONTACTS])
    return usage


# --- the service rules -----------------------------------------------------------------------


def test_a_contact_is_stored_reserved_and_journaled(demo):
    contact = services.create_contact(demo, name="  Pat Brown ", email="Pat@Fabrikam.example")
    assert (contact.name, contact.email, contact.status) == (
        "Pat Brown", "Pat@Fabrikam.example", ContactStatus.PENDING)
    operation = Operation.objects.get(action="provision_contact")
    assert (operation.customer_id, operation.scope_id) == (demo.pk, demo.pk)
    assert operation.params == {"contact": contact.pk, "name": "Pat Brown",
                                "email": "Pat@Fabrikam.example"}
    usage = contact_usage(demo)
    assert (usage.used, usage.limit) == (1, 50)
    assert quotas.USAGE[QuotaName.MAIL_CONTACTS](space_of(demo), [demo.pk]) == 1


HOSTILE = [
    ("name", 'Pat "The Boss"', "invalid_character"),
    ("name", "$(Remove-MailContact -Identity *)", "invalid_start"),
    ("name", "Pat $(whoami)", "invalid_character"),
    ("name", "Pat `whoami`", "invalid_character"),
    ("name", "Pat\nBrown", "forbidden_character"),
    ("name", "Pat \u202eBrown", "forbidden_character"),
    ("name", "Pat \u2018Brown\u2019", "invalid_character"),
    ("name", "P" * 65, "max_length"),
    ("name", "", "required"),
    ("email", '"pat"@fabrikam.example', "invalid_character"),
    ("email", "pat$(x)@fabrikam.example", "invalid_character"),
    ("email", "pat@fabrikam.example\u200b", "forbidden_character"),
    ("email", "pat\r\n@fabrikam.example", "forbidden_character"),
    ("email", "pat@fabrikam", "invalid"),
    ("email", "x" * 250 + "@a.example", "max_length"),
]


@pytest.mark.parametrize("field, value, code", HOSTILE)
def test_hostile_names_and_addresses_are_refused_with_a_clear_message(demo, field, value,
                                                                      code):
    arguments = {"name": "Pat Brown", "email": "pat@fabrikam.example", field: value}
    with pytest.raises(ValidationError) as exc:
        services.create_contact(demo, **arguments)
    (error,) = exc.value.error_dict[field]
    assert error.code == code
    assert ("contact name" if field == "name" else "e-mail address") in error.messages[0] \
        or code == "invalid"
    assert not MailContact.objects.exists() and not Operation.objects.filter(
        action="provision_contact").exists()


def test_one_address_and_one_name_per_organization_until_deleted(demo, other_tenant):
    contact = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    with pytest.raises(ValidationError) as exc:
        services.create_contact(demo, name="Patricia", email="PAT@Fabrikam.example")
    assert exc.value.message_dict == {
        "email": ["The organization already has a contact for PAT@Fabrikam.example."]}
    with pytest.raises(ValidationError) as exc:
        services.create_contact(demo, name="pat brown", email="patricia@fabrikam.example")
    assert list(exc.value.message_dict) == ["name"]
    # Another organization may have its own contact of that address.
    services.create_contact(other_tenant["organization"], name="Pat Brown",
                            email="pat@fabrikam.example")
    services.delete_contact(contact)
    again = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    assert again.pk != contact.pk


def test_the_quota_refuses_with_its_figures_and_deleting_frees_a_place(demo):
    HostingSpaceQuota.objects.create(hosting_space=space_of(demo), quota="mail_contacts",
                                     limit=1)
    first = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    with pytest.raises(ValidationError) as exc:
        services.create_contact(demo, name="Lee Chen", email="lee@fabrikam.example")
    (error,) = exc.value.error_dict["name"]
    assert error.code == "quota"
    assert error.params == {"quota": "mail_contacts", "used": 1, "limit": 1, "requested": 1,
                            "customer": demo.pk}
    assert error.messages == ["The organization's quota for mail contacts is reached: 1 of 1 "
                              "used, 1 more requested."]
    services.delete_contact(first)
    assert contact_usage(demo).used == 0
    services.create_contact(demo, name="Lee Chen", email="lee@fabrikam.example")


def test_the_resellers_limit_holds_across_its_tree(demo, reseller):
    HostingSpaceQuota.objects.create(hosting_space=space_of(reseller), quota="mail_contacts",
                                     limit=1)
    services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    with pytest.raises(ValidationError) as exc:
        services.create_contact(demo, name="Lee Chen", email="lee@fabrikam.example")
    assert "The reseller's quota for mail contacts is reached" in exc.value.messages[0]
    usage = quotas.usage_many([space_of(reseller)], only=[QuotaName.MAIL_CONTACTS])
    assert usage[space_of(reseller).pk][0].used == 1


def test_a_suspended_organization_gets_no_contacts_and_keeps_them(demo):
    contact = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    services.set_enabled(demo, False)
    with pytest.raises(ValidationError, match="suspended"):
        services.create_contact(demo, name="Lee Chen", email="lee@fabrikam.example")
    with pytest.raises(ValidationError, match="suspended"):
        services.delete_contact(contact)
    assert MailContact.objects.get(pk=contact.pk).status == ContactStatus.PENDING


def test_deleting_a_contact_journals_what_exchange_needs(demo):
    contact = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    services.delete_contact(contact)
    services.delete_contact(contact)  # once only
    (operation,) = Operation.objects.filter(action="delete_contact")
    assert operation.params == {"contact": contact.pk, "name": "Pat Brown",
                                "email": "pat@fabrikam.example", "guid": None}
    assert MailContact.objects.get(pk=contact.pk).status == ContactStatus.DELETED


def test_deleting_the_organization_deletes_its_contacts(demo):
    space = space_of(demo)
    services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    assert contact_usage(demo.parent).used == 1
    services.delete_customer(demo)
    assert set(MailContact.objects.values_list("status", flat=True)) == {ContactStatus.DELETED}
    # Its hosting space is deleted with it, and nothing of it counts any more, there or in
    # its reseller's space.
    assert space_of(demo) is None
    (usage,) = quotas.usage(space, only=[QuotaName.MAIL_CONTACTS])
    assert usage.used == 0
    assert contact_usage(demo.parent).used == 0


def test_the_change_log_records_contacts(demo):
    from provisioning import changelog

    contact = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    services.delete_contact(contact)
    entries = changelog.entries_of(demo).filter(object_id=str(contact.pk))
    assert entries.count() == 2


# --- the pages ---------------------------------------------------------------------------------


def test_the_list_shows_the_organizations_contacts_only(client, demo, other_tenant):
    services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    services.create_contact(other_tenant["organization"], name="Fabrikam Secret",
                            email="secret@litware.example")
    page = login(client, PRIMARY).get(reverse("contacts", args=[demo.pk])).content.decode()
    assert "Pat Brown" in page and "Fabrikam Secret" not in page
    assert reverse("contact_create", args=[demo.pk]) in page


def test_a_manager_creates_and_deletes_a_contact(client, demo, contoso_peers):
    login(client, "contoso-peer-user-manager")
    response = client.post(reverse("contact_create", args=[demo.pk]),
                           {"name": "Pat Brown", "email": "pat@fabrikam.example"})
    assert response.status_code == 302
    contact = MailContact.objects.get(organization=demo)
    assert Operation.objects.filter(action="provision_contact",
                                    requested_by__username="contoso-peer-user-manager").exists()
    response = client.post(reverse("contact_delete", args=[demo.pk, contact.pk]))
    assert response.status_code == 302
    assert MailContact.objects.get(pk=contact.pk).status == ContactStatus.DELETED
    # A deleted contact is gone from the pages.
    assert client.get(reverse("contact_delete", args=[demo.pk, contact.pk])).status_code == 404


def test_the_form_shows_the_rules_message_and_the_quota(client, demo):
    login(client, PRIMARY)
    url = reverse("contact_create", args=[demo.pk])
    response = client.post(url, {"name": "Pat $(whoami)", "email": "pat@fabrikam.example"})
    assert response.status_code == 200
    assert "The contact name cannot contain" in response.context["form"].errors["name"][0]
    HostingSpaceQuota.objects.create(hosting_space=space_of(demo), quota="mail_contacts",
                                     limit=0)
    response = client.post(url, {"name": "Pat Brown", "email": "pat@fabrikam.example"})
    assert "quota for mail contacts is reached" in response.context["form"].errors["name"][0]


def test_a_read_only_peer_sees_no_create_or_delete(client, demo, contoso_peers):
    services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    page = login(client, READ_ONLY).get(reverse("contacts", args=[demo.pk])).content.decode()
    assert "Pat Brown" in page
    assert reverse("contact_create", args=[demo.pk]) not in page
    assert "/delete/" not in page
    assert client.post(reverse("contact_create", args=[demo.pk]),
                       {"name": "X", "email": "x@y.example"}).status_code == 403
    assert READ_ONLY not in MANAGERS


@pytest.mark.parametrize("login_name", [PRIMARY, "reseller"])
def test_another_tenants_contact_is_404(client, demo, other_tenant, login_name):
    foreign = services.create_contact(other_tenant["organization"], name="Fabrikam Secret",
                                      email="secret@litware.example")
    login(client, login_name)
    for org in (demo, other_tenant["organization"]):
        url = reverse("contact_delete", args=[org.pk, foreign.pk])
        assert client.get(url).status_code == 404
        assert client.post(url).status_code == 404
    assert MailContact.objects.get(pk=foreign.pk).status == ContactStatus.PENDING


def test_the_dashboard_shows_the_contacts_quota(client, demo):
    services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    response = login(client, PRIMARY).get(reverse("organization", args=[demo.pk]))
    usage = {q.quota: q for q in response.context["usage"]}
    assert (usage["mail_contacts"].used, usage["mail_contacts"].limit) == (1, 50)


# --- the dry run -------------------------------------------------------------------------------


def run_demo_operations(demo, capture):
    with capture(execute=True):
        for operation in Operation.objects.filter(scope=demo).order_by("pk"):
            journal.execute(operation.pk)
    assert set(Operation.objects.filter(scope=demo).values_list("state", flat=True)) == {
        "succeeded"}, list(Operation.objects.values_list("action", "last_error"))


def test_the_dry_run_journals_what_it_would_send(demo, eager_dryrun,
                                                 django_capture_on_commit_callbacks):
    run_demo_operations(demo, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        contact = services.create_contact(demo, name="Pat O'Brien, Sales",
                                          email="pat@fabrikam.example")
    operation = Operation.objects.get(action="provision_contact")
    assert operation.state == "succeeded", operation.last_error
    sent = [(e["cmdlet"], e["params"]) for e in operation.backend_log
            if e["backend"] == "exchange"]
    ou = CONTOSO_OU
    dn = "CN=Pat O'Brien\\, Sales," + ou
    assert sent == [
        ("Get-MailContact", {"Identity": dn}),
        ("New-MailContact", {"Name": "Pat O'Brien, Sales",
                             "ExternalEmailAddress": "pat@fabrikam.example",
                             "OrganizationalUnit": ou}),
        ("Set-MailContact", {"Identity": dn, "CustomAttribute1": "Contoso"}),
    ]
    assert [s["name"] for s in operation.steps] == ["mail_contact", "tenant_tag"]
    assert MailContact.objects.get(pk=contact.pk).status == ContactStatus.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_contact(contact)
    operation = Operation.objects.get(action="delete_contact")
    assert operation.state == "succeeded", operation.last_error
    # The dry run's Exchange is empty: the contact is looked up, and gone is success.
    assert [e["cmdlet"] for e in operation.backend_log] == ["Get-MailContact"]


# --- the actions against the WS-Management endpoint -------------------------------------------


@pytest.fixture
def exchange(endpoint, eager_dryrun, monkeypatch, demo, django_capture_on_commit_callbacks):
    """The dry-run directory, and the real Exchange client talking to the endpoint; the
    demo provisioned (its address lists are in the endpoint)."""
    client = ExchangeClient(settings_for(endpoint))
    monkeypatch.setattr(backends, "exchange_for", lambda customer, services=None: client)
    run_demo_operations(demo, django_capture_on_commit_callbacks)
    return endpoint


def held(endpoint):
    return endpoint.snapshot()["exchange"]


def test_a_contact_is_made_tagged_listed_and_removed(demo, exchange,
                                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        contact = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    operation = Operation.objects.get(action="provision_contact")
    assert operation.state == "succeeded", operation.last_error
    (made,) = held(exchange)["mail_contacts"]
    assert made["DistinguishedName"] == "CN=Pat Brown," + CONTOSO_OU
    assert (made["ExternalEmailAddress"], made["CustomAttribute1"]) == (
        "SMTP:pat@fabrikam.example", "Contoso")
    members = held(exchange)["address_list_members"]
    assert "Pat Brown" in members["Contoso - All Users"]
    assert "Pat Brown" in members["Contoso - GAL"]
    assert "Pat Brown" not in members["Contoso - Rooms"]
    contact.refresh_from_db()
    assert (str(contact.exchange_guid), contact.status) == (made["Guid"], ContactStatus.ACTIVE)

    # Run again (a lost task message, a retry): the organization's own contact is adopted.
    with django_capture_on_commit_callbacks(execute=True):
        again = journal.enqueue(demo, "provision_contact", contact=contact.pk)
    again.refresh_from_db()
    assert again.state == "succeeded", again.last_error
    assert again.steps[0]["result"] == {"guid": made["Guid"], "created": False}
    assert len(held(exchange)["mail_contacts"]) == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.delete_contact(contact)
    operation = Operation.objects.get(action="delete_contact")
    assert operation.state == "succeeded", operation.last_error
    assert operation.params["guid"] == made["Guid"]
    assert held(exchange)["mail_contacts"] == []
    assert exchange.violations == []


def test_a_failed_tag_removes_only_the_contact_the_operation_made(
        demo, exchange, django_capture_on_commit_callbacks):
    exchange.fail_next("error", cmdlet="Set-MailContact", message="Access is denied.")
    with django_capture_on_commit_callbacks(execute=True):
        contact = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    operation = Operation.objects.get(action="provision_contact")
    assert operation.state == "failed"
    assert held(exchange)["mail_contacts"] == []
    assert [s["name"] for s in operation.steps] == ["rollback"]
    assert MailContact.objects.get(pk=contact.pk).status == ContactStatus.FAILED
    # The retry makes it again.
    with django_capture_on_commit_callbacks(execute=True):
        services.retry_operation(operation)
    operation.refresh_from_db()
    assert operation.state == "succeeded", operation.last_error
    assert len(held(exchange)["mail_contacts"]) == 1
    assert MailContact.objects.get(pk=contact.pk).status == ContactStatus.ACTIVE


def test_an_address_another_organization_has_in_exchange_fails_and_keeps_theirs(
        demo, exchange, django_capture_on_commit_callbacks):
    exchange.exchange.mail_contacts.clear()
    client = ExchangeClient(settings_for(exchange))
    client.run("New-MailContact", {
        "Name": "Theirs", "ExternalEmailAddress": "pat@fabrikam.example",
        "OrganizationalUnit": CONTOSO_OU.replace("OU=Contoso", "OU=Fabrikam")})
    with django_capture_on_commit_callbacks(execute=True):
        services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    operation = Operation.objects.get(action="provision_contact")
    assert operation.state == "failed"
    assert "proxy address" in operation.last_error
    assert [c["Name"] for c in held(exchange)["mail_contacts"]] == ["Theirs"]


def test_the_teardown_removes_the_contacts_after_the_mailboxes(
        demo, exchange, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
        services.create_contact(demo, name="Lee Chen", email="lee@tailspin.example")
    assert len(held(exchange)["mail_contacts"]) == 2
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_customer(demo)
    teardown = Operation.objects.get(action="delete_organization")
    assert teardown.state == "succeeded", teardown.last_error
    state = held(exchange)
    assert state["mail_contacts"] == []
    assert not [r for r in state["address_lists"] if r["Name"].startswith("Contoso - ")]
    steps = [s["name"] for s in teardown.steps]
    contacts = [i for i, name in enumerate(steps) if name.startswith("mail_contact_removed:")]
    mailboxes = [i for i, name in enumerate(steps) if name.startswith("mailbox_disconnected:")]
    assert len(contacts) == 2
    assert max(mailboxes) < min(contacts) < max(contacts) < steps.index(
        "address_book_policy_removed")
    assert exchange.violations == []
