"""A mailbox's addresses and forwarding (issue #12) through the real client and pywinrm,
against the WS-Management stand-in for Exchange: what it holds afterwards, and what it
refuses as Exchange does. Runs without Django, like tests/test_exchange_client.py."""

from __future__ import annotations

import pytest

from provisioning.exchange import (
    DryRunExchangeClient,
    ExchangeClient,
    PermanentExchangeError,
    email_address_list,
)
from tests.test_exchange_client import settings_for


@pytest.fixture
def client(endpoint):
    return ExchangeClient(settings_for(endpoint))


@pytest.fixture
def mailboxes(endpoint, client):
    """Two mailboxes of Contoso (two accepted domains), one of Fabrikam."""
    for domain in ("contoso.example", "sales.contoso.example", "fabrikam.example"):
        client.ensure_accepted_domain(domain)
    return {upn.split("@")[0]: client.enable_mailbox(upn)["Guid"]
            for upn in ("megan@contoso.example", "alex@contoso.example",
                        "pat@fabrikam.example")}


def mailbox(endpoint, guid):
    return next(m for m in endpoint.snapshot()["exchange"]["mailboxes"] if m["Guid"] == guid)


def test_the_address_list_is_written_as_exchange_writes_it():
    assert email_address_list("mb@contoso.example", ["megan@contoso.example",
                                                     "MB@contoso.example"]) == [
        "SMTP:mb@contoso.example", "smtp:megan@contoso.example"]
    with pytest.raises(ValueError):
        email_address_list("smtp:mb@contoso.example")


def test_addresses_and_a_new_primary_are_kept_and_repeating_is_harmless(endpoint, client,
                                                                         mailboxes):
    megan = mailboxes["megan"]
    sent = client.set_email_addresses(megan, "megan@sales.contoso.example",
                                      ["megan@contoso.example", "mb@contoso.example"])
    assert sent == ["SMTP:megan@sales.contoso.example", "smtp:megan@contoso.example",
                    "smtp:mb@contoso.example"]
    stored = mailbox(endpoint, megan)
    assert stored["EmailAddresses"] == sent
    assert stored["PrimarySmtpAddress"] == "megan@sales.contoso.example"
    assert stored["EmailAddressPolicyEnabled"] is False
    assert endpoint.calls_to("Set-Mailbox") == [{
        "Identity": megan, "EmailAddresses": sent, "EmailAddressPolicyEnabled": False}]
    # The same list again: the same state.
    client.set_email_addresses(megan, "megan@sales.contoso.example",
                               ["megan@contoso.example", "mb@contoso.example"])
    assert mailbox(endpoint, megan) == stored
    # A shorter list removes what it leaves out; the freed address can go to another mailbox.
    client.set_email_addresses(megan, "megan@contoso.example")
    assert mailbox(endpoint, megan)["EmailAddresses"] == ["SMTP:megan@contoso.example"]
    client.set_email_addresses(mailboxes["alex"], "alex@contoso.example",
                               ["mb@contoso.example"])
    assert mailbox(endpoint, mailboxes["alex"])["EmailAddresses"] == [
        "SMTP:alex@contoso.example", "smtp:mb@contoso.example"]
    assert endpoint.violations == []


@pytest.mark.parametrize("taken", ["alex@contoso.example", "ALEX@Contoso.example"])
def test_an_address_another_recipient_has_is_refused_as_exchange_does(endpoint, client,
                                                                      mailboxes, taken):
    before = endpoint.snapshot()["exchange"]
    with pytest.raises(PermanentExchangeError) as caught:
        client.set_email_addresses(mailboxes["megan"], "megan@contoso.example", [taken])
    error = caught.value
    assert error.kind == "address_in_use"
    assert error.exchange_message == (
        f'The proxy address "smtp:{taken}" is already being used by the proxy addresses or '
        'LegacyExchangeDN of "alex@contoso.example". Please choose another proxy address.')
    assert error.details["exception"].endswith("ProxyAddressExistsException")
    assert endpoint.snapshot()["exchange"] == before


def test_an_address_outside_the_accepted_domains_is_refused(endpoint, client, mailboxes):
    before = endpoint.snapshot()["exchange"]
    with pytest.raises(PermanentExchangeError) as caught:
        client.set_email_addresses(mailboxes["megan"], "megan@contoso.example",
                                   ["megan@elsewhere.example"])
    assert caught.value.kind == "not_accepted_domain"
    assert endpoint.snapshot()["exchange"] == before


@pytest.mark.parametrize("params, kind", [
    # Two primaries, or none.
    ({"EmailAddresses": ["SMTP:megan@contoso.example", "SMTP:mb@contoso.example"],
      "EmailAddressPolicyEnabled": False}, "failed"),
    ({"EmailAddresses": ["smtp:megan@contoso.example"], "EmailAddressPolicyEnabled": False},
     "failed"),
    # Not an address; an address twice.
    ({"EmailAddresses": ["SMTP:megan@contoso.example", "smtp:not an address"]},
     "invalid_parameter"),
    ({"EmailAddresses": ["SMTP:megan@contoso.example", "smtp:MEGAN@contoso.example"]},
     "failed"),
    # A new primary while the email address policy would put its own back.
    ({"EmailAddresses": ["SMTP:mb@contoso.example", "smtp:megan@contoso.example"]}, "failed"),
    # A string where a list of proxy addresses or a Boolean is expected.
    ({"EmailAddressPolicyEnabled": "false"}, "invalid_parameter"),
    ({"ForwardingSmtpAddress": "x500:/o=contoso/cn=megan"}, "invalid_parameter"),
    ({"ForwardingSmtpAddress": ["smtp:a@example.org"]}, "invalid_parameter"),
    ({"ForwardingAddress": "nobody@contoso.example"}, "not_found"),
])
def test_the_endpoint_refuses_what_exchange_refuses(endpoint, client, mailboxes, params, kind):
    before = endpoint.snapshot()["exchange"]
    with pytest.raises(PermanentExchangeError) as caught:
        client.run("Set-Mailbox", {"Identity": mailboxes["megan"], **params})
    assert caught.value.kind == kind, caught.value.exchange_message
    assert endpoint.snapshot()["exchange"] == before


def test_forwarding_to_a_mailbox_to_an_address_and_off(endpoint, client, mailboxes):
    megan, alex = mailboxes["megan"], mailboxes["alex"]
    client.set_forwarding(megan, recipient=alex, keep_copy=True)
    stored = mailbox(endpoint, megan)
    assert (stored["ForwardingAddress"], stored["ForwardingSmtpAddress"],
            stored["DeliverToMailboxAndForward"]) == ("alex@contoso.example", None, True)

    client.set_forwarding(megan, smtp_address="megan.private@example.org")
    stored = mailbox(endpoint, megan)
    assert (stored["ForwardingAddress"], stored["ForwardingSmtpAddress"],
            stored["DeliverToMailboxAndForward"]) == (
        None, "smtp:megan.private@example.org", False)
    # Repeating it is harmless.
    client.set_forwarding(megan, smtp_address="megan.private@example.org")
    assert mailbox(endpoint, megan) == stored

    client.set_forwarding(megan)
    stored = mailbox(endpoint, megan)
    assert (stored["ForwardingAddress"], stored["ForwardingSmtpAddress"],
            stored["DeliverToMailboxAndForward"]) == (None, None, False)
    assert endpoint.calls_to("Set-Mailbox")[-1] == {
        "Identity": megan, "ForwardingAddress": None, "ForwardingSmtpAddress": None,
        "DeliverToMailboxAndForward": False}
    with pytest.raises(ValueError):
        client.set_forwarding(megan, recipient=alex, smtp_address="a@example.org")
    assert endpoint.violations == []


def test_hostile_addresses_arrive_as_data_and_are_refused_as_addresses(endpoint, client,
                                                                       mailboxes):
    """The panel's rule refuses these first; the client and the endpoint hold on their own."""
    for value in ("x$(Remove-Mailbox -Identity admin)@contoso.example",
                  "a'; Remove-Item -Recurse \\server\\share; 'b@contoso.example",
                  "line\nbreak@contoso.example"):
        with pytest.raises(PermanentExchangeError) as caught:
            client.set_email_addresses(mailboxes["megan"], "megan@contoso.example", [value])
        assert caught.value.kind == "invalid_parameter"
        assert value in endpoint.calls_to("Set-Mailbox")[-1]["EmailAddresses"][1]
    assert endpoint.violations == []
    assert mailbox(endpoint, mailboxes["megan"])["EmailAddresses"] == [
        "SMTP:megan@contoso.example"]


def test_the_dry_run_journals_one_set_mailbox_each():
    dry = DryRunExchangeClient()
    dry.set_email_addresses("guid-1", "mb@contoso.example", ["megan@contoso.example"])
    dry.set_forwarding("guid-1", smtp_address="a@example.org")
    assert [entry["cmdlet"] for entry in dry.journal] == ["Set-Mailbox", "Set-Mailbox"]
    assert dry.journal[1]["params"]["ForwardingSmtpAddress"] == "smtp:a@example.org"
