"""A mailbox's mail flow (issue #12): additional SMTP addresses on the organization's own
domains, the primary address, and forwarding; the rules of the services, the pages, and
what the dry-run backend journals for Exchange. What the Exchange stand-in holds after the
real client's calls is in tests/test_exchange_mail_flow.py."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from provisioning import constants as c
from provisioning import journal, services
from provisioning.models import CustomerAsset, MailAddress, MailForwarding, Operation
from tests.support.views import MANAGER, PRIMARY, READ_ONLY, login

HOSTILE = [
    "megan$(Remove-Mailbox)@contoso.example",
    "megan'; Remove-Mailbox x; '@contoso.example",
    'megan"@contoso.example',
    "megan`whoami`@contoso.example",
    "megan\n@contoso.example",
    "meg\nan@contoso.example",
    "megan@contoso.example\nx@contoso.example",
    "meg\u202ean@contoso.example",
    "meg\u200ban@contoso.example",
    "mеgan@contoso.example",  # Cyrillic е
    "megan@contoso.example;x@contoso.example",
    "megan@contoso.example,",
    "megan @contoso.example",
    "megan@@contoso.example",
    "@contoso.example",
    "megan@",
    "megan@contoso",
    "megan@cont$oso.example",
    "a" * 65 + "@contoso.example",
    "a@" + "b" * 250 + ".example",
]


@pytest.fixture
def megan(demo):
    return demo.children.get(upn="megan@contoso.example")


@pytest.fixture
def alex(demo):
    return demo.children.get(upn="alex@contoso.example")


@pytest.fixture
def sales_domain(demo):
    return services.add_domain(demo, "sales.contoso.example")


def addresses(user):
    return sorted(user.mail_addresses.values_list("address", "primary"))


# --- The rule for an address -------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_the_rule_refuses_hostile_addresses(value):
    from provisioning import names

    with pytest.raises(ValidationError) as caught:
        names.MAILBOX_ADDRESS.clean(value)
    assert caught.value.code in {"invalid", "invalid_character", "forbidden_character",
                                 "max_length"}


def test_the_rule_keeps_the_local_part_and_lowers_the_domain():
    from provisioning import names

    assert names.MAILBOX_ADDRESS.clean(" Megan.Bowen+news@Sales.Contoso.EXAMPLE. ") == (
        "Megan.Bowen+news@sales.contoso.example")
    assert names.clean("mailbox_address", "o'brien@contoso.example") == "o'brien@contoso.example"


# --- E-mail addresses: the service -------------------------------------------------------


def test_addresses_on_the_organizations_domains_are_stored_and_journaled(megan, sales_domain):
    services.set_email_addresses(megan, addresses=["Megan.B@contoso.example",
                                                   "megan@sales.contoso.example"],
                                 primary="megan@sales.contoso.example")
    assert addresses(megan) == [("Megan.B@contoso.example", False),
                                ("megan@sales.contoso.example", True)]
    operation = Operation.objects.get(customer=megan, action="set_email_addresses")
    assert operation.params == {"primary": "megan@sales.contoso.example",
                                "addresses": ["Megan.B@contoso.example",
                                              "megan@sales.contoso.example"]}
    assert services.mail_addresses_of(megan) == (
        "megan@sales.contoso.example", ["Megan.B@contoso.example", "megan@sales.contoso.example"])
    # The same list again changes nothing and queues nothing.
    services.set_email_addresses(megan, addresses=["megan@sales.contoso.example",
                                                   "megan.b@contoso.example"],
                                 primary="MEGAN@sales.contoso.example")
    assert Operation.objects.filter(customer=megan, action="set_email_addresses").count() == 1


def test_the_logon_name_can_be_primary_again_and_addresses_removed(megan):
    services.set_email_addresses(megan, addresses=["mb@contoso.example"],
                                 primary="mb@contoso.example")
    services.set_email_addresses(megan, addresses=[], primary="megan@contoso.example")
    assert addresses(megan) == []
    assert services.mail_addresses_of(megan) == ("megan@contoso.example", [])
    assert MailAddress.objects.count() == 0


def test_the_primary_must_be_one_of_the_mailboxs_addresses(megan):
    with pytest.raises(ValidationError) as caught:
        services.set_email_addresses(megan, addresses=["mb@contoso.example"],
                                     primary="other@contoso.example")
    assert "primary" in caught.value.message_dict
    assert not MailAddress.objects.exists()


def test_an_address_on_another_organizations_domain_is_refused(megan, other_tenant):
    for address in ("megan@fabrikam.example", "megan@gmail.example"):
        with pytest.raises(ValidationError) as caught:
            services.set_email_addresses(megan, addresses=[address])
        assert "not on one of the organization's domains" in caught.value.message_dict[
            "addresses"][0]
        # The other organization's domain is not named.
        assert "fabrikam" not in caught.value.message_dict["addresses"][0].split("(")[1]
    assert not MailAddress.objects.exists()


def test_a_deleted_domain_takes_no_addresses(megan, sales_domain):
    CustomerAsset.objects.filter(pk=sales_domain.pk).update(status_id=c.DELETED)
    with pytest.raises(ValidationError):
        services.set_email_addresses(megan, addresses=["megan@sales.contoso.example"])


@pytest.mark.parametrize("taken", ["alex@contoso.example", "ALEX@contoso.example",
                                   "alias@contoso.example"])
def test_an_address_another_recipient_has_is_refused(megan, alex, taken):
    services.set_email_addresses(alex, addresses=["alias@contoso.example"])
    with pytest.raises(ValidationError) as caught:
        services.set_email_addresses(megan, addresses=[taken])
    assert "already in use" in caught.value.message_dict["addresses"][0]
    assert addresses(megan) == []


def test_a_new_logon_name_cannot_be_another_mailboxs_address(demo, alex):
    services.set_email_addresses(alex, addresses=["newbie@contoso.example"])
    with pytest.raises(ValidationError) as caught:
        services.create_user(demo, display_name="Newbie", local_part="newbie",
                             domain="contoso.example", password="Fresh-Password-4711")
    assert "local_part" in caught.value.message_dict


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_addresses_are_refused_by_the_rule(megan, value):
    with pytest.raises(ValidationError) as caught:
        services.set_email_addresses(megan, addresses=[value])
    assert "addresses" in caught.value.message_dict
    with pytest.raises(ValidationError):
        services.set_email_addresses(megan, addresses=[], primary=value)
    assert not MailAddress.objects.exists()
    assert not Operation.objects.filter(action="set_email_addresses").exists()


def test_too_many_addresses_are_refused(megan):
    many = [f"a{n}@contoso.example" for n in range(services.MAX_MAIL_ADDRESSES + 1)]
    with pytest.raises(ValidationError):
        services.set_email_addresses(megan, addresses=many)


def test_a_suspended_organization_and_a_user_without_mailbox_are_refused(demo, megan):
    services.change_plan(megan, None)
    with pytest.raises(ValidationError, match="no mailbox"):
        services.set_email_addresses(megan, addresses=["mb@contoso.example"])
    with pytest.raises(ValidationError, match="no mailbox"):
        services.set_forwarding(megan, forward_to="someone@example.org")
    services.set_enabled(demo, False)
    alex = demo.children.get(upn="alex@contoso.example")
    with pytest.raises(ValidationError) as caught:
        services.set_email_addresses(alex, addresses=["ax@contoso.example"])
    assert caught.value.code == "suspended"


# --- Forwarding: the service ---------------------------------------------------------------


def test_forwarding_to_a_user_of_the_organization(megan, alex):
    services.set_email_addresses(alex, addresses=["sales@contoso.example"])
    services.set_forwarding(megan, forward_to="Sales@contoso.example", keep_copy=True)
    forwarding = MailForwarding.objects.get(customer=megan)
    assert (forwarding.recipient, forwarding.address, forwarding.keep_copy) == (alex, "", True)
    operation = Operation.objects.get(customer=megan, action="set_forwarding")
    assert operation.params == {"recipient": alex.pk, "address": "", "keep_copy": True}


def test_forwarding_to_an_external_address_and_off(megan):
    services.set_forwarding(megan, forward_to="megan.private@example.org")
    forwarding = MailForwarding.objects.get(customer=megan)
    assert (forwarding.recipient, forwarding.address, forwarding.keep_copy) == (
        None, "megan.private@example.org", False)
    services.set_forwarding(megan, forward_to="megan.private@example.org")
    assert Operation.objects.filter(customer=megan, action="set_forwarding").count() == 1
    services.set_forwarding(megan, forward_to="", keep_copy=True)
    assert not MailForwarding.objects.exists()
    assert Operation.objects.filter(customer=megan, action="set_forwarding").count() == 2
    services.set_forwarding(megan, forward_to="")
    assert Operation.objects.filter(customer=megan, action="set_forwarding").count() == 2


@pytest.mark.parametrize("target, message", [
    ("pat@fabrikam.example", "belongs to another organization"),
    ("someone@fabrikam.example", "belongs to another organization"),
    ("nobody@contoso.example", "No user of this organization"),
    ("megan@contoso.example", "itself"),
])
def test_forwarding_out_of_the_organization_or_to_itself_is_refused(megan, other_tenant,
                                                                    target, message):
    with pytest.raises(ValidationError) as caught:
        services.set_forwarding(megan, forward_to=target)
    assert message in caught.value.message_dict["forward_to"][0]
    assert not MailForwarding.objects.exists()


def test_forwarding_to_another_organizations_additional_address_is_refused(megan,
                                                                           other_tenant):
    pat = other_tenant["user"]
    services.add_domain(other_tenant["organization"], "pat.example")
    services.set_email_addresses(pat, addresses=["pat@pat.example"])
    with pytest.raises(ValidationError, match="another organization"):
        services.set_forwarding(megan, forward_to="pat@pat.example")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_forwarding_addresses_are_refused(megan, value):
    with pytest.raises(ValidationError) as caught:
        services.set_forwarding(megan, forward_to=value)
    assert "forward_to" in caught.value.message_dict
    assert not MailForwarding.objects.exists()


# --- The dry run: what Exchange would be sent ----------------------------------------------


def run_queued(django_capture_on_commit_callbacks, scope):
    for operation in Operation.objects.filter(scope=scope, state="queued").order_by("pk"):
        journal.execute(operation.pk)


def test_the_dry_run_journals_the_complete_address_list(demo, megan, eager_dryrun,
                                                        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run_queued(django_capture_on_commit_callbacks, demo)
        services.set_email_addresses(megan, addresses=["mb@contoso.example"],
                                     primary="mb@contoso.example")
    operation = Operation.objects.get(customer=megan, action="set_email_addresses")
    assert operation.state == "succeeded", operation.last_error
    megan.refresh_from_db()
    assert operation.backend_log == [{
        "backend": "exchange", "cmdlet": "Set-Mailbox",
        "params": {"Identity": str(megan.object_guid),
                   "EmailAddresses": ["SMTP:mb@contoso.example", "smtp:megan@contoso.example"],
                   "EmailAddressPolicyEnabled": False}}]
    assert operation.done_steps == ["email_addresses"]


def test_the_dry_run_journals_forwarding_and_turning_it_off(demo, megan, alex, eager_dryrun,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run_queued(django_capture_on_commit_callbacks, demo)
        services.set_forwarding(megan, forward_to="alex@contoso.example", keep_copy=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.set_forwarding(megan, forward_to="megan@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        services.set_forwarding(megan, forward_to="")
    operations = Operation.objects.filter(customer=megan, action="set_forwarding").order_by("pk")
    assert [o.state for o in operations] == ["succeeded"] * 3
    megan.refresh_from_db()
    alex.refresh_from_db()
    sent = [o.backend_log[0]["params"] for o in operations]
    identity = {"Identity": str(megan.object_guid)}
    assert sent == [
        {**identity, "ForwardingAddress": str(alex.object_guid), "ForwardingSmtpAddress": None,
         "DeliverToMailboxAndForward": True},
        {**identity, "ForwardingAddress": None, "ForwardingSmtpAddress": "smtp:megan@example.org",
         "DeliverToMailboxAndForward": False},
        {**identity, "ForwardingAddress": None, "ForwardingSmtpAddress": None,
         "DeliverToMailboxAndForward": False},
    ]


# --- The pages -------------------------------------------------------------------------------


def test_a_manager_sets_addresses_and_forwarding_on_the_pages(client, demo, megan,
                                                              contoso_peers):
    login(client, MANAGER)
    url = reverse("user_addresses", args=[demo.pk, megan.pk])
    page = client.get(url).content.decode()
    assert "contoso.example" in page and 'value="megan@contoso.example"' in page
    response = client.post(url, {"addresses": "mb@contoso.example\n\n  m.b@contoso.example ",
                                 "primary": "mb@contoso.example"})
    assert response.status_code == 302
    assert addresses(megan) == [("m.b@contoso.example", False), ("mb@contoso.example", True)]
    operation = Operation.objects.get(customer=megan, action="set_email_addresses")
    assert operation.requested_by.username == MANAGER

    response = client.post(url, {"addresses": "megan@fabrikam.example",
                                 "primary": "megan@contoso.example"})
    assert response.status_code == 200
    assert "not on one of the organization" in response.content.decode()
    response = client.post(url, {"addresses": "x$(y)@contoso.example",
                                 "primary": "megan@contoso.example"})
    assert response.status_code == 200 and "&#x27;$&#x27;" in response.content.decode()

    url = reverse("user_forwarding", args=[demo.pk, megan.pk])
    response = client.post(url, {"forward_to": "alex@contoso.example", "keep_copy": "on"})
    assert response.status_code == 302
    forwarding = MailForwarding.objects.get(customer=megan)
    assert forwarding.recipient.upn == "alex@contoso.example" and forwarding.keep_copy
    page = client.get(url).content.decode()
    assert 'value="alex@contoso.example"' in page
    detail = client.get(reverse("user", args=[demo.pk, megan.pk])).content.decode()
    assert "mb@contoso.example" in detail and "alex@contoso.example" in detail


def test_a_read_only_peer_sees_the_mail_flow_but_cannot_change_it(client, demo, megan,
                                                                  contoso_peers):
    services.set_forwarding(megan, forward_to="megan@example.org")
    login(client, READ_ONLY)
    detail = client.get(reverse("user", args=[demo.pk, megan.pk])).content.decode()
    assert "megan@example.org" in detail
    assert reverse("user_forwarding", args=[demo.pk, megan.pk]) not in detail
    for name in ("user_addresses", "user_forwarding"):
        url = reverse(name, args=[demo.pk, megan.pk])
        assert client.post(url, {"forward_to": "", "addresses": "",
                                 "primary": "megan@contoso.example"}).status_code == 403
    assert MailForwarding.objects.filter(customer=megan).exists()


def test_another_tenant_cannot_reach_the_pages(client, demo, megan, other_tenant):
    client.force_login(get_user_model().objects.get(username="fabrikam-admin"))
    for name in ("user_addresses", "user_forwarding"):
        assert client.get(reverse(name, args=[demo.pk, megan.pk])).status_code == 404
        url = reverse(name, args=[other_tenant["organization"].pk, megan.pk])
        assert client.get(url).status_code == 404


def test_the_change_log_shows_added_and_removed_addresses(client, demo, megan):
    login(client, PRIMARY)
    url = reverse("user_addresses", args=[demo.pk, megan.pk])
    client.post(url, {"addresses": "mb@contoso.example", "primary": "megan@contoso.example"})
    client.post(url, {"addresses": "", "primary": "megan@contoso.example"})
    page = client.get(reverse("changelog", args=[demo.pk])).content.decode()
    assert page.count("mb@contoso.example") >= 2


# --- A recipient that goes away --------------------------------------------------------------


@pytest.mark.parametrize("remove", ["delete", "disconnect"])
def test_forwarding_to_a_mailbox_that_goes_away_stops(demo, megan, alex, eager_dryrun, remove,
                                                      django_capture_on_commit_callbacks):
    """Exchange drops a forwarding link to a removed mailbox silently; the panel must not go
    on showing it, and Exchange is told to forward nothing."""
    with django_capture_on_commit_callbacks(execute=True):
        run_queued(django_capture_on_commit_callbacks, demo)
        services.set_forwarding(megan, forward_to="alex@contoso.example", keep_copy=True)
        services.set_forwarding(alex, forward_to="alex.private@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        if remove == "delete":
            services.delete_customer(alex)
        else:
            services.disconnect_mailbox(alex)
    assert not MailForwarding.objects.filter(customer=megan).exists()
    # Alex's own forwarding is Alex's business: it stays as it was.
    assert MailForwarding.objects.filter(customer=alex).exists()
    last = Operation.objects.filter(customer=megan, action="set_forwarding").latest("pk")
    assert last.state == "succeeded", last.last_error
    megan.refresh_from_db()
    assert last.backend_log[-1]["params"] == {
        "Identity": str(megan.object_guid), "ForwardingAddress": None,
        "ForwardingSmtpAddress": None, "DeliverToMailboxAndForward": False}
    # Only the mailbox that forwarded to Alex was touched.
    assert Operation.objects.filter(action="set_forwarding").count() == 3


def test_forwarding_to_an_external_address_survives_another_users_removal(megan, alex):
    services.set_forwarding(megan, forward_to="megan.private@example.org")
    services.delete_customer(alex)
    assert MailForwarding.objects.get(customer=megan).address == "megan.private@example.org"
    assert Operation.objects.filter(customer=megan, action="set_forwarding").count() == 1
