"""Exchange mailboxes from service plans, over pywinrm, end to end through the real worker.

There is no Windows here: the suite's WS-Management endpoint (tests/support/wsman_server.py)
stands in for Exchange. It decodes each script, checks that it is exactly the panel's fixed
template, and keeps the mailbox state that these tests read back."""

import uuid

import pytest

from provisioning import constants as c
from provisioning import journal, services
from provisioning.exchange import parse_quota_bytes
from provisioning.models import Event, Operation
from servicplans.models import ServicePlan
from tests.support.provisioning import (
    PASSWORD,
    add_user,
    sign_up,
    succeeded,
    wait_for_operations,
)

pytestmark = [pytest.mark.samba, pytest.mark.worker]

GOLD_CAS = {"OWAEnabled": True, "PopEnabled": True, "ImapEnabled": True, "MAPIEnabled": True,
            "ActiveSyncEnabled": True}
SILVER_CAS = {"OWAEnabled": True, "PopEnabled": True, "ImapEnabled": False,
              "MAPIEnabled": False, "ActiveSyncEnabled": False}


@pytest.fixture
def endpoint(wsman_endpoint):
    wsman_endpoint.clear_calls()
    return wsman_endpoint


def mailboxes_of(endpoint, guid):
    return [m for m in endpoint.snapshot()["exchange"]["mailboxes"]
            if m["Identity"] == str(guid)]


def test_the_organization_gets_its_exchange_objects_and_events(live_demo, endpoint):
    org, domain = sign_up(live_demo.parent)
    succeeded(*Operation.objects.filter(customer=org))
    state = endpoint.snapshot()["exchange"]
    assert domain in [d["DomainName"] for d in state["accepted_domains"]]
    lists = {a["Name"]: a for a in state["address_lists"]}
    assert lists[f"{org.name} - All Users"]["ConditionalCustomAttribute1"] == [org.name]
    assert f"{org.name} - GAL" in [g["Name"] for g in state["global_address_lists"]]
    assert f"{org.name} - OAB" in [o["Name"] for o in state["offline_address_books"]]
    policy = next(p for p in state["address_book_policies"] if p["Name"] == f"{org.name} - ABP")
    assert policy["GlobalAddressList"].lstrip("\\") == f"{org.name} - GAL"
    assert set(Event.objects.filter(customer=org).values_list("event_type", flat=True)) >= {
        c.EXCH_SERVICE_ADDED, c.ADDRESS_LISTS_CREATED}
    assert endpoint.violations == []


def test_a_gold_user_gets_exactly_what_the_plan_says(live_demo, endpoint, ad):
    org, domain = sign_up(live_demo.parent)
    gold, silver = add_user(org, domain, "goldie"), add_user(org, domain, "silvia", "Silver")
    succeeded(*Operation.objects.filter(customer__in=[org, gold, silver]))
    for user, quota, cas, wireless in ((gold, 10240, GOLD_CAS, 0),
                                       (silver, 2048, SILVER_CAS, 7)):
        user.refresh_from_db()
        (mailbox,) = mailboxes_of(endpoint, user.object_guid)
        assert parse_quota_bytes(mailbox["ProhibitSendReceiveQuota"]) == quota * 1024 * 1024
        assert mailbox["UseDatabaseQuotaDefaults"] is False
        assert mailbox["CustomAttribute1"] == org.name
        assert mailbox["AddressBookPolicy"] == f"{org.name} - ABP"
        assert mailbox["HiddenFromAddressListsEnabled"] is False
        assert {k: mailbox["cas"][k] for k in cas} == cas
        # The "properties" features are real directory attributes (schema-extended Samba).
        entry = ad.get_by_guid(str(user.object_guid),
                               ["msExchOmaAdminWirelessEnable", "msExchMailboxFolderSet"])
        assert int(entry["msExchOmaAdminWirelessEnable"]) == wireless


def test_a_plan_change_sends_only_what_differs(live_demo, endpoint, ad):
    org, domain = sign_up(live_demo.parent)
    user = add_user(org, domain, "changer")
    succeeded(*Operation.objects.filter(customer__in=[org, user]))
    endpoint.clear_calls()
    services.change_plan(user, ServicePlan.objects.get(name="Silver"))
    succeeded(*Operation.objects.filter(customer=user, action="change_plan"))
    calls = [(cmdlet, params) for cmdlet, params in endpoint.calls
             if not cmdlet.startswith("Get-")]
    user.refresh_from_db()
    guid = str(user.object_guid)
    assert calls == [
        ("Set-Mailbox", {"Identity": guid, "ProhibitSendReceiveQuota": "2048MB",
                         "ProhibitSendQuota": "1945MB", "IssueWarningQuota": "1843MB"}),
        ("Set-CASMailbox", {"Identity": guid, "ImapEnabled": False, "MAPIEnabled": False,
                            "ActiveSyncEnabled": False}),
    ]
    entry = ad.get_by_guid(guid, ["msExchOmaAdminWirelessEnable", "msExchMailboxFolderSet"])
    assert int(entry["msExchOmaAdminWirelessEnable"]) == 7
    assert int(entry["msExchMailboxFolderSet"]) == 1
    assert Event.objects.filter(customer=user, event_type=c.PLAN_CHANGE,
                                data__new="Silver").count() == 1


HOSTILE = "O'Brien \"$(Remove-Item C:\\ -Recurse)\" `whoami`; \u2018a\u2019 \u201ab\u201b"
# The PowerShell metacharacters an organization name may hold (provisioning.names): quote,
# call operator, parentheses, comment, splatting, array operators.
HOSTILE_ORGANIZATION = "O'Brien & (Remove-Item -Recurse) #x, @a+b "


def test_hostile_values_reach_exchange_as_data(live_demo, endpoint):
    org, domain = sign_up(live_demo.parent,
                          name=HOSTILE_ORGANIZATION + uuid.uuid4().hex[:6])
    user = add_user(org, domain, "o.brien", display=HOSTILE[:60])
    succeeded(*Operation.objects.filter(customer__in=[org, user]))
    assert endpoint.violations == []
    user.refresh_from_db()
    (mailbox,) = mailboxes_of(endpoint, user.object_guid)
    assert mailbox["CustomAttribute1"] == org.name
    sent = [p for cmdlet, p in endpoint.calls if cmdlet == "New-AddressList"]
    assert {"Name": f"{org.name} - All Users", "IncludedRecipients": "AllRecipients",
            "ConditionalCustomAttribute1": [org.name]} in sent


def test_a_timeout_at_the_endpoint_is_retried_and_completes(live_demo, endpoint):
    org, domain = sign_up(live_demo.parent)
    succeeded(*Operation.objects.filter(customer=org))
    endpoint.fail_next("timeout", cmdlet="Set-CASMailbox", seconds=6)
    user = add_user(org, domain, "patient")
    (operation,) = succeeded(*Operation.objects.filter(customer=user))
    assert operation.attempts >= 2
    user.refresh_from_db()
    assert len(mailboxes_of(endpoint, user.object_guid)) == 1


def test_a_permanent_error_fails_with_exchanges_message(live_demo, endpoint, ad):
    org, domain = sign_up(live_demo.parent)
    succeeded(*Operation.objects.filter(customer=org))
    message = "Database 'DB01' is offline for maintenance."
    endpoint.fail_next("error", cmdlet="Enable-Mailbox", message=message)
    user = add_user(org, domain, "unlucky")
    (operation,) = wait_for_operations(*Operation.objects.filter(customer=user))
    assert operation.state == "failed"
    assert message in operation.last_error
    assert operation.attempts == 1
    # The half-made user is rolled back from the directory, and the journal says so.
    assert ad.find_by_upn(user.upn) is None
    assert ("rollback", "done") in [(s["name"], s["state"]) for s in operation.steps]
    # A retry with a new password completes it.
    journal.retry(operation, secret="Retry-Password-2026!")
    succeeded(operation)


def test_running_the_same_operation_again_creates_no_duplicate(live_demo, endpoint, ad):
    org, domain = sign_up(live_demo.parent)
    user = add_user(org, domain, "twice")
    succeeded(*Operation.objects.filter(customer__in=[org, user]))
    # Outside a transaction, enqueue sends at once.
    again = [journal.enqueue(org, "provision_organization"),
             journal.enqueue(user, "provision_user", secret=PASSWORD)]
    succeeded(*again)
    user.refresh_from_db()
    assert len(mailboxes_of(endpoint, user.object_guid)) == 1
    state = endpoint.snapshot()["exchange"]
    assert [a["Name"] for a in state["address_lists"]].count(f"{org.name} - All Users") == 1
    assert [d["DomainName"] for d in state["accepted_domains"]].count(domain) == 1
    assert len([e for e in ad.list_under_root() if e.get("userPrincipalName") == user.upn]) == 1
    assert endpoint.violations == []


def test_soft_delete_disconnects_the_mailbox_and_keeps_its_data(live_demo, endpoint):
    org, domain = sign_up(live_demo.parent)
    user = add_user(org, domain, "leaving")
    succeeded(*Operation.objects.filter(customer__in=[org, user]))
    user.refresh_from_db()
    services.delete_customer(user)
    succeeded(*Operation.objects.filter(customer=user, action="delete_user"))
    state = endpoint.snapshot()["exchange"]
    assert mailboxes_of(endpoint, user.object_guid) == []
    assert str(user.object_guid) in [m.get("Identity") for m in
                                     state["disconnected_mailboxes"]]


def test_a_feature_type_added_in_the_admin_works_without_code(live_demo, endpoint):
    from django.core.exceptions import ValidationError

    from servicplans.models import FeatureType, PlanFeature

    unknown = FeatureType(name="Teleport", native_attribute="Set-Teleport", parent_node="mail")
    with pytest.raises(ValidationError, match="not a known mail attribute"):
        unknown.full_clean()
    ews = FeatureType(name="EWS", native_attribute="EwsEnabled", parent_node="mail")
    ews.full_clean()
    ews.save()
    gold = ServicePlan.objects.get(name="Gold")
    bad_value = PlanFeature(service_plan=gold, feature_type=ews, value="perhaps")
    with pytest.raises(ValidationError, match="not a yes/no value"):
        bad_value.full_clean()
    PlanFeature.objects.create(service_plan=gold, feature_type=ews, value="false")

    org, domain = sign_up(live_demo.parent)
    user = add_user(org, domain, "noews")
    succeeded(*Operation.objects.filter(customer__in=[org, user]))
    user.refresh_from_db()
    (mailbox,) = mailboxes_of(endpoint, user.object_guid)
    assert mailbox["cas"]["EwsEnabled"] is False
