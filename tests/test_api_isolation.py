"""An IDOR walk over the API with a second tenant's ids (Litware > Fabrikam): every id in a
URL, a body or a filter answers 404, every list leaves the other tenant out, and nothing of
it changes. The routes are read from the resolver, so a new one is walked without editing
this file."""

import pytest
from django.urls import reverse

from provisioning import constants as c
from provisioning.models import (
    Account,
    ApiToken,
    Customer,
    MailAddress,
    MailContact,
    MailForwarding,
    Operation,
)
from tests.support.api import api_client, api_endpoints
from tests.support.views import NEW_PASSWORD, PRIMARY, RESELLER

# The object a route's {pk} names, by the route name's first word.
FOREIGN = {"organization": "organization", "user": "user", "peer": "account",
           "operation": "operation", "token": "token", "contact": "contact"}
WALKERS = [PRIMARY, RESELLER]


def detail_routes():
    return sorted((method, name) for method, name, has_pk in api_endpoints() if has_pk)


def snapshot(tenant):
    org, user = tenant["organization"], tenant["user"]
    return (list(Customer.objects.filter(pk__in=[org.pk, user.pk]).order_by("pk")
                 .values_list("name", "status_id", "service_plan_id")),
            list(Account.objects.filter(customer=org).values_list("role", "user__is_active")),
            list(Operation.objects.filter(scope=org).values_list("pk", "state")),
            list(ApiToken.objects.filter(pk=tenant["token"].pk).values_list("revoked")),
            list(org.assets.values_list("name")),
            list(org.hosting_spaces.values_list("hosting_plan_id")),
            list(MailContact.objects.filter(organization=org).values_list("pk", "status")),
            list(MailAddress.objects.filter(customer=user).values_list("address")),
            list(MailForwarding.objects.filter(customer=user).values_list("address")))


def test_every_route_with_an_id_is_walked():
    for method, name in detail_routes():
        assert name.split("-")[0] in FOREIGN, f"{method} {name}: teach FOREIGN its object"
    assert len(detail_routes()) >= 21


BODIES = {"patch": {"display_name": "Pwned", "role": "peer_read_only"},
          "post": {"password": NEW_PASSWORD, "secret": NEW_PASSWORD, "hosting_plan": 1,
                   "service_plan": None, "addresses": ["x@fabrikam.example"],
                   "forward_to": "x@gmail.example"}}


@pytest.mark.parametrize("login", WALKERS)
def test_foreign_ids_in_urls_answer_404(demo, other_tenant, login):
    before = snapshot(other_tenant)
    client = api_client(login)
    for method, name in detail_routes():
        foreign = other_tenant[FOREIGN[name.split("-")[0]]]
        url = reverse(f"api:{name}", kwargs={"pk": foreign.pk})
        response = getattr(client, method)(url, BODIES.get(method), format="json")
        assert response.status_code == 404, f"{login} {method.upper()} {url}: " \
                                            f"{response.status_code}"
    assert snapshot(other_tenant) == before


@pytest.mark.parametrize("login", WALKERS)
def test_foreign_ids_in_bodies_answer_404(demo, other_tenant, login):
    before = snapshot(other_tenant)
    fabrikam = other_tenant["organization"]
    client = api_client(login)
    bodies = {
        "/api/v1/users/": {"organization": fabrikam.pk, "display_name": "X", "local_part": "x",
                           "domain": "fabrikam.example", "password": NEW_PASSWORD},
        "/api/v1/domains/": {"organization": fabrikam.pk, "name": "x.fabrikam.example"},
        "/api/v1/peers/": {"organization": fabrikam.pk, "username": "fab-x",
                           "password": NEW_PASSWORD, "role": "peer_read_only"},
        "/api/v1/contacts/": {"organization": fabrikam.pk, "name": "X",
                              "email": "x@evil.example"},
    }
    if login == RESELLER:
        from servicplans.models import HostingPlan

        bodies["/api/v1/organizations/"] = {
            "reseller": other_tenant["reseller"].pk, "name": "Evil", "primary_domain":
            "evil.example", "admin_username": "evil-admin", "admin_password": NEW_PASSWORD,
            "hosting_plan": HostingPlan.objects.get(name="Business Basic").pk}
    for url, body in bodies.items():
        response = client.post(url, body, format="json")
        assert response.status_code == 404, f"{login} POST {url}: {response.status_code}"
    assert snapshot(other_tenant) == before
    assert not Customer.objects.filter(name__in=["X", "Evil"]).exists()
    assert not MailContact.objects.filter(name="X").exists()


FILTERS = {
    "organization": ["/api/v1/users/", "/api/v1/domains/", "/api/v1/peers/",
                     "/api/v1/contacts/",
                     "/api/v1/operations/", "/api/v1/hosting-spaces/",
                     "/api/v1/service-plans/", "/api/v1/events/"],
    "customer": ["/api/v1/operations/", "/api/v1/events/"],
    "reseller": ["/api/v1/organizations/", "/api/v1/events/"],
}


@pytest.mark.parametrize("login", WALKERS)
def test_foreign_ids_in_filters_answer_404(demo, other_tenant, login):
    client = api_client(login)
    values = {"organization": other_tenant["organization"].pk,
              "customer": other_tenant["user"].pk, "reseller": other_tenant["reseller"].pk}
    for param, urls in FILTERS.items():
        for url in urls:
            response = client.get(url, {param: values[param]})
            assert response.status_code == 404, f"{login} GET {url}?{param}="


def test_a_reseller_filter_on_ones_own_organization_is_404_too(demo, other_tenant):
    # An organization's login sees no reseller at all.
    response = api_client(PRIMARY).get("/api/v1/organizations/", {"reseller": demo.parent_id})
    assert response.status_code == 404


LISTS = ["/api/v1/organizations/", "/api/v1/users/", "/api/v1/domains/", "/api/v1/peers/",
         "/api/v1/contacts/",
         "/api/v1/operations/", "/api/v1/hosting-spaces/", "/api/v1/events/",
         "/api/v1/events/?format=csv", "/api/v1/tokens/"]


@pytest.mark.parametrize("login", WALKERS)
def test_lists_leave_the_other_tenant_out(demo, other_tenant, login):
    client = api_client(login)
    foreign = ("Fabrikam", "fabrikam", "Litware", "pat@")
    for url in LISTS:
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        assert not any(word in text for word in foreign), f"{login} {url}"
    own = client.get("/api/v1/users/", {"limit": 200}).json()["results"]
    assert {u["upn"] for u in own} >= {"megan@contoso.example", "alex@contoso.example"}


def test_the_other_reseller_sees_only_its_own(demo, other_tenant):
    client = api_client("litware-reseller")
    names = [o["name"] for o in client.get("/api/v1/organizations/").json()["results"]]
    assert names == ["Fabrikam"]
    assert client.get(f"/api/v1/organizations/{demo.pk}/").status_code == 404
    events = client.get("/api/v1/events/?limit=1000").json()["results"]
    assert events and all("Contoso" not in e["customer"]["name"] for e in events)
    assert not any(e["customer"]["name"] in ("Contoso", "Northwind Hosting") for e in events)


def test_a_deleted_organization_is_gone_for_its_own_logins(demo, eager_dryrun):
    from provisioning import services

    client = api_client(PRIMARY)
    services.delete_customer(demo)
    assert Customer.objects.get(pk=demo.pk).status_id == c.DELETED
    assert client.get(f"/api/v1/organizations/{demo.pk}/").status_code == 404
    assert client.get("/api/v1/users/").json()["results"] == []


def test_an_organizations_login_sees_only_its_service_plans(demo):
    from servicplans.models import ServicePlan

    ServicePlan.objects.create(name="Platinum")
    plans = api_client(PRIMARY).get("/api/v1/service-plans/").json()["results"]
    assert {p["name"] for p in plans} == {"Gold", "Silver"}
    plans = api_client(RESELLER).get("/api/v1/service-plans/").json()["results"]
    assert {"Gold", "Silver", "Consumer", "Platinum"} <= {p["name"] for p in plans}
