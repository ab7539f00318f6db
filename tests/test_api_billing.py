"""A billing system's five calls over the API, as docs/api.md shows them with curl: create an
account (an organization with its primary administrator), follow its operation, suspend,
unsuspend, change the hosting plan (an upgrade, and a downgrade refused with the quota that
would be exceeded), terminate — each answering as the panel's service function decides."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from provisioning import constants as c
from provisioning import services
from provisioning.models import Account, Customer, Event, HostingSpace, Operation, Role
from servicplans.models import HostingPlan, ServicePlan
from tests.support.api import api_client
from tests.support.views import NEW_PASSWORD


@pytest.fixture
def billing(demo, eager_dryrun):
    return api_client("reseller")


def plan(name):
    return HostingPlan.objects.get(name=name).pk


def sign_up_body(**overrides):
    return {"name": "Tailspin Toys", "primary_domain": "tailspin.example",
            "admin_username": "tailspin-admin", "admin_password": NEW_PASSWORD,
            "admin_email": "it@tailspin.example", "hosting_plan": plan("Business Basic"),
            "service_plans": [ServicePlan.objects.get(name="Gold").pk], **overrides}


def run(capture, call):
    """Make the call and run the operations it queued, as the worker would."""
    with capture(execute=True):
        response = call()
    return response


def test_create_follow_suspend_unsuspend_change_plan_terminate(
        billing, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    # 1. Create the account: 202, the Location of the provisioning operation.
    response = run(capture, lambda: billing.post("/api/v1/organizations/", sign_up_body(),
                                                 format="json"))
    assert response.status_code == 202, response.json()
    operation = response.json()
    assert response["Location"] == f"http://testserver/api/v1/operations/{operation['id']}/"
    assert operation["action"] == "provision_organization"
    org = Customer.objects.organizations().get(name="Tailspin Toys")
    assert operation["customer"]["id"] == org.pk
    admin = Account.objects.get(customer=org)
    assert admin.role == Role.PRIMARY_ADMIN and admin.user.check_password(NEW_PASSWORD)

    # 2. Follow the operation to its end.
    followed = billing.get(response["Location"]).json()
    assert followed["state"] == "succeeded"
    assert [s["name"] for s in followed["steps"]][:2] == ["root_ou", "org_ou"]
    detail = billing.get(f"/api/v1/organizations/{org.pk}/").json()
    assert detail["status"] == "Enabled" and detail["primary_domain"] == "tailspin.example"
    assert detail["hosting_plan"]["name"] == "Business Basic"
    assert detail["provisioned"] is True

    # 3. Suspend: the organization's users are disabled; its writes are refused (409).
    user = run(capture, lambda: services.create_user(
        org, display_name="Ann", local_part="ann", domain="tailspin.example",
        password=NEW_PASSWORD))
    user.refresh_from_db()
    assert user.object_guid is not None  # provisioned: the suspension has a user to disable
    response = run(capture, lambda: billing.post(f"/api/v1/organizations/{org.pk}/suspend/"))
    assert response.status_code == 202
    suspension = billing.get(response["Location"]).json()
    assert suspension["state"] == "succeeded"
    assert f"user:{user.object_guid}" in [s["name"] for s in suspension["steps"]]
    assert billing.get(f"/api/v1/organizations/{org.pk}/").json()["status"] == "Disabled"
    refused = billing.post("/api/v1/users/", {
        "organization": org.pk, "display_name": "Bob", "local_part": "bob",
        "domain": "tailspin.example", "password": NEW_PASSWORD}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "suspended"
    assert "is suspended" in refused.json()["detail"]
    # Suspending again changes nothing: 200 with the organization.
    again = billing.post(f"/api/v1/organizations/{org.pk}/suspend/")
    assert again.status_code == 200 and again.json()["status"] == "Disabled"
    # The plan of a suspended organization cannot change either.
    refused = billing.post(f"/api/v1/organizations/{org.pk}/hosting-plan/",
                           {"hosting_plan": plan("Business Premium")}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "suspended"

    # 4. Unsuspend (resume): each user comes back in its own earlier state.
    response = run(capture, lambda: billing.post(f"/api/v1/organizations/{org.pk}/resume/"))
    assert response.status_code == 202
    resumption = billing.get(response["Location"]).json()
    assert f"user:{user.object_guid}" in [s["name"] for s in resumption["steps"]]
    assert billing.get(f"/api/v1/organizations/{org.pk}/").json()["status"] == "Enabled"
    assert Customer.objects.get(pk=user.pk).status_id == c.ENABLED

    # 5. Change the hosting plan: an upgrade goes through (200), its event is billed.
    response = billing.post(f"/api/v1/organizations/{org.pk}/hosting-plan/",
                            {"hosting_plan": plan("Business Premium")}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["hosting_plan"]["name"] == "Business Premium"
    assert HostingSpace.objects.get(customer=org).hosting_plan.name == "Business Premium"
    change = Event.objects.filter(customer=org, event_type=c.PLAN_CHANGE).get()
    assert change.data == {"plan": "hosting", "old": "Business Basic",
                           "new": "Business Premium"}

    # 6. Terminate: 202, the organization is gone from the API, its rows stay.
    response = run(capture, lambda: billing.delete(f"/api/v1/organizations/{org.pk}/"))
    assert response.status_code == 202
    teardown = billing.get(response["Location"]).json()
    assert (teardown["action"], teardown["state"]) == ("delete_organization", "succeeded")
    assert billing.get(f"/api/v1/organizations/{org.pk}/").status_code == 404
    assert Customer.objects.get(pk=org.pk).status_id == c.DELETED
    assert Customer.objects.get(pk=user.pk).status_id == c.DELETED
    # A deleted organization's events stay in the feed, its users' deletions with them:
    # the billing record.
    for customer in (org, user):
        feed = billing.get("/api/v1/events/", {"customer": customer.pk}).json()
        assert [e["event_type"] for e in feed["results"]][-1] == c.EVENT_DELETED


def test_a_downgrade_below_use_is_refused_with_the_quota(billing, demo):
    premium, basic = plan("Business Premium"), plan("Business Basic")
    response = billing.post(f"/api/v1/organizations/{demo.pk}/hosting-plan/",
                            {"hosting_plan": premium}, format="json")
    assert response.status_code == 200
    gold = ServicePlan.objects.get(name="Gold")
    for n in range(25):  # Business Basic allows 25 users; Contoso has 3
        services.create_user(demo, display_name=f"User {n}", local_part=f"user{n}",
                             domain="contoso.example", password=NEW_PASSWORD,
                             service_plan=gold if n < 2 else None)
    response = billing.post(f"/api/v1/organizations/{demo.pk}/hosting-plan/",
                            {"hosting_plan": basic}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body == {"detail": "Users: the plan Business Basic allows 25, Contoso uses 28.",
                    "code": "quota", "field": "hosting_plan", "quota": "users", "used": 28,
                    "limit": 25, "requested": 0}
    assert HostingSpace.objects.get(customer=demo).hosting_plan.name == "Business Premium"


def test_a_plan_the_reseller_does_not_sell_is_refused(billing, demo):
    response = billing.post(f"/api/v1/organizations/{demo.pk}/hosting-plan/",
                            {"hosting_plan": plan("Reseller Standard")}, format="json")
    assert response.status_code == 400
    assert response.json()["hosting_plan"] == [
        "Northwind Hosting does not sell the plan Reseller Standard."]


def test_sign_up_errors_come_back_by_field(billing):
    before = Customer.objects.count(), get_user_model().objects.count()
    response = billing.post("/api/v1/organizations/", sign_up_body(
        name="Contoso", primary_domain="contoso.example", admin_username="contoso-admin",
        admin_password="short"), format="json")
    assert response.status_code == 400
    errors = response.json()
    assert errors["code"] == "invalid"
    assert errors["name"] == ["An organization named 'Contoso' already exists."]
    assert errors["primary_domain"] == ["The domain contoso.example is already in use."]
    assert errors["admin_username"] == ["The login 'contoso-admin' is already taken."]
    assert any("too short" in e for e in errors["admin_password"])
    assert (Customer.objects.count(), get_user_model().objects.count()) == before
    # A missing field is the parser's 400, by field too.
    response = billing.post("/api/v1/organizations/", {"name": "X"}, format="json")
    assert response.status_code == 400
    assert response.json()["primary_domain"] == ["This field is required."]


def test_sign_up_over_the_resellers_quota_is_409(billing, reseller):
    from servicplans.models import HostingPlanQuota

    space = reseller.hosting_spaces.get()
    HostingPlanQuota.objects.filter(hosting_plan=space.hosting_plan,
                                    quota="organizations").update(limit=1)
    response = billing.post("/api/v1/organizations/", sign_up_body(), format="json")
    assert response.status_code == 409
    assert response.json() | {"detail": ""} == {
        "detail": "", "code": "quota", "field": "name", "quota": "organizations", "used": 1,
        "limit": 1, "requested": 1}


def test_the_provider_names_the_reseller(demo, eager_dryrun):
    provider = api_client("provider")
    response = provider.post("/api/v1/organizations/", sign_up_body(), format="json")
    assert response.status_code == 400 and "reseller" in response.json()
    response = provider.post("/api/v1/organizations/", sign_up_body(reseller=demo.parent_id),
                             format="json")
    assert response.status_code == 202
    assert Customer.objects.get(name="Tailspin Toys").parent_id == demo.parent_id


def test_the_operation_of_a_write_is_the_one_in_location(billing, demo):
    megan = demo.children.get(upn="megan@contoso.example")
    response = billing.post(f"/api/v1/users/{megan.pk}/disable/")
    assert response.status_code == 202
    operation = Operation.objects.get(pk=response.json()["id"])
    assert (operation.customer_id, operation.action, operation.params) == (
        megan.pk, "set_user_enabled", {"enabled": False})
    assert response["Location"].endswith(reverse("api:operation-detail", args=[operation.pk]))
    assert operation.requested_by.username == "reseller"
