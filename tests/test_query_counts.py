"""Each main page makes no more SQL queries for the demo data than `query_counts.json`
records, so a lost select_related or a query per row fails here rather than in production.

When an increase is intended, record the new counts with
    UPDATE_QUERY_COUNTS=1 python -m pytest tests/test_query_counts.py
and commit the changed file with the change that needs it."""

import json
import os
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.support.views import PRIMARY, RESELLER, login

COUNTS_FILE = Path(__file__).with_name("query_counts.json")
UPDATE = os.environ.get("UPDATE_QUERY_COUNTS") == "1"

# page: (url name, login, what the url needs)
PAGES = {
    "organization": ("organization", PRIMARY, ("org",)),
    "users": ("users", PRIMARY, ("org",)),
    "user": ("user", PRIMARY, ("org", "user")),
    "domains": ("domains", PRIMARY, ("org",)),
    "organization_events": ("organization_events", PRIMARY, ("org",)),
    "operations": ("operations", PRIMARY, ("org",)),
    "organizations": ("organizations", RESELLER, ()),
}


def recorded_counts():
    return json.loads(COUNTS_FILE.read_text())


def test_every_page_has_a_recorded_count():
    assert set(recorded_counts()) == set(PAGES), (
        f"{COUNTS_FILE.name} and PAGES in {Path(__file__).name} must name the same pages")


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_stays_within_its_query_count(client, demo, page):
    name, username, needs = PAGES[page]
    ids = {"org": demo.pk, "user": demo.children.get(upn="megan@contoso.example").pk}
    url = reverse(name, args=[ids[n] for n in needs])
    login(client, username)
    # A first request fills the per-process caches (content types, sites), so the count
    # does not depend on which test ran before.
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    made = len(queries.captured_queries)
    if UPDATE:
        counts = recorded_counts()
        counts[page] = made
        COUNTS_FILE.write_text(json.dumps(dict(sorted(counts.items())), indent=2) + "\n")
        return
    allowed = recorded_counts()[page]
    listing = "\n".join(f"  {q['sql'][:160]}" for q in queries.captured_queries)
    assert made <= allowed, (
        f"GET {url} made {made} SQL queries; {COUNTS_FILE.name} allows {allowed}.\n"
        f"If the increase is intended, record it with\n"
        f"  UPDATE_QUERY_COUNTS=1 python -m pytest tests/test_query_counts.py\n"
        f"and commit tests/{COUNTS_FILE.name} with the change. The queries:\n{listing}")
