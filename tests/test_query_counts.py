"""Every page of the panel makes at most MAX_QUERIES SQL queries, and the same number for the
demo data and for a provider many times its size: no query per row, no count that grows
with the data. `query_counts.json` records each page's count, so that a lost select_related
fails here, with the queries listed, rather than in production.

When a change is intended, record the new counts with
    UPDATE_QUERY_COUNTS=1 python -m pytest tests/test_query_counts.py
and commit the changed file with the change that needs it."""

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from panel.views.imports import SESSION_KEY
from provisioning import constants as c
from provisioning.models import (
    Account,
    Customer,
    CustomerAsset,
    Event,
    HostingSpace,
    MailContact,
    Operation,
)
from servicplans.models import HostingPlan, ServicePlan
from tests.support.bulk import add_organizations, add_users
from tests.support.views import PRIMARY, RESELLER, login, panel_patterns

COUNTS_FILE = Path(__file__).with_name("query_counts.json")
UPDATE = os.environ.get("UPDATE_QUERY_COUNTS") == "1"
MAX_QUERIES = 10
ANONYMOUS = None
BATCH = "0" * 32

# Every page: (url name, login, the ids its url needs, query string). A page with several
# entries is measured in each (first and last page, sorted, searched). The organization's
# pages are measured for its primary administrator and for its reseller, who also looks the
# organization up.
ORGANIZATION_PAGES = {
    "organization": ((), {}),
    "users": ((), {}),
    "users-last-page-sorted": ((), {"sort": "-upn", "page": "9999"}),
    "users-searched": ((), {"q": "e", "status": c.ENABLED, "sort": "service_plan"}),
    "user_create": ((), {}),
    "user_import": ((), {}),
    "user_import_example": ((), {}),
    "user_import_progress": (("batch",), {}),
    "user_import_status": (("batch",), {}),
    "user": (("user",), {}),
    "user_edit": (("user",), {}),
    "user_password": (("user",), {}),
    "user_plan": (("user",), {}),
    "user_enable": (("user",), {}),
    "user_disable": (("user",), {}),
    "user_delete": (("user",), {}),
    "user_addresses": (("user",), {}),
    "user_forwarding": (("user",), {}),
    "user_mailbox_disconnect": (("user",), {}),
    "user_mailbox_reconnect": (("user",), {}),
    "domains": ((), {}),
    "contacts": ((), {}),
    "contacts-searched": ((), {"q": "a", "status": "pending", "sort": "-email"}),
    "contacts-last-page": ((), {"page": "9999"}),
    "contact_create": ((), {}),
    "contact_delete": (("contact",), {}),
    "peers": ((), {}),
    "peer_create": ((), {}),
    "peer_edit": (("account",), {}),
    "peer_password": (("account",), {}),
    "peer_remove": (("account",), {}),
    "organization_events": ((), {}),
    "organization_events-filtered": ((), {"event_type": c.CREATED, "since": "2000-01-01"}),
    "operations": ((), {}),
    "operations-last-page": ((), {"state": "failed", "page": "9999"}),
    "operation_retry": (("operation",), {}),
    "changelog": ((), {}),
}
PAGES = {
    **{f"{page}@primary": (page.split("-")[0], PRIMARY, ("org", *ids), query)
       for page, (ids, query) in ORGANIZATION_PAGES.items()},
    **{f"{page}@reseller": (page.split("-")[0], RESELLER, ("org", *ids), query)
       for page, (ids, query) in ORGANIZATION_PAGES.items()},
    "organization_suspend@reseller": ("organization_suspend", RESELLER, ("org",), {}),
    "organization_resume@reseller": ("organization_resume", RESELLER, ("org",), {}),
    "organization_hosting_plan@reseller": ("organization_hosting_plan", RESELLER, ("org",),
                                           {}),
    "organization_delete@reseller": ("organization_delete", RESELLER, ("org",), {}),
    "api_tokens@primary": ("api_tokens", PRIMARY, (), {}),
    "api_token_revoke@primary": ("api_token_revoke", PRIMARY, ("token_id",), {}),
    "organizations@reseller": ("organizations", RESELLER, (), {}),
    "organizations-searched@reseller": ("organizations", RESELLER, (),
                                        {"q": "contoso", "sort": "-user_count"}),
    "organizations-last-page@reseller": ("organizations", RESELLER, (), {"page": "9999"}),
    "organizations@primary": ("organizations", PRIMARY, (), {}),
    "sign_up@reseller": ("sign_up", RESELLER, (), {}),
    "hosting_spaces@reseller": ("hosting_spaces", RESELLER, (), {}),
    "hosting_spaces-last-page@reseller": ("hosting_spaces", RESELLER, (), {"page": "9999"}),
    "events@reseller": ("events", RESELLER, (), {}),
    "events-filtered@reseller": ("events", RESELLER, (), {"event_type": c.CREATED,
                                                          "until": "2999-01-01"}),
    "home@primary": ("home", PRIMARY, (), {}),
    "home@reseller": ("home", RESELLER, (), {}),
    "home": ("home", ANONYMOUS, (), {}),
    "login": ("login", ANONYMOUS, (), {}),
    "password_reset": ("password_reset", ANONYMOUS, (), {}),
    "password_reset_done": ("password_reset_done", ANONYMOUS, (), {}),
    "password_reset_confirm": ("password_reset_confirm", ANONYMOUS, ("uidb64", "token"), {}),
    "password_reset_complete": ("password_reset_complete", ANONYMOUS, (), {}),
    "two_factor_setup@primary": ("two_factor_setup", PRIMARY, (), {}),
    "two_factor_verify@primary": ("two_factor_verify", PRIMARY, (), {}),
    "two_factor_recovery_codes@primary": ("two_factor_recovery_codes", PRIMARY, (), {}),
    "preferences@primary": ("preferences", PRIMARY, (), {}),
    "no_account": ("no_account", ANONYMOUS, (), {}),
    "healthz": ("healthz", ANONYMOUS, (), {}),
}
# Panel URLs that are not pages one opens.
NOT_PAGES = {"logout",  # POST only: signing out
             "readyz",  # a probe for the provider's orchestrator (tests/test_health_probes.py)
             "metrics"}  # the scraper's, behind a token (tests/test_metrics.py)
# Pages that answer a redirect in this measurement, and why; every other page must answer 200,
# so that a page's own work is what is counted, not a redirect's.
REDIRECTS = {
    "home@primary": "the home page sends a signed-in user to its organization",
    "home@reseller": "the home page sends a reseller to its organizations",
}
# Pages measured in a session that gave its second factor (an authenticator is added for
# them and removed after): without one they only redirect.
VERIFIED = {"two_factor_recovery_codes@primary"}
# Pages whose count may be lower (never higher) for one data set than for the other, and why.
MAY_VARY = {
    # One query reads the reseller subtrees (nested resellers and their organizations)
    # whose usage is summed, only when the page shows a reseller's own space; a page of
    # organizations' spaces alone does without it.
    "hosting_spaces@reseller", "hosting_spaces-last-page@reseller",
}


def recorded_counts():
    return json.loads(COUNTS_FILE.read_text())


def test_every_panel_page_is_measured():
    names = {name for name, _ in panel_patterns()}
    assert names - NOT_PAGES == {name for name, *_ in PAGES.values()}


def test_every_page_has_a_recorded_count():
    assert set(recorded_counts()) == set(PAGES), (
        f"{COUNTS_FILE.name} and PAGES in {Path(__file__).name} must name the same pages")


def ids_of(demo):
    megan = demo.children.get(upn="megan@contoso.example")
    operation = Operation.objects.filter(scope=demo).order_by("pk").first()
    Operation.objects.filter(pk=operation.pk).update(state="failed", last_error="boom")
    from provisioning import tokens

    admin = get_user_model().objects.get(username=PRIMARY)
    token = tokens.create(admin, name="Billing", actor=admin)
    from provisioning import services

    contact = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    return {"org": demo.pk, "user": megan.pk, "batch": BATCH, "contact": contact.pk,
            "token_id": token[0].pk,
            "account": Account.objects.get(user__username="contoso-helpdesk").pk,
            "operation": operation.pk, "uidb64": "MQ", "token": "no-such-token"}


def measure(client, demo, ids):
    """{page: (status, queries)} for every page, each asked twice: the first request fills
    the per-process caches (content types, sites), so counts do not depend on test order."""
    results = {}
    for page, (name, username, needs, query) in sorted(PAGES.items()):
        client.logout()
        if username is not None:
            login(client, username)
            session = client.session
            session[SESSION_KEY] = {BATCH: {"organization": demo.pk, "operations": [
                ids["operation"]]}}
            session.save()
        device = verified_session(client, username) if page in VERIFIED else None
        url = reverse(name, args=[ids[n] for n in needs])
        client.get(url, query)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, query)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        results[page] = (response.status_code, queries.captured_queries)
        if device is not None:
            device.delete()
    return results


def verified_session(client, username):
    """An authenticator for this login, and a session that gave its code (django-otp keeps
    the device's persistent id in the session once a code is verified)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=get_user_model().objects.get(username=username),
                                       name="phone", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


def grow(demo):
    """The demo grown to many times its size around every page: users, organizations with
    their spaces and domains, events, operations, panel accounts."""
    reseller = demo.parent
    gold = ServicePlan.objects.get(name="Gold")
    add_users(demo, 3_000, service_plan=gold)
    organizations = add_organizations(reseller, 300, users_each=5)
    plan = HostingPlan.objects.get(name="Business Basic")
    HostingSpace.objects.bulk_create(HostingSpace(customer=org, hosting_plan=plan,
                                                  name=f"{org.name} — {plan.name}")
                                     for org in organizations)
    CustomerAsset.objects.bulk_create(
        CustomerAsset(customer=org, asset_type_id=c.PRIMARY_DOMAIN,
                      name=f"org{org.pk}.example", name_key=f"org{org.pk}.example")
        for org in organizations)
    users = list(Customer.objects.filter(parent=demo).order_by("-pk")[:1_000])
    now = timezone.now()
    Event.objects.bulk_create(
        Event(customer=customer, event_type_id=c.CREATED, data={"n": n},
              occurred_at=now - timedelta(minutes=n))
        for n, customer in enumerate(users + organizations))
    Operation.objects.bulk_create(
        Operation(customer=user, scope=demo, action="provision_user",
                  state="failed" if n % 3 else "succeeded", last_error="boom" if n % 3 else "")
        for n, user in enumerate(users))
    MailContact.objects.bulk_create(
        MailContact(organization=org, name=f"Contact {n}", email=f"c{n}@ext.example",
                    name_key=f"contact {n}", email_key=f"c{n}@ext.example")
        for org in [demo, *organizations[:50]] for n in range(20))
    for n in range(5):
        user = get_user_model().objects.create_user(f"contoso-extra-{n}", password="x" * 12)
        Account.objects.create(user=user, customer=demo, role="peer_read_only")


def test_every_page_costs_the_same_few_queries_at_any_size(client, demo):
    ids = ids_of(demo)
    small = measure(client, demo, ids)
    grow(demo)
    large = measure(client, demo, ids)

    counts = {page: max(len(queries), len(small[page][1]))
              for page, (_, queries) in large.items()}
    if UPDATE:
        COUNTS_FILE.write_text(json.dumps(dict(sorted(counts.items())), indent=2) + "\n")
    recorded = recorded_counts()
    problems = []
    for page in sorted(PAGES):
        (status, few), (large_status, many) = small[page], large[page]
        expected = 302 if page in REDIRECTS else 200
        if (status, large_status) != (expected, expected):
            problems.append(f"{page}: status {status} / {large_status}, expected {expected}")
        listing = "\n".join(f"    {q['sql'][:200]}" for q in many)
        if len(few) != len(many) and not (page in MAY_VARY and abs(len(few) - len(many)) == 1):
            problems.append(f"{page}: {len(few)} queries for the demo, {len(many)} for the "
                            f"large data set:\n{listing}")
        most = max(len(few), len(many))
        if most > min(MAX_QUERIES, recorded.get(page, MAX_QUERIES)):
            problems.append(f"{page}: {most} queries; {COUNTS_FILE.name} allows "
                            f"{recorded.get(page)}, the panel at most {MAX_QUERIES}:\n{listing}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", ["users@primary", "hosting_spaces@reseller"])
def test_recorded_counts_are_within_the_limit(page):
    assert recorded_counts()[page] <= MAX_QUERIES


def test_the_change_log_costs_the_same_at_any_number_of_entries(client, demo):
    """Names of related objects come in one query per related model for the whole page,
    never one per entry."""
    from provisioning import services

    url = reverse("changelog", args=[demo.pk])
    login(client, PRIMARY)

    def queries_of_a_full_page():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, {"per_page": 100})
        assert response.status_code == 200
        return len(queries.captured_queries), len(response.context["page"].object_list)

    client.get(url)
    before, shown_before = queries_of_a_full_page()
    megan = demo.children.get(upn="megan@contoso.example")
    for i in range(15):
        client.post(reverse("user_edit", args=[demo.pk, megan.pk]),
                    {"display_name": f"Megan {i}"})
    services.create_user(demo, display_name="Lynne Robbins", local_part="lynne",
                         domain="contoso.example", password="Fresh-Password-4711")
    after, shown_after = queries_of_a_full_page()
    assert shown_after > shown_before + 15
    assert after == before
