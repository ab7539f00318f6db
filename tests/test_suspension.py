"""A suspended organization: every write for it is refused in the service layer with a message
that says so, its users are disabled in the directory and come back on resume in their own
previous state, and its pages can still be read (issue #9, finding 3)."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from provisioning import accounts, services
from provisioning import constants as c
from provisioning.models import Account, Customer, CustomerAsset, Operation, Role
from servicplans.models import ServicePlan
from tests.support.provisioning import add_user, sign_up, succeeded
from tests.support.views import NEW_PASSWORD, login

PASSWORD = "Suspended-Pass-2026!"


@pytest.fixture
def suspended(demo):
    services.set_enabled(demo, False)
    demo.refresh_from_db()
    return demo


def writes(org):
    """Every write a customer administrator (or a peer) can make for the organization."""
    alex = Customer.objects.get(upn="alex@contoso.example")
    gold, silver = ServicePlan.objects.get(name="Gold"), ServicePlan.objects.get(name="Silver")
    primary = Account.objects.get(customer=org, role=Role.PRIMARY_ADMIN)
    helpdesk = Account.objects.get(customer=org, role=Role.PEER_HELPDESK)
    admin = primary.user
    return {
        "create user": lambda: services.create_user(
            org, display_name="New", local_part="new", domain="contoso.example",
            password=PASSWORD, service_plan=gold),
        "rename user": lambda: services.update_user(alex, display_name="Alex W."),
        "reset password": lambda: services.reset_password(alex, PASSWORD),
        "change plan": lambda: services.change_plan(
            alex, silver if alex.service_plan == gold else gold),
        "disable user": lambda: services.set_enabled(alex, False),
        "delete user": lambda: services.delete_customer(alex),
        "add domain": lambda: services.add_domain(org, "sales.contoso.example"),
        "create peer": lambda: accounts.create_peer(
            org, username="contoso-new", password=NEW_PASSWORD, role=Role.PEER_READ_ONLY,
            actor=admin),
        "edit peer": lambda: accounts.update_peer(
            helpdesk, role=Role.PEER_READ_ONLY, actor=admin),
        "peer password": lambda: accounts.set_peer_password(helpdesk, NEW_PASSWORD,
                                                            actor=admin),
        "remove peer": lambda: accounts.remove_peer(helpdesk, actor=admin),
    }


WRITES = ["create user", "rename user", "reset password", "change plan", "disable user",
          "delete user", "add domain", "create peer", "edit peer", "peer password",
          "remove peer"]


@pytest.mark.parametrize("write", WRITES)
def test_every_write_for_a_suspended_organization_is_refused(suspended, write):
    def state():
        alex = Customer.objects.get(upn="alex@contoso.example")
        helpdesk = Account.objects.select_related("user").get(user__username="contoso-helpdesk")
        return (Customer.objects.count(), Operation.objects.count(), Account.objects.count(),
                CustomerAsset.objects.count(), alex.status_id, alex.name, alex.service_plan_id,
                helpdesk.role, helpdesk.user.is_active, helpdesk.user.password)

    before = state()
    with pytest.raises(ValidationError, match="is suspended"):
        writes(suspended)[write]()
    assert state() == before
    alex = Customer.objects.get(upn="alex@contoso.example")
    assert alex.status_id == c.ENABLED and alex.name != "Alex W."


def test_the_same_writes_go_through_once_resumed(suspended):
    services.set_enabled(suspended, True)
    suspended.refresh_from_db()
    actions = writes(suspended)
    assert sorted(actions) == sorted(WRITES)
    for write in WRITES:
        actions[write]()  # none raises
    assert not Account.objects.get(user__username="contoso-helpdesk").user.is_active
    # And each did its work.
    assert Customer.objects.filter(upn="new@contoso.example").exists()
    assert Customer.objects.get(upn="alex@contoso.example").status_id == c.DELETED
    assert CustomerAsset.objects.filter(name="sales.contoso.example").exists()
    assert Account.objects.filter(user__username="contoso-new").exists()


def test_the_panel_shows_why_and_keeps_reads(client, suspended):
    login(client, "contoso-admin")
    for name in ("organization", "users", "domains", "peers", "operations",
                 "organization_events"):
        assert client.get(reverse(name, args=[suspended.pk])).status_code == 200, name
    response = client.post(reverse("user_create", args=[suspended.pk]), {
        "display_name": "New", "local_part": "new", "domain": "contoso.example",
        "password": PASSWORD})
    assert response.status_code == 200
    assert "is suspended" in response.content.decode()
    assert not Customer.objects.filter(upn="new@contoso.example").exists()
    alex = Customer.objects.get(upn="alex@contoso.example")
    response = client.post(reverse("user_disable", args=[suspended.pk, alex.pk]), follow=True)
    assert "is suspended" in response.content.decode()
    alex.refresh_from_db()
    assert alex.status_id == c.ENABLED


def test_a_failed_operation_of_a_suspended_organization_waits_for_the_resume(suspended):
    alex = Customer.objects.get(upn="alex@contoso.example")
    operation = Operation.objects.get(customer=alex, action="provision_user")
    Operation.objects.filter(pk=operation.pk).update(state="failed")
    operation.refresh_from_db()
    with pytest.raises(ValidationError, match="is suspended"):
        services.retry_operation(operation, secret=PASSWORD)
    operation.refresh_from_db()
    assert operation.state == "failed"
    # Once resumed, the same retry goes through.
    services.set_enabled(suspended, True)
    services.retry_operation(operation, secret=PASSWORD)
    operation.refresh_from_db()
    assert operation.state == "queued"


@pytest.mark.samba
@pytest.mark.worker
def test_suspend_disables_users_in_ad_and_resume_restores_each_ones_own_state(live_demo, ad):
    org, domain = sign_up(live_demo.parent)
    active, off = add_user(org, domain, "active"), add_user(org, domain, "off")
    succeeded(*Operation.objects.filter(customer__in=[org, active, off]))
    services.set_enabled(off, False)
    services.set_enabled(org, False)
    succeeded(*Operation.objects.all())
    for user in (active, off):
        user.refresh_from_db()
        assert ad.get_by_guid(str(user.object_guid))["userAccountControl"] & 2, user
    services.set_enabled(org, True)
    succeeded(*Operation.objects.all())
    assert not ad.get_by_guid(str(active.object_guid))["userAccountControl"] & 2
    assert ad.get_by_guid(str(off.object_guid))["userAccountControl"] & 2
