#!/usr/bin/env python
"""Time every panel page against the database bench/seed_scale.py filled:

    python bench/pages.py [--requests 200] [--write docs/performance.md]

Each list on its first and last page, sorted and searched; each dashboard; each form's GET;
each create's POST (dry-run backend, operations run in-process); the users list at 10,
1,000, 10,000 and 100,000 users. Every page is asked `--requests` times in-process through
Django's test client (the whole middleware stack, DEBUG off), after one warm-up request;
it prints p50 and p95 in milliseconds, the page's SQL queries, and p95 as a multiple of the
p95 of a trivial constant view measured in the same run (target: 10x or less).

BENCH_DATABASE_URL as for bench/seed_scale.py."""

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import types
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed_scale import SIZED_PREFIX, environment  # noqa: E402

TARGET = 10
PASSWORD = "Bench-Pages-Pass-2026"


def constant(request):
    from django.http import HttpResponse

    return HttpResponse("ok")


def install_constant_view():
    """The panel's URLs plus /bench/constant/, a view that does nothing."""
    from django.conf import settings
    from django.urls import clear_url_caches, include, path

    module = types.ModuleType("bench_urls")
    module.urlpatterns = [path("bench/constant/", constant, name="bench_constant"),
                          path("", include("panel.urls"))]
    sys.modules["bench_urls"] = module
    settings.ROOT_URLCONF = "bench_urls"
    clear_url_caches()


def prepare():
    """Room for the creates: the sized organizations' users and Northwind's organizations
    unbounded (overrides on their spaces, as a provider would set them)."""
    from provisioning.models import Customer, HostingSpaceQuota

    sized = {int(o.name[len(SIZED_PREFIX):]): o for o in Customer.objects.organizations()
             .filter(name__startswith=SIZED_PREFIX)}
    northwind = Customer.objects.get(name="Northwind Hosting")
    for org in sized.values():
        for quota in ("users", "mailboxes"):
            HostingSpaceQuota.objects.get_or_create(hosting_space=org.hosting_spaces.get(),
                                                    quota=quota,
                                                    defaults={"unlimited": True})
    HostingSpaceQuota.objects.get_or_create(hosting_space=northwind.hosting_spaces.get(),
                                            quota="organizations",
                                            defaults={"unlimited": True})
    return dict(sorted(sized.items())), northwind


class Page:
    def __init__(self, label, login, url, query=None, post=None):
        self.label, self.login, self.url = label, login, url
        self.query, self.post = query or {}, post


def pages(sized, northwind):
    from django.urls import reverse

    from provisioning.models import Account, Operation
    from servicplans.models import HostingPlan, ServicePlan

    largest = max(sized)
    big, small = sized[largest], sized[min(sized)]
    big_admin = f"admin-{big.pk}"
    user = big.children.order_by("pk").first()
    helpdesk = Account.objects.get(user__username="contoso-helpdesk")
    operation = Operation.objects.filter(scope=big).order_by("pk").first()
    Operation.objects.filter(pk=operation.pk).update(state="failed", last_error="bench")
    gold = ServicePlan.objects.get(name="Gold")
    plan = HostingPlan.objects.get(name="Business Premium")
    counter = iter(range(10**9))

    def org(name, o=big, *ids):
        return reverse(name, args=[o.pk, *ids])

    def new_user(o):
        def data():
            n = next(counter)
            return {"display_name": f"Bench New {n}", "local_part": f"bench.new.{n}",
                    "domain": f"org{o.pk}.example", "service_plan": gold.pk,
                    "password": PASSWORD}
        return data

    def new_organization():
        n = next(counter)
        return {"reseller": northwind.pk, "name": f"Bench Signup {n}",
                "primary_domain": f"bench-signup-{n}.example",
                "admin_username": f"bench-signup-{n}", "admin_password": PASSWORD,
                "hosting_plan": plan.pk, "service_plans": [gold.pk]}

    def new_domain():
        return {"name": f"bench-{next(counter)}.org{big.pk}.example",
                "asset_type": "SecondaryDomain"}

    def new_peer():
        n = next(counter)
        return {"username": f"bench-peer-{n}", "role": "peer_read_only", "password": PASSWORD}

    result = [Page(f"users list, {n:,} users", f"admin-{o.pk}", org("users", o))
              for n, o in sized.items()]
    result += [
        Page(f"users list, {largest:,}: last page by logon name", big_admin, org("users"),
             {"sort": "-upn", "page": "9999"}),
        Page(f"users list, {largest:,}: by plan", big_admin, org("users"),
             {"sort": "service_plan"}),
        Page(f"users list, {largest:,}: searched", big_admin, org("users"),
             {"q": "müller"}),
        Page(f"users list, {largest:,}: ?per_page=10000 (capped)", big_admin, org("users"),
             {"per_page": "10000"}),
        Page("organization dashboard", big_admin, org("organization")),
        Page("organization dashboard (reseller)", "reseller", org("organization")),
        Page("user detail", big_admin, org("user", big, user.pk)),
        Page("domains", big_admin, org("domains")),
        Page("panel accounts", "contoso-admin", org("peers", helpdesk.customer)),
        Page("organization events", big_admin, org("organization_events")),
        Page("organization events, last page", big_admin, org("organization_events"),
             {"page": "9999"}),
        Page("organization events, filtered", big_admin, org("organization_events"),
             {"event_type": "PlanSignup", "since": "2000-01-01"}),
        Page("operations", big_admin, org("operations")),
        Page("operations, failed", big_admin, org("operations"), {"state": "failed"}),
        Page("change log", big_admin, org("changelog")),
        Page("form: new user", big_admin, org("user_create")),
        Page("form: edit user", big_admin, org("user_edit", big, user.pk)),
        Page("form: reset password", big_admin, org("user_password", big, user.pk)),
        Page("form: change plan", big_admin, org("user_plan", big, user.pk)),
        Page("form: delete user (confirm)", big_admin, org("user_delete", big, user.pk)),
        Page("form: import users", big_admin, org("user_import")),
        Page("form: new panel account", big_admin, org("peer_create")),
        Page("form: retry operation", big_admin, org("operation_retry", big, operation.pk)),
        Page("form: sign up (reseller)", "reseller", reverse("sign_up")),
        Page("form: suspend (reseller)", "reseller", org("organization_suspend")),
        Page("organizations (reseller)", "reseller", reverse("organizations")),
        Page("organizations (provider), first page", "provider", reverse("organizations")),
        Page("organizations (provider), last page", "provider", reverse("organizations"),
             {"page": "9999"}),
        Page("organizations (provider), by users", "provider", reverse("organizations"),
             {"sort": "-user_count"}),
        Page("organizations (provider), searched", "provider", reverse("organizations"),
             {"q": "organization 0999"}),
        Page("hosting spaces (reseller)", "reseller", reverse("hosting_spaces")),
        Page("hosting spaces (provider)", "provider", reverse("hosting_spaces")),
        Page("hosting spaces (provider), last page", "provider", reverse("hosting_spaces"),
             {"page": "9999"}),
        Page("events (reseller)", "reseller", reverse("events")),
        Page("events (provider)", "provider", reverse("events")),
        Page("events (provider), filtered", "provider", reverse("events"),
             {"event_type": "Deleted"}),
        Page(f"POST new user ({largest:,} users)", big_admin, org("user_create"),
             post=new_user(big)),
        Page(f"POST new user ({min(sized)} users)", f"admin-{small.pk}",
             org("user_create", small), post=new_user(small)),
        Page("POST sign up (reseller)", "reseller", reverse("sign_up"), post=new_organization),
        Page("POST add domain", big_admin, org("domains"), post=new_domain),
        Page("POST new panel account", big_admin, org("peer_create"), post=new_peer),
    ]
    return result


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(client, page, requests):
    """(p50 ms, p95 ms, queries, status) of `requests` requests after one warm-up."""
    from django.db import connection

    def once():
        if page.post is not None:
            response = client.post(page.url, page.post())
        else:
            response = client.get(page.url, page.query)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
        return response

    once()
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        status = once().status_code
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        once()
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 0.5), percentile(times, 0.95), len(queries), status


def profile(client, page):
    """Print one request's queries, slowest first, and its busiest functions."""
    import cProfile
    import pstats

    from django.db import connection

    timed = []

    def timing(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timed.append(((time.perf_counter() - started) * 1000, sql))

    profiler = cProfile.Profile()
    with connection.execute_wrapper(timing):
        profiler.enable()
        if page.post is not None:
            client.post(page.url, page.post())
        else:
            client.get(page.url, page.query)
        profiler.disable()
    for ms, sql in sorted(timed, reverse=True)[:5]:
        print(f"    {ms:8.1f} ms  {sql[:220]}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)


def machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"PostgreSQL {server}, {platform.system()} {platform.release()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--write", help="write the results as Markdown to this file")
    parser.add_argument("--only", help="only the pages whose label contains this text")
    parser.add_argument("--profile", action="store_true",
                        help="after each page, where one request's time goes: its queries "
                             "(slowest first) and the functions it spends most time in")
    args = parser.parse_args()

    environment()
    # Static files as production serves them: collected, with their manifest.
    os.environ["STATIC_ROOT"] = tempfile.mkdtemp(prefix="bench-static-")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("collectstatic", interactive=False, verbosity=0)

    from provisioning.models import Customer

    install_constant_view()
    sized, northwind = prepare()
    counts = {
        "customers": Customer.objects.count(),
        "organizations": Customer.objects.organizations().count(),
        "users": Customer.objects.users().count(),
        "events": __import__("provisioning.models", fromlist=["Event"]).Event.objects.count(),
    }
    clients = {}

    def client_for(username):
        if username not in clients:
            client = Client()
            client.force_login(get_user_model().objects.get(username=username))
            clients[username] = client
        return clients[username]

    todo = [p for p in pages(sized, northwind) if not args.only or args.only in p.label]
    base = {}
    for username in sorted({p.login for p in todo}):
        c50, c95, _, _ = run(client_for(username), Page("constant", username,
                                                        "/bench/constant/"), args.requests)
        base[username] = (c50, c95)
    constant95 = max(c95 for _, c95 in base.values())
    constant50 = max(c50 for c50, _ in base.values())
    rows = []
    print(f"constant view: p50 {constant50:.2f} ms, p95 {constant95:.2f} ms "
          f"({args.requests} requests per page)")
    print(f"{'page':60} {'p50 ms':>8} {'p95 ms':>8} {'queries':>7} {'x const':>8}")
    for page in todo:
        p50, p95, queries, status = run(client_for(page.login), page, args.requests)
        ratio = p95 / constant95
        rows.append((page.label, p50, p95, queries, ratio, status))
        flag = "" if ratio <= TARGET else "  > target"
        print(f"{page.label:60} {p50:8.1f} {p95:8.1f} {queries:7d} {ratio:7.1f}x"
              f"{'' if status < 400 else f' (HTTP {status})'}{flag}", flush=True)
        if args.profile:
            profile(client_for(page.login), page)
    if args.write:
        write(Path(args.write), rows, counts, constant50, constant95, args.requests)
    shutil.rmtree(os.environ["STATIC_ROOT"], ignore_errors=True)
    return 0


def write(path, rows, counts, constant50, constant95, requests):
    from django.db import connection

    missed = [r for r in rows if r[4] > TARGET]
    lines = [
        "# Performance at provider scale",
        "",
        "Written by `make bench` (`bench/seed_scale.py`, then `bench/pages.py --write "
        "docs/performance.md`); issue #10.",
        "",
        f"- **Date:** {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- **Machine:** {machine()}",
        f"- **Database:** {connection.settings_dict['NAME']}: "
        f"{counts['customers']:,} customers — {counts['organizations']:,} organizations, "
        f"{counts['users']:,} users — and {counts['events']:,} events "
        "(bench/seed_scale.py: 100 resellers, 10,000 organizations of 10 users, and "
        "organizations of 100,000, 10,000, 1,000 and 10 users)",
        f"- **Method:** {requests} requests per page in-process through Django's test "
        "client (every middleware, DEBUG off, dry-run provisioning run in-process for the "
        "POSTs), after one warm-up request; *queries* are the SQL queries of one request; "
        "*x const* is the page's p95 over the p95 of a view that returns a constant "
        f"response through the same stack ({constant50:.2f} ms p50, {constant95:.2f} ms p95).",
        f"- **Target:** p95 at most {TARGET}x the constant view.",
        "",
        "| page | p50 ms | p95 ms | queries | x const |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, p50, p95, queries, ratio, status in rows:
        mark = " **(over)**" if ratio > TARGET else ""
        note = f" (HTTP {status})" if status >= 400 else ""
        lines.append(f"| {label}{note} | {p50:.1f} | {p95:.1f} | {queries} | "
                     f"{ratio:.1f}x{mark} |")
    lines += ["", "## Pages over the target", ""]
    if missed:
        lines += [f"- {label}: p95 {p95:.0f} ms, {ratio:.0f}x" for label, _, p95, _, ratio, _
                  in missed]
        lines += ["", "<!-- reasons -->"]
    else:
        lines.append("None.")
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
