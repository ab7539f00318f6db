"""A step's record tells the truth about the directory: compensation undoes the record
with the object, a retry redoes both, and nothing is adopted or removed that this panel did
not make for this customer. End to end, through the real worker, Samba and the WS-Man
endpoint."""

import io
import uuid

import pytest

from provisioning import journal
from provisioning.models import Customer, Operation
from provisioning.reconciliation import reconcile
from servers.models import Service, ServiceKind
from tests.support.provisioning import (
    PASSWORD,
    add_user,
    can_bind,
    sign_up,
    succeeded,
    wait_for_operations,
)

pytestmark = [pytest.mark.samba, pytest.mark.worker]

RETRY_PASSWORD = "Retry-Password-2026!"


def mailboxes_of(endpoint, guid):
    return [m for m in endpoint.snapshot()["exchange"]["mailboxes"]
            if m["Identity"] == str(guid)]


def missing_after_reconcile(ad):
    service = Service.objects.get(kind=ServiceKind.ACTIVE_DIRECTORY)
    return reconcile(service, ad).missing


def test_a_retry_after_a_compensated_user_makes_the_user_again(
        live_demo, wsman_endpoint, ad, directory_settings):
    """Defect 1: compensation deleted the AD user but left its step recorded as done, so
    the retry linked the panel user to a deleted GUID and ended 'succeeded'."""
    org, domain = sign_up(live_demo.parent)
    succeeded(*Operation.objects.filter(customer=org))
    wsman_endpoint.fail_next("error", cmdlet="Set-Mailbox",
                             message="The mailbox database is being moved.")
    user = add_user(org, domain, "phoenix")
    (operation,) = wait_for_operations(*Operation.objects.filter(customer=user))
    assert operation.state == "failed"
    user.refresh_from_db()
    assert user.object_guid is None
    assert ad.find_by_upn(user.upn) is None
    assert "user" not in operation.done_steps and "mailbox" not in operation.done_steps
    assert ("rollback", "done") in [(s["name"], s["state"]) for s in operation.steps]

    journal.retry(operation, secret=RETRY_PASSWORD)
    (operation,) = succeeded(operation)
    user.refresh_from_db()
    entry = ad.get_by_guid(str(user.object_guid))
    assert entry is not None and entry["userPrincipalName"] == user.upn
    assert can_bind(directory_settings, user.upn, RETRY_PASSWORD)
    assert len(mailboxes_of(wsman_endpoint, user.object_guid)) == 1
    assert user not in missing_after_reconcile(ad)


def test_a_retry_after_a_compensated_organization_makes_its_ou_again(
        live_demo, wsman_endpoint, ad):
    """Defect 1, for organizations: the OU, its UPN suffix and its group are made again."""
    wsman_endpoint.fail_next("error", cmdlet="New-AddressList",
                             message="Active Directory operation failed.")
    org, domain = sign_up(live_demo.parent)
    (operation,) = wait_for_operations(*Operation.objects.filter(customer=org))
    assert operation.state == "failed"
    org.refresh_from_db()
    assert org.object_guid is None
    assert ad.get_by_dn(ad.org_dn(org.name)) is None
    assert not {"org_ou", "group", f"upn_suffix:{domain}"} & set(operation.done_steps)

    journal.retry(operation)
    succeeded(operation)
    org.refresh_from_db()
    ou = ad.get_by_guid(str(org.object_guid))
    assert ou is not None and ou["kind"] == "ou"
    assert domain in ou["uPNSuffixes"]
    assert ad.get_by_dn(ad.org_group_dn(org.name))["kind"] == "group"
    user = add_user(org, domain, "after")
    succeeded(*Operation.objects.filter(customer=user))


def test_an_ou_the_panel_did_not_make_for_the_organization_is_never_adopted_or_removed(
        live_demo, ad):
    """Defect 6: a sign-up adopted another tenant's OU by a case-insensitive name lookup,
    and its rollback then tried to delete that OU."""
    name = f"Ærøskøbing Øst {uuid.uuid4().hex[:6]}"
    # Someone else's OU of the same name (in any case), with a user inside.
    ad.ensure_root_ou()
    foreign = ad.ensure_org_ou(name.upper())
    ad.ensure_org_group(name.upper())
    org, domain = sign_up(live_demo.parent, name=name)
    (operation,) = wait_for_operations(*Operation.objects.filter(customer=org))
    assert operation.state == "failed"
    assert "was not created by this panel for this customer" in operation.last_error
    org.refresh_from_db()
    assert org.object_guid is None
    # Compensation removed nothing: the foreign OU and its group are untouched.
    assert ad.get_by_guid(foreign) is not None
    assert ad.get_by_dn(ad.org_group_dn(name)) is not None
    assert not Customer.objects.filter(object_guid=foreign).exists()


def test_a_user_of_the_same_name_made_outside_the_panel_is_not_adopted(live_demo, ad):
    org, domain = sign_up(live_demo.parent)
    succeeded(*Operation.objects.filter(customer=org))
    upn = f"squatter@{domain}"
    outsider = ad.ensure_user(org.name, sam_account_name=f"sq{uuid.uuid4().hex[:8]}",
                              upn=upn, display_name="Squatter", given_name="", surname="",
                              password=PASSWORD)
    user = add_user(org, domain, "squatter")
    (operation,) = wait_for_operations(*Operation.objects.filter(customer=user))
    assert operation.state == "failed"
    assert "was not created by this panel" in operation.last_error
    assert ad.get_by_guid(outsider) is not None
    user.refresh_from_db()
    assert user.object_guid is None


def test_reconciliation_reports_and_repairs_customers_without_a_guid(
        live_demo, wsman_endpoint, ad):
    """Defect 5: reconciliation said 'in step with the directory' while a user had no
    GUID and no operation under way."""
    from django.core.management import call_command

    org, domain = sign_up(live_demo.parent)
    succeeded(*Operation.objects.filter(customer=org))
    wsman_endpoint.fail_next("error", cmdlet="Enable-Mailbox", message="Database offline.")
    user = add_user(org, domain, "unlinked")
    (failed,) = wait_for_operations(*Operation.objects.filter(customer=user))
    assert failed.state == "failed"
    # A user whose operation is still under way is not reported: it is on its way.
    pending = Customer.objects.create(parent=org, customer_type_id="BusinessUser",
                                      name="Pending", upn=f"pending@{domain}")
    under_way = Operation.objects.create(customer=pending, scope=org, action="provision_user")

    service = Service.objects.get(kind=ServiceKind.ACTIVE_DIRECTORY)
    report = reconcile(service, ad)
    assert user in report.unlinked
    assert pending not in report.unlinked
    Operation.objects.filter(pk=under_way.pk).update(state="cancelled")
    Customer.objects.filter(pk=pending.pk).update(status_id="Deleted")
    out = io.StringIO()
    call_command("reconcile_directory", stdout=out)
    assert f"unlinked  {user.upn}" in out.getvalue()

    call_command("reconcile_directory", "--repair", stdout=out)
    repair = Operation.objects.get(customer=user, params__repair=True)
    succeeded(repair)
    user.refresh_from_db()
    assert ad.get_by_guid(str(user.object_guid))["userPrincipalName"] == user.upn
    assert user not in reconcile(service, ad).unlinked
