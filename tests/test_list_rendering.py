"""The long lists render cheaply at provider scale (issue #10): the users, events and
operations tables write their rows from a template loop over prepared records, not through
django-tables2's per-cell rendering; the logs' pagers count a bounded number of rows."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_tables2.rows import BoundRow

from panel import tables
from provisioning.models import Event
from servicplans.models import ServicePlan
from tests.support.bulk import add_users
from tests.support.views import PRIMARY, login

HEADERS = ("Display name", "Logon name", "Plan", "Status", "Directory", "Created")


@pytest.fixture
def no_cell_rendering(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a fast table rendered its cells through django-tables2")
    monkeypatch.setattr(BoundRow, "items", refuse)
    monkeypatch.setattr(BoundRow, "get_cell", refuse)


def rows_of(html):
    body = html[html.index("<tbody"):html.index("</tbody>")]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_users_list_writes_every_column_without_cell_rendering(client, demo,
                                                              no_cell_rendering):
    organization = add_users(demo, 30, service_plan=ServicePlan.objects.get(name="Gold"))
    login(client, PRIMARY)
    response = client.get(reverse("users", args=[organization.pk]), {"sort": "upn"})
    assert response.status_code == 200
    html = response.content.decode()
    headers = [re.sub(r"<[^>]+>", "", th).strip()
               for th in re.findall(r"<th[^>]*>(.*?)</th>", html, re.S)]
    assert headers == list(HEADERS)
    rows = rows_of(html)
    users = list(response.context["table"].paginated_rows)
    assert rows and len(rows) == len(users)
    for cells, row in zip(rows, users, strict=True):
        user = row.record
        assert len(cells) == len(HEADERS)
        assert cells[0] == f'<a href="{reverse("user", args=[organization.pk, user.pk])}">' \
                           f'{user.name}</a>'
        assert cells[1] == user.upn
        assert cells[2] == (user.service_plan.name if user.service_plan else "No mailbox")
        assert "badge" in cells[3] and "badge" in cells[4]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", cells[5])


def test_users_list_sorts_and_marks_the_sorted_column(client, demo, no_cell_rendering):
    organization = add_users(demo, 30)
    login(client, PRIMARY)
    url = reverse("users", args=[organization.pk])
    html = client.get(url, {"sort": "-upn"}).content.decode()
    assert '<th class="desc orderable">' in html and 'href="?sort=upn">Logon name' in html
    upns = [cells[1] for cells in rows_of(html)]
    assert upns == sorted(upns, reverse=True)
    html = client.get(url, {"sort": "upn", "page": "2"}).content.decode()
    upns = [cells[1] for cells in rows_of(html)]
    assert upns == sorted(upns) and '<th class="asc orderable">' in html


@pytest.mark.parametrize("name", ["organization_events", "operations"])
def test_logs_render_without_cell_rendering(client, demo, no_cell_rendering, name):
    login(client, PRIMARY)
    response = client.get(reverse(name, args=[demo.pk]))
    assert response.status_code == 200
    rows = rows_of(response.content.decode())
    assert rows and all(len(cells) == len(response.context["table"].columns)
                        for cells in rows)


def test_events_pager_counts_a_bounded_number_of_rows(client, demo, monkeypatch):
    monkeypatch.setattr(tables.EventTable, "count_limit", 30)
    events = [Event(customer=demo, event_type_id="Created", data={"n": n}) for n in range(40)]
    Event.objects.bulk_create(events)
    login(client, PRIMARY)
    url = reverse("organization_events", args=[demo.pk])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"per_page": "25"})
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()
              and "provisioning_event" in q["sql"]]
    assert counts and all("LIMIT 31" in sql for sql in counts), counts
    table = response.context["table"]
    assert table.paginator.count == 30 and table.paginator.more
    html = response.content.decode()
    pager = html[html.index('<nav class="pager"'):]
    assert "1–25 of more than 30" in pager and "page=2" in pager, pager[:300]
    # The next page works; a page past the bound shows the last bounded page.
    for page in ("2", "9999"):
        response = client.get(url, {"per_page": "25", "page": page})
        assert response.status_code == 200
        assert response.context["table"].page.number == 2
        assert "26–30 of more than 30" in response.content.decode()
        assert len(rows_of(response.content.decode())) == 5


def test_events_pager_is_exact_under_the_bound(client, demo):
    login(client, PRIMARY)
    response = client.get(reverse("organization_events", args=[demo.pk]))
    table = response.context["table"]
    total = Event.objects.filter(customer__tree_id=demo.tree_id).count()
    assert table.paginator.count == total and not table.paginator.more
    assert "more than" not in response.content.decode()


def test_organizations_list_writes_every_column_without_cell_rendering(client, demo,
                                                                      other_tenant,
                                                                      no_cell_rendering):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="provider"))
    response = client.get(reverse("organizations"))
    assert response.status_code == 200
    rows = rows_of(response.content.decode())
    shown = [row.record for row in response.context["table"].paginated_rows]
    assert rows and len(rows) == len(shown)
    for cells, org in zip(rows, shown, strict=True):
        assert cells[0] == f'<a href="{reverse("organization", args=[org.pk])}">{org.name}</a>'
        assert cells[1] == (org.primary_domain or "—")
        assert cells[2] == str(org.children.users().live().count())
        assert "badge" in cells[3]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", cells[4])
