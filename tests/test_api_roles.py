"""Who may call which API endpoint: the allowed/denied matrix for every route, method and
role — the panel's matrix (test_panel_roles.py), since both read scoping.PERMISSIONS.

Each call runs in a savepoint that is rolled back, so every login acts on the same demo."""

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from provisioning import services, tokens
from provisioning.models import Account, Customer, Operation
from servicplans.models import HostingPlan, ServicePlan
from tests.support.api import api_client, api_endpoints
from tests.support.views import (
    ABOVE,
    ADMINS,
    EVERYONE,
    HELPDESK,
    HELPERS,
    MANAGERS,
    NEW_PASSWORD,
)


def ids():
    contoso = Customer.objects.organizations().get(name="Contoso")
    megan = contoso.children.get(upn="megan@contoso.example")
    operation = Operation.objects.filter(customer=megan).first()
    Operation.objects.filter(pk=operation.pk).update(state="failed", last_error="timeout")
    contact = contoso.mail_contacts.live().first() or services.create_contact(
        contoso, name="Pat Brown", email="pat@fabrikam.example")
    return {
        "org": contoso.pk, "reseller": contoso.parent_id, "user": megan.pk,
        "operation": operation.pk, "contact": contact.pk,
        # Every administrator outranks the helpdesk peer: it is the target of peer calls.
        "peer": Account.objects.get(user__username=HELPDESK).pk,
        "basic": HostingPlan.objects.get(name="Business Basic").pk,
        "premium": HostingPlan.objects.get(name="Business Premium").pk,
        "gold": ServicePlan.objects.get(name="Gold").pk,
        "silver": ServicePlan.objects.get(name="Silver").pk,
    }


# (method, route name, url kwargs, body) -> the logins allowed; all others get 403.
MATRIX = {
    ("get", "organization-list", (), None): EVERYONE,
    ("post", "organization-list", (), lambda i: {
        "reseller": i["reseller"], "name": "Tailspin", "primary_domain": "tailspin.example",
        "admin_username": "tailspin-admin", "admin_password": NEW_PASSWORD,
        "hosting_plan": i["basic"], "service_plans": [i["gold"]]}): ABOVE,
    ("get", "organization-detail", ("org",), None): EVERYONE,
    ("get", "organization-changes", ("org",), None): ADMINS,
    ("delete", "organization-detail", ("org",), None): ABOVE,
    ("post", "organization-suspend", ("org",), None): ABOVE,
    ("post", "organization-resume", ("org",), None): ABOVE,
    ("post", "organization-hosting-plan", ("org",), lambda i: {
        "hosting_plan": i["premium"]}): ABOVE,
    ("get", "user-list", (), None): EVERYONE,
    ("post", "user-list", (), lambda i: {
        "organization": i["org"], "display_name": "Nestor Wilke", "local_part": "nestor",
        "domain": "contoso.example", "password": NEW_PASSWORD,
        "service_plan": i["silver"]}): MANAGERS,
    ("get", "user-detail", ("user",), None): EVERYONE,
    ("patch", "user-detail", ("user",), lambda i: {"display_name": "Megan B."}): MANAGERS,
    ("delete", "user-detail", ("user",), None): MANAGERS,
    ("post", "user-password", ("user",), lambda i: {"password": NEW_PASSWORD}): HELPERS,
    ("post", "user-disable", ("user",), None): HELPERS,
    ("post", "user-enable", ("user",), None): HELPERS,
    ("post", "user-service-plan", ("user",), lambda i: {"service_plan": i["silver"]}):
        MANAGERS,
    ("get", "user-addresses", ("user",), None): EVERYONE,
    ("post", "user-addresses", ("user",), lambda i: {
        "addresses": ["megan.bowen@contoso.example"]}): MANAGERS,
    ("get", "user-forwarding", ("user",), None): EVERYONE,
    ("post", "user-forwarding", ("user",), lambda i: {
        "forward_to": "alex@contoso.example", "keep_copy": True}): MANAGERS,
    ("get", "contact-list", (), None): EVERYONE,
    ("post", "contact-list", (), lambda i: {
        "organization": i["org"], "name": "Lee Chen", "email": "lee@fabrikam.example"}):
        MANAGERS,
    ("get", "contact-detail", ("contact",), None): EVERYONE,
    ("delete", "contact-detail", ("contact",), None): MANAGERS,
    ("get", "domain-list", (), None): EVERYONE,
    ("post", "domain-list", (), lambda i: {"organization": i["org"],
                                           "name": "sales.contoso.example"}): ADMINS,
    ("get", "peer-list", (), None): ADMINS,
    ("post", "peer-list", (), lambda i: {
        "organization": i["org"], "username": "contoso-new-peer", "password": NEW_PASSWORD,
        "role": "peer_read_only"}): ADMINS,
    ("get", "peer-detail", ("peer",), None): ADMINS,
    ("patch", "peer-detail", ("peer",), lambda i: {"role": "peer_read_only"}): ADMINS,
    ("delete", "peer-detail", ("peer",), None): ADMINS,
    ("post", "peer-password", ("peer",), lambda i: {"password": NEW_PASSWORD}): ADMINS,
    ("get", "operation-list", (), None): EVERYONE,
    ("get", "operation-detail", ("operation",), None): EVERYONE,
    ("post", "operation-retry", ("operation",), lambda i: {"secret": NEW_PASSWORD}): MANAGERS,
    ("get", "hosting-space-list", (), None): EVERYONE,
    ("get", "hosting-plan-list", (), None): ABOVE,
    ("get", "service-plan-list", (), None): EVERYONE,
    ("get", "events", (), None): EVERYONE,
    ("get", "me", (), None): EVERYONE,
    ("get", "token-list", (), None): EVERYONE,
    ("post", "token-list", (), lambda i: {"name": "Billing"}): EVERYONE,
}
# The caller's own tokens by id: test_api_tokens.py (another login's token id is 404).
OWN_OBJECT_ROUTES = {("get", "token-detail"), ("delete", "token-detail")}


def api_routes():
    return {(method, name) for method, name, _ in api_endpoints()}


def test_the_matrix_covers_every_api_endpoint():
    covered = {(method, name) for method, name, _, _ in MATRIX} | OWN_OBJECT_ROUTES
    assert api_routes() == covered


def call(client, method, name, kwargs, body):
    url = reverse(f"api:{name}", kwargs={"pk": kwargs[0]} if kwargs else None)
    with transaction.atomic():
        response = getattr(client, method)(url, body, format="json")
        transaction.set_rollback(True)
    return response


@pytest.mark.parametrize("method,name,needs,body", list(MATRIX),
                         ids=[f"{m} {n}" for m, n, _, _ in MATRIX])
def test_each_role_is_allowed_or_denied(demo, contoso_peers, method, name, needs, body):
    allowed = MATRIX[(method, name, needs, body)]
    values = ids()
    kwargs = [values[n] for n in needs]
    data = body(values) if body else None
    for login in sorted(EVERYONE):
        response = call(api_client(login), method, name, kwargs, data)
        if login in allowed:
            assert response.status_code in (200, 201, 202, 204), (
                f"{login} {method.upper()} {name}: {response.status_code} "
                f"{getattr(response, 'data', '')}")
        else:
            assert response.status_code == 403, (
                f"{login} {method.upper()} {name}: {response.status_code}, expected 403")
            assert response.json()["code"] == "permission_denied"


def test_without_a_token_every_endpoint_answers_401(demo):
    values = ids()
    client = api_client()
    for method, name, needs, body in MATRIX:
        response = call(client, method, name, [values[n] for n in needs],
                        body(values) if body else None)
        assert response.status_code == 401, f"{method} {name}"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_login_without_a_panel_account_is_refused(demo):
    stranger = get_user_model().objects.create_user("stranger", password=NEW_PASSWORD,
                                                    is_staff=True)
    # Staff may make a token for any login; the login still has no panel account.
    provider = get_user_model().objects.get(username="provider")
    token = tokens.create(stranger, name="x", actor=provider)[1]
    response = api_client(token=token).get("/api/v1/organizations/")
    assert response.status_code == 403
    assert response.json()["detail"] == "This login has no panel account."


def test_an_action_that_declares_no_permission_is_refused(rf):
    """Fail closed: a new action left out of its view's `permissions` is 403, not open."""
    from rest_framework.exceptions import PermissionDenied

    from panel.api.views.organizations import OrganizationViewSet

    view = OrganizationViewSet()
    view.action_map, view.action = {"post": "frobnicate"}, "frobnicate"
    view.post = lambda request: None
    with pytest.raises(PermissionDenied, match="No permission is declared for frobnicate"):
        view.permission_for(rf.post("/api/v1/organizations/"))
    view.action = None  # a method the endpoint does not have: left to its 405
    assert view.permission_for(rf.put("/api/v1/organizations/")) is None
