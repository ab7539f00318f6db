"""Disconnecting a user's mailbox and connecting it again (issue #12): the rules, the pages,
the dry run, the real client against the WS-Management stand-in, and (marked samba) the
whole chain through the worker."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from provisioning import journal, services
from provisioning.exchange import ExchangeClient, PermanentExchangeError
from provisioning.models import Operation
from tests.support.provisioning import add_user, sign_up, succeeded
from tests.support.views import MANAGER, READ_ONLY, login
from tests.test_exchange_client import settings_for


@pytest.fixture
def megan(demo):
    return demo.children.get(upn="megan@contoso.example")


# --- The rules -------------------------------------------------------------------------------


def test_a_disconnected_mailbox_takes_no_change_until_it_is_reconnected(demo, megan):
    services.disconnect_mailbox(megan)
    megan.refresh_from_db()
    assert megan.mailbox_disconnected and megan.service_plan is not None
    assert Operation.objects.filter(customer=megan, action="disconnect_mailbox").count() == 1
    for change in (lambda: services.disconnect_mailbox(megan),
                   lambda: services.set_email_addresses(megan, addresses=[]),
                   lambda: services.set_forwarding(megan, forward_to=""),
                   lambda: services.change_plan(megan, megan.service_plan)):
        with pytest.raises(ValidationError, match="disconnected"):
            change()
    services.reconnect_mailbox(megan)
    megan.refresh_from_db()
    assert not megan.mailbox_disconnected
    with pytest.raises(ValidationError, match="is connected"):
        services.reconnect_mailbox(megan)
    assert list(Operation.objects.filter(customer=megan).exclude(
        action="provision_user").order_by("pk").values_list("action", flat=True)) == [
        "disconnect_mailbox", "reconnect_mailbox"]


def test_a_user_without_a_mailbox_or_of_a_suspended_organization_is_refused(demo, megan):
    services.change_plan(megan, None)
    with pytest.raises(ValidationError, match="no mailbox"):
        services.disconnect_mailbox(megan)
    services.set_enabled(demo, False)
    with pytest.raises(ValidationError, match="suspended"):
        services.disconnect_mailbox(demo.children.get(upn="alex@contoso.example"))


def test_the_pages_for_a_manager_and_a_read_only_peer(client, demo, megan, contoso_peers):
    url = reverse("user_mailbox_disconnect", args=[demo.pk, megan.pk])
    login(client, READ_ONLY)
    assert client.post(url).status_code == 403
    login(client, MANAGER)
    detail = reverse("user", args=[demo.pk, megan.pk])
    assert url in client.get(detail).content.decode()
    assert client.post(url).url == detail
    megan.refresh_from_db()
    assert megan.mailbox_disconnected
    page = client.get(detail).content.decode()
    assert reverse("user_mailbox_reconnect", args=[demo.pk, megan.pk]) in page
    assert url not in page and "Mailbox disconnected" in page
    # Twice is refused with the rule's message, nothing queued again.
    response = client.post(url, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "The mailbox of megan@contoso.example is already disconnected."]
    assert Operation.objects.filter(customer=megan, action="disconnect_mailbox").count() == 1


def test_the_dry_run_journals_both(demo, megan, eager_dryrun,
                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for operation in Operation.objects.filter(scope=demo).order_by("pk"):
            journal.execute(operation.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.disconnect_mailbox(megan)
    with django_capture_on_commit_callbacks(execute=True):
        services.reconnect_mailbox(megan)
    disconnect, reconnect = Operation.objects.filter(
        customer=megan, action__in=["disconnect_mailbox", "reconnect_mailbox"]).order_by("pk")
    assert (disconnect.state, reconnect.state) == ("succeeded", "succeeded")
    assert disconnect.done_steps == ["mailbox_identity", "mailbox_disconnected"]
    # The dry run's Exchange has no mailbox to find: the reconnection gives a new one, then
    # what the plan sets.
    sent = [e["cmdlet"] for e in reconnect.backend_log if not e["cmdlet"].startswith("Get-")]
    assert sent[0] == "Enable-Mailbox" and "Set-Mailbox" in sent


# --- The real client against the stand-in ------------------------------------------------------


def test_the_same_mailbox_comes_back_on_its_user(endpoint):
    client = ExchangeClient(settings_for(endpoint))
    guid = client.enable_mailbox("megan@contoso.example")["Guid"]
    identity = client.mailbox_identity(guid)
    assert identity["ExchangeGuid"] and identity["Database"]
    assert client.disable_mailbox(guid) is True
    assert client.get_mailbox(guid) is None
    client.connect_mailbox(identity["ExchangeGuid"], identity["Database"], guid)
    state = endpoint.snapshot()["exchange"]
    (mailbox,) = [m for m in state["mailboxes"] if m["Guid"] == guid]
    assert mailbox["ExchangeGuid"] == identity["ExchangeGuid"]
    assert state["disconnected_mailboxes"] == []
    # Again (a retry after a lost reply): the user has its mailbox, nothing is sent.
    endpoint.clear_calls()
    client.connect_mailbox(identity["ExchangeGuid"], identity["Database"], guid)
    assert endpoint.calls_to("Connect-Mailbox") == []
    # A mailbox that is not disconnected, or another database, is not found.
    with pytest.raises(PermanentExchangeError):
        client.run("Connect-Mailbox", {"Identity": identity["ExchangeGuid"],
                                       "Database": identity["Database"], "User": guid})
    assert endpoint.violations == []


# --- Live: the worker, Samba and the endpoint ----------------------------------------------------


@pytest.mark.samba
@pytest.mark.worker
def test_disconnect_and_reconnect_through_the_worker(live_demo, wsman_endpoint):
    org, domain = sign_up(live_demo.parent)
    user = add_user(org, domain, "away")
    succeeded(*Operation.objects.filter(customer__in=[org, user]))
    user.refresh_from_db()
    services.set_email_addresses(user, addresses=[f"away-sales@{domain}"])
    succeeded(*Operation.objects.filter(customer=user, action="set_email_addresses"))

    def mailboxes():
        return [m for m in wsman_endpoint.snapshot()["exchange"]["mailboxes"]
                if m["Identity"] == str(user.object_guid)]

    (before,) = mailboxes()
    services.disconnect_mailbox(user)
    succeeded(*Operation.objects.filter(customer=user, action="disconnect_mailbox"))
    assert mailboxes() == []
    services.reconnect_mailbox(user)
    succeeded(*Operation.objects.filter(customer=user, action="reconnect_mailbox"))
    (after,) = mailboxes()
    assert after["ExchangeGuid"] == before["ExchangeGuid"]  # the same mailbox, its data
    assert after["CustomAttribute1"] == org.name
    assert after["AddressBookPolicy"] == f"{org.name} - ABP"
    assert after["ProhibitSendReceiveQuota"] == before["ProhibitSendReceiveQuota"]
    assert f"smtp:away-sales@{domain}" in after["EmailAddresses"]
    assert wsman_endpoint.violations == []
