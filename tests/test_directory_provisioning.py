"""Provisioning into a real Active Directory (the suite's Samba DC) through the real
Celery worker on Redis: what ends up in the directory, and in the database."""

import signal
import time
import uuid

import ldap3
import pytest
from django.core.management import call_command

from provisioning import constants as c
from provisioning import services
from provisioning.models import Customer, Operation
from provisioning.reconciliation import reconcile
from servers.models import Service, ServiceKind
from tests.support.provisioning import (
    PASSWORD,
    add_user,
    sign_up,
    succeeded,
    unique,
    wait_for_operations,
)

pytestmark = [pytest.mark.samba, pytest.mark.worker]



def test_sign_up_creates_the_ou_upn_suffix_and_group(live_demo, ad):
    org, domain = sign_up(live_demo.parent)
    (operation,) = succeeded(Operation.objects.get(customer=org))
    org.refresh_from_db()
    ou = ad.get_by_guid(str(org.object_guid), ["uPNSuffixes"])
    assert ou["dn"] == ad.org_dn(org.name)
    assert ou["dn"].endswith(",OU=Microsoft Exchange Hosted Organizations,DC=hosting,DC=test")
    assert domain in ou["uPNSuffixes"]
    group = ad.get_by_dn(ad.org_group_dn(org.name))
    assert group["groupType"] == -2147483640  # universal security group
    assert [s["name"] for s in operation.steps][:4] == [
        "root_ou", "org_ou", f"upn_suffix:{domain}", "group"]


def test_users_are_enabled_in_the_group_and_can_bind(live_demo, ad, directory_settings):
    org, domain = sign_up(live_demo.parent)
    users = [add_user(org, domain, f"user{i}") for i in range(3)]
    succeeded(*Operation.objects.filter(customer__in=users))
    group_dn = ad.org_group_dn(org.name)
    for user in users:
        user.refresh_from_db()
        entry = ad.get_by_guid(str(user.object_guid))
        assert entry["userPrincipalName"] == user.upn
        assert entry["userAccountControl"] & 2 == 0
        assert group_dn.lower() in [g.lower() for g in entry["memberOf"]]
        assert len(entry["sAMAccountName"]) <= 20
        server = ldap3.Server(directory_settings.host, port=636, use_ssl=True,
                              tls=ldap3.Tls(ca_certs_file=directory_settings.ca_file))
        conn = ldap3.Connection(server, user=user.upn, password=PASSWORD)
        assert conn.bind(), conn.result
        conn.unbind()
        assert not ldap3.Connection(server, user=user.upn, password="wrong-Pass-1").bind()


def test_changes_made_outside_the_panel(live_demo, ad):
    org, domain = sign_up(live_demo.parent)
    user = add_user(org, domain, "mover", display="Mover Original")
    succeeded(*Operation.objects.filter(customer=user))
    user.refresh_from_db()
    guid = str(user.object_guid)
    # An administrator renames the user and moves it into a sub-OU, directly in AD.
    moved_ou = f"OU=Moved,{ad.org_dn(org.name)}"
    ad._add(moved_ou, ["top", "organizationalUnit"], {})
    ad.rename(guid, cn="Renamed Outside", display_name="Renamed Outside")
    ad.move(guid, moved_ou)

    services.set_enabled(user, False)
    succeeded(*Operation.objects.filter(customer=user, action="set_user_enabled"))
    entry = ad.get_by_guid(guid)
    assert entry["userAccountControl"] & 2 == 2
    assert entry["dn"].startswith("CN=Renamed Outside,OU=Moved,")

    service = Service.objects.get(kind=ServiceKind.ACTIVE_DIRECTORY)
    report = reconcile(service, ad)
    user.refresh_from_db()
    assert user.name == "Renamed Outside"
    assert user in [customer for customer, _ in report.changed]
    assert user in [customer for customer, _, _ in report.moved]


def test_reconciliation_reports_orphans_and_missing_objects(live_demo, ad):
    org, domain = sign_up(live_demo.parent)
    keep, lost = add_user(org, domain, "keep"), add_user(org, domain, "lost")
    succeeded(*Operation.objects.filter(customer__in=[keep, lost]))
    lost.refresh_from_db()
    ad.delete(str(lost.object_guid))
    orphan_dn = f"CN=Stray Account,{ad.org_dn(org.name)}"
    ad._add(orphan_dn, ["top", "person", "organizationalPerson", "user"],
            {"sAMAccountName": f"stray{uuid.uuid4().hex[:6]}"})

    service = Service.objects.get(kind=ServiceKind.ACTIVE_DIRECTORY)
    report = reconcile(service, ad)
    assert report.missing == [lost]
    assert orphan_dn.lower() in [e["dn"].lower() for e in report.orphans]
    assert keep not in report.missing

    call_command("reconcile_directory", "--repair", stdout=open("/dev/null", "w"))  # noqa: SIM115
    repair = Operation.objects.filter(customer=lost, params__repair=True).get()
    succeeded(repair)
    lost.refresh_from_db()
    entry = ad.get_by_guid(str(lost.object_guid))
    assert entry["userPrincipalName"] == lost.upn
    assert reconcile(service, ad).missing == []


def test_a_directory_outage_mid_sign_up_completes_with_one_of_each(live_demo, ad, samba_dc):
    # Freeze the DC so the sign-up's first call hangs, then take it down altogether.
    samba_dc.signal(signal.SIGSTOP)
    org, domain = sign_up(live_demo.parent)
    operation = Operation.objects.get(customer=org)
    deadline = time.monotonic() + 30
    while Operation.objects.get(pk=operation.pk).state != "running":
        assert time.monotonic() < deadline, "the worker never started the operation"
        time.sleep(0.1)
    samba_dc.signal(signal.SIGCONT)
    samba_dc.stop()
    time.sleep(3)
    assert Operation.objects.get(pk=operation.pk).state in ("queued", "running")
    samba_dc.start()
    (operation,) = succeeded(operation)
    assert operation.attempts >= 2
    org.refresh_from_db()
    entries = ad.list_under_root()
    assert [e["dn"] for e in entries if e["dn"].lower() == ad.org_dn(org.name).lower()] == [
        ad.org_dn(org.name)]
    assert len([e for e in entries
                if e["dn"].lower() == ad.org_group_dn(org.name).lower()]) == 1
    assert ad.get_by_guid(str(org.object_guid))["dn"] == ad.org_dn(org.name)


def test_a_lost_worker_is_redelivered_without_duplicates(live_demo, ad, samba_dc,
                                                        celery_worker):
    org, domain = sign_up(live_demo.parent)
    succeeded(*Operation.objects.filter(customer=org))
    samba_dc.signal(signal.SIGSTOP)
    user = add_user(org, domain, "survivor")
    operation = Operation.objects.get(customer=user)
    deadline = time.monotonic() + 30
    while Operation.objects.get(pk=operation.pk).state != "running":
        assert time.monotonic() < deadline, "the worker never started the operation"
        time.sleep(0.1)
    celery_worker.kill()
    samba_dc.signal(signal.SIGCONT)
    celery_worker.start()
    (operation,) = succeeded(operation)
    # The killed attempt counts (defect 7: it used to leave attempts at 1).
    assert operation.attempts == 2
    user.refresh_from_db()
    matches = [e for e in ad.list_under_root() if e.get("userPrincipalName") == user.upn]
    assert len(matches) == 1
    assert matches[0]["objectGUID"] == str(user.object_guid)


def test_duplicates_give_a_clear_error(live_demo, ad):
    org, domain = sign_up(live_demo.parent)
    succeeded(*Operation.objects.filter(customer=org))
    # A UPN taken by an object outside the organization, created directly in AD.
    ad._add(f"CN=Squatter {uuid.uuid4().hex[:6]},CN=Users,{ad.settings.base_dn}",
            ["top", "person", "organizationalPerson", "user"],
            {"sAMAccountName": f"sq{uuid.uuid4().hex[:8]}", "userPrincipalName": f"taken@{domain}"})
    user = add_user(org, domain, "taken")
    (operation,) = wait_for_operations(Operation.objects.get(customer=user))
    assert operation.state == "failed"
    assert f"taken@{domain}" in operation.last_error and "already in use" in operation.last_error
    # The same local part at another domain of the organization gets its own logon name.
    other = services.add_domain(org, f"other-{domain}")
    first = add_user(org, domain, "samesam")
    second = add_user(org, other.name, "samesam")
    succeeded(*Operation.objects.filter(customer__in=[first, second]))
    sams = {ad.get_by_guid(str(Customer.objects.get(pk=u.pk).object_guid))["sAMAccountName"]
            for u in (first, second)}
    assert sams == {"samesam", "samesam2"}


AWKWARD = ['Comma, Plus+ "Quote" \\Back', "<Angle> ;Semi= #Hash", "Star* (Paren)",
           "  Spaces around  ", "Zoë Ærøskøbing Ñandú"]


def test_awkward_names_are_stored_as_the_name_rules_say(live_demo, ad):
    # The most awkward organization name provisioning.names accepts (DN separators, '#'
    # inside, LDAP filter and PowerShell characters); display names take any printable
    # character, and every name is stored without the whitespace around it.
    org, domain = sign_up(live_demo.parent, name=unique("Org, Odd (Name) + #1 & A/S"))
    users = [add_user(org, domain, f"odd{i}", display=name) for i, name in enumerate(AWKWARD)]
    succeeded(*Operation.objects.filter(customer__in=[org, *users]))
    org.refresh_from_db()
    assert ad.get_by_guid(str(org.object_guid))["name"] == org.name
    for user, name in zip(users, AWKWARD, strict=True):
        user.refresh_from_db()
        entry = ad.get_by_guid(str(user.object_guid))
        assert entry["cn"] == name.strip()
        assert entry["displayName"] == name.strip()
        assert user.name == name.strip()


def test_soft_delete_disables_in_ad_and_keeps_the_row(live_demo, ad):
    org, domain = sign_up(live_demo.parent)
    user = add_user(org, domain, "leaver")
    succeeded(*Operation.objects.filter(customer=user))
    services.delete_customer(user)
    succeeded(*Operation.objects.filter(customer=user, action="delete_user"))
    user.refresh_from_db()
    assert user.status_id == c.DELETED
    assert ad.get_by_guid(str(user.object_guid))["userAccountControl"] & 2 == 2

    # Suspending the organization disables its users in AD; resuming enables them again,
    # except one an administrator disabled on its own.
    active, held = add_user(org, domain, "active"), add_user(org, domain, "held")
    succeeded(*Operation.objects.filter(customer__in=[active, held]))
    services.set_enabled(held, False)
    services.set_enabled(org, False)
    succeeded(*Operation.objects.filter(customer__in=[org, held]).exclude(
        action="provision_organization"))
    active.refresh_from_db()
    held.refresh_from_db()
    assert ad.get_by_guid(str(active.object_guid))["userAccountControl"] & 2 == 2
    services.set_enabled(org, True)
    succeeded(*Operation.objects.filter(customer=org, action="set_organization_enabled"))
    assert ad.get_by_guid(str(active.object_guid))["userAccountControl"] & 2 == 0
    assert ad.get_by_guid(str(held.object_guid))["userAccountControl"] & 2 == 2


def test_the_admins_connection_test_binds_and_identifies(live_demo, client):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    client.force_login(get_user_model().objects.get(username="provider"))
    services_ = Service.objects.order_by("kind")
    response = client.post(reverse("admin:servers_service_changelist"),
                           {"action": "test_connection_action",
                            "_selected_action": [s.pk for s in services_]}, follow=True)
    text = [str(m) for m in response.context["messages"]]
    assert any("Bound to 127.0.0.1 as" in m and "Administrator" in m for m in text), text
    assert any("WinRM endpoint answered: Microsoft Corporation" in m for m in text), text
    assert not any("Connection failed" in m for m in text)
