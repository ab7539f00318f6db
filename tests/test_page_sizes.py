"""Every list's page size is capped at what its pager offers, whatever `?per_page=` asks,
and the CSV exports stream their rows instead of building the file in memory."""

import pytest
from django.urls import reverse

from panel.tables import MAX_PER_PAGE, PER_PAGE_CHOICES
from tests.support.bulk import add_users
from tests.support.views import PRIMARY, RESELLER, login

ROWS = MAX_PER_PAGE + 20


@pytest.fixture
def many_users(demo):
    return add_users(demo, ROWS)


@pytest.mark.parametrize("per_page", ["10000", str(MAX_PER_PAGE + 1), "-5", "0", "all", ""])
def test_users_page_never_shows_more_than_the_largest_page(client, many_users, per_page):
    login(client, PRIMARY)
    response = client.get(reverse("users", args=[many_users.pk]), {"per_page": per_page})
    assert response.status_code == 200
    table = response.context["table"]
    assert 1 <= len(table.page.object_list) <= MAX_PER_PAGE
    assert table.paginator.per_page <= MAX_PER_PAGE


def test_the_pager_offers_the_page_sizes_and_each_is_honoured(client, many_users):
    login(client, PRIMARY)
    url = reverse("users", args=[many_users.pk])
    for size in PER_PAGE_CHOICES:
        response = client.get(url, {"per_page": size})
        assert len(response.context["table"].page.object_list) == size
        assert f"per_page={size}" in response.content.decode()


@pytest.mark.parametrize("name,who,needs_org", [
    ("organizations", RESELLER, False), ("events", RESELLER, False),
    ("organization_events", PRIMARY, True), ("operations", PRIMARY, True),
    ("peers", PRIMARY, True),
])
def test_every_table_caps_its_page_size(client, many_users, name, who, needs_org):
    login(client, who)
    url = reverse(name, args=[many_users.pk] if needs_org else [])
    response = client.get(url, {"per_page": "10000"})
    assert response.status_code == 200
    assert response.context["table"].paginator.per_page <= MAX_PER_PAGE


@pytest.mark.parametrize("name,who,needs_org", [
    ("events", RESELLER, False), ("organization_events", PRIMARY, True)])
def test_csv_exports_stream(client, demo, name, who, needs_org):
    login(client, who)
    response = client.get(reverse(name, args=[demo.pk] if needs_org else []),
                          {"export": "csv"})
    assert response.status_code == 200 and response.streaming
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("occurred_at,event_type") and len(lines) > 1
