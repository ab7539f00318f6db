"""The users page stays fast at 10,000 users: a fixed, small number of queries whatever the
page, sort or search, each bounded to the organization by its indexed parent_id."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from provisioning import constants as c
from provisioning.models import Customer
from servicplans.models import ServicePlan

USERS = 10_000


@pytest.fixture
def big_organization(demo):
    gold = ServicePlan.objects.get(name="Gold")
    # Rows straight in: the point is the page's queries, not 10,000 provisionings. The nested
    # set numbers only need to be unique; the users page looks users up by parent_id.
    start = Customer.objects.order_by("-rght").values_list("rght", flat=True).first() + 10
    Customer.objects.bulk_create(
        [Customer(parent=demo, customer_type_id=c.BUSINESS_USER, name=f"Bulk User {n:05d}",
                  upn=f"bulk{n:05d}@contoso.example", service_plan=gold if n % 2 else None,
                  tree_id=demo.tree_id, level=demo.level + 1, lft=start + 2 * n,
                  rght=start + 2 * n + 1) for n in range(USERS)], batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE provisioning_customer")
    return demo


@pytest.mark.parametrize("query", [
    {},
    {"page": "150"},
    {"sort": "-upn", "page": "37"},
    {"sort": "service_plan"},
    {"q": "bulk09999"},
    {"q": "Bulk User 0", "status": c.ENABLED, "sort": "-created"},
])
def test_users_page_at_ten_thousand_users(client, big_organization, query):
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    url = reverse("users", args=[big_organization.pk])
    with CaptureQueriesContext(connection) as queries:
        started = time.monotonic()
        response = client.get(url, query)
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    rows = list(response.context["table"].paginated_rows)
    assert rows and len(rows) <= 50
    # Session, user, account, organization, count, page: no query per row.
    assert len(queries) <= 10, [q["sql"] for q in queries]
    assert elapsed < 2.0
    for sql in (q["sql"] for q in queries if "provisioning_customer" in q["sql"]
                and "COUNT" in q["sql"].upper()):
        assert '"parent_id" = ' in sql


def test_the_page_costs_the_same_at_three_and_ten_thousand_users(client, demo, request):
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    url = reverse("users", args=[demo.pk])
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    request.getfixturevalue("big_organization")
    with CaptureQueriesContext(connection) as big:
        client.get(url)
    assert len(big) == len(small)
