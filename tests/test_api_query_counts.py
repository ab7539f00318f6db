"""Every API list costs the same number of SQL queries for a page of 3 rows as for a page of
40: no query per row (a lost select_related or prefetch fails here). Hosting spaces'
usage comes from one set of grouped counts for the whole page (quotas.usage_many)."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from provisioning import services, tokens
from provisioning.models import Role
from servicplans.models import HostingPlan, ServicePlan
from tests.support.api import api_client
from tests.support.views import NEW_PASSWORD, PRIMARY, RESELLER, make_peer

# list: (login, how to add one more row it lists)
LISTS = {
    "/api/v1/organizations/": (RESELLER, lambda demo, n: services.sign_up_organization(
        reseller=demo.parent, name=f"Org {n}", primary_domain=f"org{n}.example",
        admin_username=f"org{n}-admin", admin_password=NEW_PASSWORD,
        hosting_plan=HostingPlan.objects.get(name="Business Premium"),
        service_plans=ServicePlan.objects.all())),
    "/api/v1/hosting-spaces/": (RESELLER, lambda demo, n: services.sign_up_organization(
        reseller=demo.parent, name=f"Space {n}", primary_domain=f"space{n}.example",
        admin_username=f"space{n}-admin", admin_password=NEW_PASSWORD,
        hosting_plan=HostingPlan.objects.get(name="Business Premium"),
        service_plans=ServicePlan.objects.all())),
    "/api/v1/users/": (PRIMARY, lambda demo, n: services.create_user(
        demo, display_name=f"User {n}", local_part=f"user{n}", domain="contoso.example",
        password=NEW_PASSWORD, service_plan=ServicePlan.objects.get(name="Silver"))),
    "/api/v1/domains/": (PRIMARY, lambda demo, n: services.add_domain(
        demo, f"d{n}.contoso.example")),
    "/api/v1/contacts/": (PRIMARY, lambda demo, n: services.create_contact(
        demo, name=f"Contact {n}", email=f"contact{n}@fabrikam.example")),
    "/api/v1/peers/": (PRIMARY, lambda demo, n: make_peer(demo, f"peer-{n}",
                                                          Role.PEER_READ_ONLY)),
    "/api/v1/operations/": (PRIMARY, lambda demo, n: services.reset_password(
        demo.children.first(), NEW_PASSWORD)),
    "/api/v1/events/": (PRIMARY, lambda demo, n: services.record_event(
        demo, "PlanChange", n=n)),
    "/api/v1/tokens/": (PRIMARY, lambda demo, n: tokens.create(
        get_user_model().objects.get(username=PRIMARY), name=f"t{n}",
        actor=get_user_model().objects.get(username=PRIMARY))),
    "/api/v1/service-plans/": (RESELLER, lambda demo, n: ServicePlan.objects.create(
        name=f"Plan {n}")),
    "/api/v1/hosting-plans/": (RESELLER, lambda demo, n: HostingPlan.objects.create(
        name=f"Hosting {n}", virtual_server=HostingPlan.objects.first().virtual_server)),
}


def queries(client, url):
    client.get(url, {"limit": 200})  # fill the per-process caches first
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"limit": 200})
    assert response.status_code == 200
    rows = response.json()["results"]
    return len(captured.captured_queries), len(rows), captured


@pytest.mark.parametrize("url", sorted(LISTS))
def test_a_list_costs_the_same_queries_for_3_rows_as_for_40(demo, url):
    login, add = LISTS[url]
    client = api_client(login)
    # Room for 40 more users and domains.
    services.change_hosting_plan(demo, HostingPlan.objects.get(name="Business Premium"))
    few, rows_before, _ = queries(client, url)
    for n in range(40):
        add(demo, n)
    many, rows_after, captured = queries(client, url)
    assert rows_after >= rows_before + 40
    listing = "\n".join(q["sql"][:200] for q in captured.captured_queries)
    assert many == few, f"GET {url}: {few} queries for {rows_before} rows, {many} for " \
                        f"{rows_after}:\n{listing}"
