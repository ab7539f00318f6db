#!/usr/bin/env python
"""Fill a PostgreSQL database with a provider at scale, for bench/pages.py:

    python bench/seed_scale.py [--resellers 100] [--organizations 10000] [--users-each 10]

The demo (seed_demo: plans, servers, the Northwind reseller, Contoso and its logins), then
`--resellers` resellers with `--organizations` organizations of `--users-each` users between
them, and four organizations of 100,000, 10,000, 1,000 and 10 users under Northwind. Every
organization has what sign_up_organization writes (its tree root, available service plans,
primary administrator login and account, hosting space, primary domain, three events and a
provision_organization operation); every user what create_user writes (its row in its
organization's tree, a GUID once provisioned, Created and PlanSignup events, a succeeded
provision_user operation, its steps without the dry-run log, as the live backend leaves
it). Rows go in with bulk inserts, nested-set numbers computed as the
services' inserts leave them; the change log (django-auditlog) is left out.

BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench_scale) is dropped and
created again."""

import argparse
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL",
                              "postgres://postgres@127.0.0.1:5432/bench_scale")
# The organizations whose users list bench/pages.py measures are named by their size.
SIZED_PREFIX = "Size "
BATCH = 5_000
PASSWORD = "Bench-Scale-Pass-2026"


def environment():
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "panel.settings", "DATABASE_URL": DATABASE_URL,
        "DEBUG": "false", "LOG_LEVEL": "WARNING", "PROVISIONING_BACKEND": "dryrun",
        "CELERY_TASK_ALWAYS_EAGER": "true", "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
        "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        # Persistent connections, as a production deployment sets them (CONN_MAX_AGE).
        "CONN_MAX_AGE": os.environ.get("CONN_MAX_AGE", "60")})


def recreate_database(create=True):
    import psycopg2

    name = DATABASE_URL.rsplit("/", 1)[1]
    conn = psycopg2.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if create:
            cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


class Seeder:
    def __init__(self):
        from django.contrib.auth.hashers import make_password
        from django.utils import timezone

        from provisioning.models import Customer, Operation
        from servicplans.models import HostingPlan, ServicePlan

        self.now = timezone.now()
        self.password = make_password(PASSWORD)
        self.reseller_plan = HostingPlan.objects.get(name="Reseller Standard")
        self.org_plan = HostingPlan.objects.get(name="Business Premium")
        self.plans = list(ServicePlan.objects.filter(name__in=["Gold", "Silver"]))
        self.northwind = Customer.objects.get(name="Northwind Hosting")
        self.provider = __import__("django.contrib.auth", fromlist=["get_user_model"]) \
            .get_user_model().objects.get(username="provider")
        # The steps the demo's own provisioning recorded; no dry-run log, as the live
        # backend leaves operations (and a few KB less per row to write).
        self.steps = {op.action: (op.steps, []) for op in Operation.objects.filter(
            state="succeeded").order_by("pk")}
        self.random = random.Random(2026)
        self.counts = {}

    def when(self):
        return self.now - timedelta(minutes=self.random.randrange(365 * 24 * 60))

    def bulk(self, model, rows):
        rows = list(rows)
        model.objects.bulk_create(rows, batch_size=BATCH)
        self.counts[model.__name__] = self.counts.get(model.__name__, 0) + len(rows)
        return rows

    def resellers(self, count):
        from provisioning import constants as c
        from provisioning.models import Customer, Event, HostingSpace, HostingSpaceQuota
        from provisioning.names import name_key

        tree_ids = Customer.objects.new_tree_ids(count)
        resellers = self.bulk(Customer, (
            Customer(customer_type_id=c.RESELLER_ORGANIZATION, name=f"Reseller {n:03d}",
                     name_key=name_key(f"Reseller {n:03d}"), tree_id=tree_id, lft=1, rght=2,
                     level=0) for n, tree_id in enumerate(tree_ids)))
        spaces = self.bulk(HostingSpace, (
            HostingSpace(customer=r, hosting_plan=self.reseller_plan,
                         name=f"{r.name} — {self.reseller_plan.name}") for r in resellers))
        self.bulk(HostingSpaceQuota, (HostingSpaceQuota(hosting_space=s, quota="organizations",
                                                        unlimited=True) for s in spaces))
        self.bulk(Event, (Event(customer=r, scope=r, event_type_id=c.CREATED, actor=self.provider,
                                occurred_at=self.when(), data={"name": r.name})
                          for r in resellers))
        return resellers

    def organizations(self, parents_and_names, users_each):
        """Organizations as sign_up_organization writes them, with users_each[i] users."""
        from django.contrib.auth import get_user_model

        from provisioning import constants as c
        from provisioning.models import (
            Account,
            Customer,
            CustomerAsset,
            Event,
            HostingSpace,
            LoginName,
            Operation,
        )
        from provisioning.names import name_key

        User = get_user_model()
        tree_ids = Customer.objects.new_tree_ids(len(parents_and_names))
        orgs = self.bulk(Customer, (
            Customer(parent=parent, customer_type_id=c.BUSINESS_ORGANIZATION, name=name,
                     name_key=name_key(name), object_guid=uuid.uuid4(), tree_id=tree_id,
                     lft=1, rght=2 + 2 * users, level=0, created=self.when())
            for (parent, name), tree_id, users in zip(parents_and_names, tree_ids,
                                                      users_each, strict=True)))
        through = Customer.available_service_plans.through
        self.bulk(through, (through(customer=o, serviceplan=p) for o in orgs
                            for p in self.plans))
        logins = self.bulk(User, (User(username=f"admin-{o.pk}", password=self.password,
                                       email=f"admin@org{o.pk}.example") for o in orgs))
        self.bulk(LoginName, (LoginName(user=u, key=name_key(u.username)) for u in logins))
        self.bulk(Account, (Account(user=u, customer=o, role="primary_admin")
                            for u, o in zip(logins, orgs, strict=True)))
        self.bulk(HostingSpace, (HostingSpace(customer=o, hosting_plan=self.org_plan,
                                              name=f"{o.name} — {self.org_plan.name}")
                                 for o in orgs))
        self.bulk(CustomerAsset, (CustomerAsset(customer=o, asset_type_id=c.PRIMARY_DOMAIN,
                                                name=f"org{o.pk}.example",
                                                name_key=f"org{o.pk}.example") for o in orgs))
        events = []
        for o in orgs:
            at = o.created
            events += [Event(customer=o, scope=o, event_type_id=c.CREATED, occurred_at=at,
                             data={"name": o.name, "reseller": o.parent.name}),
                       Event(customer=o, scope=o, event_type_id=c.PLAN_SIGNUP, occurred_at=at,
                             data={"hosting_plan": self.org_plan.name,
                                   "service_plans": [p.name for p in self.plans]}),
                       Event(customer=o, scope=o, event_type_id=c.ASSET_ADDED, occurred_at=at,
                             data={"asset_type": c.PRIMARY_DOMAIN,
                                   "name": f"org{o.pk}.example"})]
        self.bulk(Event, events)
        steps, log = self.steps.get("provision_organization", ([], []))
        self.bulk(Operation, (Operation(customer=o, scope=o, action="provision_organization",
                                        steps=steps, backend_log=log, state="succeeded",
                                        attempts=1, due=o.created, sends=1, started=o.created,
                                        finished=o.created) for o in orgs))
        for org, users in zip(orgs, users_each, strict=True):
            if users:
                self.users(org, users)
        return orgs

    def users(self, org, count):
        """`count` users of `org` as create_user writes them, in chunks."""
        from provisioning import constants as c
        from provisioning.models import Customer, Event, Operation
        from provisioning.names import name_key

        steps, log = self.steps.get("provision_user", ([], []))
        for start in range(0, count, 20_000):
            chunk = range(start, min(count, start + 20_000))
            users = []
            for n in chunk:
                name = f"User {n:06d} {self.random.choice(NAMES)}"
                users.append(Customer(
                    parent=org, tree_parent=org, customer_type_id=c.BUSINESS_USER, name=name,
                    name_key=name_key(name), upn=f"u{n:06d}@org{org.pk}.example",
                    object_guid=uuid.uuid4(), service_plan=self.plans[n % 2],
                    tree_id=org.tree_id, level=1, lft=2 + 2 * n, rght=3 + 2 * n,
                    created=self.when()))
            self.bulk(Customer, users)
            events = []
            for u in users:
                events += [Event(customer=u, scope=org, event_type_id=c.CREATED,
                                 occurred_at=u.created,
                                 data={"upn": u.upn, "display_name": u.name}),
                           Event(customer=u, scope=org, event_type_id=c.PLAN_SIGNUP,
                                 occurred_at=u.created,
                                 data={"service_plan": self.plans[0].name})]
            self.bulk(Event, events)
            self.bulk(Operation, (Operation(customer=u, scope=org, action="provision_user",
                                            params={"given_name": "", "surname": ""},
                                            steps=steps, backend_log=log, state="succeeded",
                                            attempts=1, due=u.created, sends=1,
                                            started=u.created, finished=u.created)
                                  for u in users))


NAMES = ["Adams", "Baker", "Clark", "Davis", "Evans", "Garcia", "Hughes", "Ito", "Jones",
         "Khan", "Lopez", "Müller", "Nakamura", "Olsen", "Patel", "Quinn", "Rossi", "Silva"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resellers", type=int, default=100)
    parser.add_argument("--organizations", type=int, default=10_000)
    parser.add_argument("--users-each", type=int, default=10)
    parser.add_argument("--largest", type=int, default=100_000,
                        help="users of the largest organization (then /10, /100 and 10)")
    parser.add_argument("--drop", action="store_true",
                        help="only drop the benchmark's database")
    args = parser.parse_args()
    if args.drop:
        recreate_database(create=False)
        return 0
    sizes = sorted({args.largest, args.largest // 10, args.largest // 100, 10}, reverse=True)

    environment()
    started = time.monotonic()
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    print(f"migrated and seeded the demo in {time.monotonic() - started:.0f} s")

    seeder = Seeder()
    resellers = seeder.resellers(args.resellers)
    sized = seeder.organizations([(seeder.northwind, f"{SIZED_PREFIX}{n}") for n in sizes],
                                 sizes)
    print(f"organizations of {', '.join(map(str, sizes))} users at "
          f"{time.monotonic() - started:.0f} s")
    per_reseller = [(resellers[n % len(resellers)], f"Organization {n:05d}")
                    for n in range(args.organizations)]
    for start in range(0, len(per_reseller), 2_000):
        part = per_reseller[start:start + 2_000]
        seeder.organizations(part, [args.users_each] * len(part))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    elapsed = time.monotonic() - started
    print(f"seeded in {elapsed:.0f} s: " + ", ".join(
        f"{n:,} {model}" for model, n in sorted(seeder.counts.items())))
    print("organizations by size: " + ", ".join(f"{org.name} #{org.pk}" for org in sized))
    return 0


if __name__ == "__main__":
    sys.exit(main())
