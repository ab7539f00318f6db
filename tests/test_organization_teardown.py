"""Deleting an organization tears it down: its mailboxes, address book policy, offline
address book, address lists, GAL and accepted domains in Exchange, then what its OU holds
and the OU in the directory, in that order; the customer rows stay, marked Deleted.

The live tests run the real worker against the suite's Samba DC and WS-Management endpoint
(tests/support/wsman_server.py), which refuses a removal out of order as Exchange does."""

import uuid

import pytest

from provisioning import constants as c
from provisioning import services
from provisioning.models import Customer, Event, EventSequence, Operation
from tests.support.provisioning import add_user, sign_up, succeeded, wait_for_operations


def gone_from_exchange(state, org, domain):
    """What of the organization is still in the endpoint (empty when nothing is)."""
    left = [d["DomainName"] for d in state["accepted_domains"] if d["DomainName"] == domain]
    for kind in ("address_lists", "global_address_lists", "offline_address_books",
                 "address_book_policies"):
        left += [r["Name"] for r in state[kind] if r["Name"].startswith(f"{org.name} - ")]
    return left


# --- in the database ---------------------------------------------------------------------


def test_the_rows_stay_deleted_with_an_event_each_in_the_billing_feed(demo):
    users = list(Customer.objects.filter(parent=demo).users().live())
    assert users
    services.delete_customer(demo)
    assert Customer.objects.get(pk=demo.pk).status_id == c.DELETED
    assert set(Customer.objects.filter(parent=demo).users().values_list(
        "status_id", flat=True)) == {c.DELETED}
    assert set(demo.assets.values_list("status_id", flat=True)) == {c.DELETED}
    deleted = Event.objects.filter(event_type_id=c.EVENT_DELETED, customer__in=users)
    assert sorted(deleted.values_list("customer_id", flat=True)) == sorted(u.pk for u in users)
    # Each event has its place in the billing feed, as Event.save gives it.
    assert EventSequence.objects.filter(event__in=deleted).count() == len(users)
    operation = Operation.objects.get(customer=demo, action="delete_organization")
    assert operation.scope_id == demo.pk
    # Deleting again changes nothing and queues nothing more.
    services.delete_customer(demo)
    assert Operation.objects.filter(customer=demo, action="delete_organization").count() == 1


def test_the_dry_run_journals_the_teardown(demo, eager_dryrun,
                                          django_capture_on_commit_callbacks):
    from provisioning import journal

    with django_capture_on_commit_callbacks(execute=True):
        for operation in Operation.objects.filter(scope=demo).order_by("pk"):
            journal.execute(operation.pk)
    assert set(Operation.objects.filter(scope=demo).values_list("state", flat=True)) == {
        "succeeded"}
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_customer(demo)
    operation = Operation.objects.get(customer=demo, action="delete_organization")
    assert operation.state == "succeeded", operation.last_error
    # The dry run's Exchange is an empty organization: each object is looked up, and
    # nothing is there to remove.
    exchange = [e["cmdlet"] for e in operation.backend_log if e["backend"] == "exchange"]
    assert "Get-AddressBookPolicy" in exchange and "Get-AcceptedDomain" in exchange
    assert not [cmdlet for cmdlet in exchange if not cmdlet.startswith("Get-")]
    # The directory: what the OU holds (the group, the provisioned users), then the OU.
    deletes = [e["dn"] for e in operation.backend_log if e.get("op") == "delete"]
    users = Customer.objects.filter(parent=demo).users().exclude(object_guid=None).count()
    assert len(deletes) == users + 2
    assert deletes[-1].lower().startswith("ou=contoso,")
    assert all(d.lower().endswith("," + deletes[-1].lower()) for d in deletes[:-1])


def test_a_deleted_organizations_teardown_can_be_retried(demo):
    services.delete_customer(demo)
    operation = Operation.objects.get(customer=demo, action="delete_organization")
    Operation.objects.filter(pk=operation.pk).update(state="failed", last_error="boom")
    services.retry_operation(operation)
    operation.refresh_from_db()
    assert operation.state == "queued"
    # Any other operation of a deleted organization stays refused.
    other = Operation.objects.filter(scope=demo).exclude(pk=operation.pk).first()
    Operation.objects.filter(pk=other.pk).update(state="failed")
    other.refresh_from_db()
    with pytest.raises(Exception, match="is deleted"):
        services.retry_operation(other)


# --- live: the worker, Samba and the endpoint ----------------------------------------------


@pytest.mark.samba
@pytest.mark.worker
def test_nothing_of_the_organization_is_left_in_exchange_or_the_directory(
        live_demo, wsman_endpoint, ad):
    org, domain = sign_up(live_demo.parent)
    users = [add_user(org, domain, "first"), add_user(org, domain, "second", "Silver")]
    succeeded(*Operation.objects.filter(customer__in=[org, *users]))
    org.refresh_from_db()
    for user in users:
        user.refresh_from_db()
    assert gone_from_exchange(wsman_endpoint.snapshot()["exchange"], org, domain) != []
    assert len(ad.list_under(str(org.object_guid))) == 3  # the group and two users

    services.delete_customer(org)
    (teardown,) = succeeded(*Operation.objects.filter(customer=org,
                                                      action="delete_organization"))
    state = wsman_endpoint.snapshot()["exchange"]
    assert gone_from_exchange(state, org, domain) == []
    assert not [m for m in state["mailboxes"]
                if m["Identity"] in {str(u.object_guid) for u in users}]
    assert {str(u.object_guid) for u in users} <= {
        m.get("Identity") for m in state["disconnected_mailboxes"]}
    assert ad.get_by_guid(str(org.object_guid)) is None
    assert all(ad.get_by_guid(str(u.object_guid)) is None for u in users)
    steps = [s["name"] for s in teardown.steps]
    order = ["mailbox_disconnected:", "address_book_policy_removed",
             "offline_address_book_removed", "address_list_removed", "room_list_removed",
             "global_address_list_removed", "accepted_domain_removed:", "removed:", "org_ou"]
    firsts = [next(i for i, name in enumerate(steps) if name.startswith(prefix))
              for prefix in order]
    assert firsts == sorted(firsts), steps
    assert wsman_endpoint.violations == []


@pytest.mark.samba
@pytest.mark.worker
def test_an_interrupted_teardown_finishes_on_retry(live_demo, wsman_endpoint, ad):
    org, domain = sign_up(live_demo.parent)
    user = add_user(org, domain, "stays")
    succeeded(*Operation.objects.filter(customer__in=[org, user]))
    org.refresh_from_db()
    wsman_endpoint.fail_next("error", count=1, cmdlet="Remove-GlobalAddressList",
                             message="The Active Directory object is locked.")
    services.delete_customer(org)
    (failed,) = wait_for_operations(*Operation.objects.filter(customer=org,
                                                              action="delete_organization"))
    assert failed.state == "failed" and "locked" in failed.last_error
    done = [s["name"] for s in failed.steps if s["state"] == "done"]
    assert "room_list_removed" in done and "global_address_list_removed" not in done
    # Nothing of the directory was touched before Exchange was done.
    assert ad.get_by_guid(str(org.object_guid)) is not None

    wsman_endpoint.clear_calls()
    services.retry_operation(failed)
    succeeded(failed)
    # The retry went on from the GAL: what was removed before is not asked for again.
    assert wsman_endpoint.calls_to("Remove-AddressBookPolicy") == []
    assert len(wsman_endpoint.calls_to("Remove-GlobalAddressList")) == 1
    assert gone_from_exchange(wsman_endpoint.snapshot()["exchange"], org, domain) == []
    assert ad.get_by_guid(str(org.object_guid)) is None


@pytest.mark.samba
@pytest.mark.worker
def test_an_object_the_panel_did_not_make_stops_the_teardown_and_is_kept(
        live_demo, wsman_endpoint, ad):
    org, domain = sign_up(live_demo.parent)
    succeeded(*Operation.objects.filter(customer=org))
    org.refresh_from_db()
    ou = ad.get_by_guid(str(org.object_guid))["dn"]
    intruder = f"OU=Kept {uuid.uuid4().hex[:6]},{ou}"
    ad._add(intruder, ["top", "organizationalUnit"], {})

    services.delete_customer(org)
    (failed,) = wait_for_operations(*Operation.objects.filter(customer=org,
                                                              action="delete_organization"))
    assert failed.state == "failed"
    assert "did not make" in failed.last_error and "Kept" in failed.last_error
    # Nothing of the directory was removed: not the group, not the foreign OU.
    assert ad.get_by_dn(intruder) is not None
    assert len(ad.list_under(str(org.object_guid))) == 2

    ad.delete(ad.get_by_dn(intruder)["objectGUID"])
    services.retry_operation(failed)
    succeeded(failed)
    assert ad.get_by_guid(str(org.object_guid)) is None


@pytest.mark.samba
@pytest.mark.worker
def test_mail_flow_through_the_worker_then_the_teardown(live_demo, wsman_endpoint, ad):
    """Addresses and forwarding reach the endpoint through the real worker; the teardown
    then removes the accepted domain once no mailbox has an address in it any more."""
    org, domain = sign_up(live_demo.parent)
    sender, colleague = add_user(org, domain, "sender"), add_user(org, domain, "colleague")
    succeeded(*Operation.objects.filter(customer__in=[org, sender, colleague]))
    org.refresh_from_db()
    sender.refresh_from_db()
    colleague.refresh_from_db()
    services.set_email_addresses(sender, addresses=[f"sales@{domain}"],
                                 primary=f"sales@{domain}")
    services.set_forwarding(sender, forward_to=colleague.upn, keep_copy=True)
    succeeded(*Operation.objects.filter(customer=sender).exclude(action="provision_user"))
    (mailbox,) = [m for m in wsman_endpoint.snapshot()["exchange"]["mailboxes"]
                  if m["Identity"] == str(sender.object_guid)]
    assert f"SMTP:sales@{domain}" in mailbox["EmailAddresses"]
    assert f"smtp:{sender.upn}" in mailbox["EmailAddresses"]
    assert mailbox["ForwardingAddress"] and mailbox["DeliverToMailboxAndForward"] is True

    services.delete_customer(org)
    succeeded(*Operation.objects.filter(customer=org, action="delete_organization"))
    assert gone_from_exchange(wsman_endpoint.snapshot()["exchange"], org, domain) == []
    assert ad.get_by_guid(str(org.object_guid)) is None
    assert wsman_endpoint.violations == []
