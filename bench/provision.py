#!/usr/bin/env python
"""Provision N users into one organization through the panel's whole pipeline — service
function, journal, Redis, real Celery workers, ldap3 — and, in the same run against the same
Samba domain controller, issue the same LDAP operations from a bare ldap3 loop. Prints users
per second for both and their ratio (target: the pipeline at 0.8x the bare loop or better).

    python bench/provision.py [--users 1000] [--concurrency 3]

It starts its own Samba AD DC (needs root and Debian's samba packages), uses PostgreSQL
(BENCH_DATABASE_URL, default: the local server's bench_panel database, recreated) and Redis.
"""

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL",
                              "postgres://postgres@127.0.0.1:5432/bench_panel")
QUEUE = f"bench-{os.getpid()}"
PASSWORD = "Bench-Password-2026!"


def prepare_environment():
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "panel.settings", "DATABASE_URL": DATABASE_URL,
        "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14"),
        "CELERY_QUEUE": QUEUE, "PROVISIONING_BACKEND": "live", "DEBUG": "false",
        "LOG_LEVEL": "WARNING", "CELERY_TASK_ALWAYS_EAGER": "false"})
    name = DATABASE_URL.rsplit("/", 1)[1]
    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    import psycopg2

    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def platform(dc):
    """An AD-only virtual server and plan, a reseller, and one organization."""
    from provisioning import constants as c
    from provisioning import services
    from provisioning.models import Customer, HostingSpace
    from servers.models import Server, Service, VirtualServer, VirtualServerService
    from servicplans.models import (
        FeatureType,
        HostingPlan,
        HostingPlanQuota,
        PlanFeature,
        ServicePlan,
    )

    server = Server.objects.create(name="bench-dc", hostname=dc.host)
    service = Service.objects.create(
        server=server, kind="active_directory", name="bench AD", ldap_host=dc.host,
        ldap_port=dc.ldaps_port, use_ssl=True, verify_ca=True,
        ca_certificate=Path(dc.ca_file).read_text(), base_dn=dc.base_dn, bind_dn=dc.admin_dn,
        bind_password=dc.admin_password)
    vs = VirtualServer.objects.create(name="bench")
    VirtualServerService.objects.create(virtual_server=vs, service=service)
    plan = HostingPlan.objects.create(name="bench", virtual_server=vs)
    for quota in ("organizations", "users", "mailboxes", "domains", "mailbox_disk_mb",
                  "security_groups"):
        HostingPlanQuota.objects.create(hosting_plan=plan, quota=quota, unlimited=True)
    service_plan = ServicePlan.objects.create(name="bench")
    PlanFeature.objects.create(service_plan=service_plan,
                               feature_type=FeatureType.objects.get(name="ActiveSync"),
                               value="0")
    reseller = Customer.objects.create(name="Bench Reseller",
                                       customer_type_id=c.RESELLER_ORGANIZATION)
    HostingSpace.objects.create(customer=reseller, hosting_plan=plan, name="bench")
    org = services.sign_up_organization(
        reseller=reseller, name=f"Bench {uuid.uuid4().hex[:6]}", primary_domain="bench.example",
        admin_username="bench-admin", admin_password=PASSWORD, hosting_plan=plan,
        service_plans=[service_plan])
    return org, service_plan


def wait_all(timeout):
    from provisioning.models import Operation

    deadline = time.monotonic() + timeout
    while Operation.objects.exclude(state__in=["succeeded", "failed"]).exists():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the operations")
        time.sleep(0.05)
    failed = list(Operation.objects.filter(state="failed").values_list("last_error", flat=True))
    if failed:
        raise SystemExit(f"{len(failed)} operations failed, e.g. {failed[0]}")


def pipeline(org, plan, users, timeout):
    from provisioning import services
    from provisioning.models import Operation

    start = time.monotonic()
    for i in range(users):
        services.create_user(org, display_name=f"Pipeline User {i}", local_part=f"p{i}",
                             domain="bench.example", password=PASSWORD, service_plan=plan,
                             given_name="Pipeline", surname=f"User {i}")
    wait_all(timeout)
    elapsed = time.monotonic() - start
    assert Operation.objects.filter(action="provision_user", state="succeeded").count() == users
    return elapsed


def bare_loop(dc, users):
    """The same LDAP operations as the pipeline's provision_user, from one ldap3 loop."""
    import ssl

    import ldap3
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn

    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=dc.ca_file)
    server = ldap3.Server(dc.host, port=dc.ldaps_port, use_ssl=True, tls=tls,
                          get_info=ldap3.NONE)
    conn = ldap3.Connection(server, user=dc.admin_dn, password=dc.admin_password,
                            auto_bind=True, raise_exceptions=True, check_names=False)
    root = f"OU=Microsoft Exchange Hosted Organizations,{dc.base_dn}"
    org = f"OU=Bare {uuid.uuid4().hex[:6]},{root}"
    conn.add(org, ["top", "organizationalUnit"])
    group = f"CN=Bare,{org}"
    conn.add(group, ["top", "group"], {"groupType": "-2147483640",
                                       "sAMAccountName": f"bare{uuid.uuid4().hex[:8]}"})
    start = time.monotonic()
    for i in range(users):
        sam, upn = f"b{i}x{uuid.uuid4().hex[:4]}", f"b{i}@bare.example"
        dn = f"CN={escape_rdn(f'Bare User {i}')},{org}"
        conn.search(dc.base_dn, f"(sAMAccountName={escape_filter_chars(sam)})",
                    attributes=["objectGUID"])
        conn.search(org, f"(userPrincipalName={escape_filter_chars(upn)})",
                    attributes=["objectGUID"])
        conn.add(dn, ["top", "person", "organizationalPerson", "user"],
                 {"sAMAccountName": sam, "userPrincipalName": upn, "userAccountControl": "514",
                  "displayName": f"Bare User {i}", "givenName": "Bare", "sn": f"User {i}"})
        conn.modify(dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE,
                                         [f'"{PASSWORD}"'.encode("utf-16-le")])],
                         "userAccountControl": [(ldap3.MODIFY_REPLACE, ["512"])]})
        conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [dn])]})
        conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["objectGUID"])
        conn.modify(dn, {"msExchOmaAdminWirelessEnable": [(ldap3.MODIFY_REPLACE, ["0"])]})
    elapsed = time.monotonic() - start
    conn.unbind()
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2,
                        help="Celery worker processes (prefork)")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    prepare_environment()
    import django

    django.setup()
    from django.core.management import call_command

    from tests.support.samba import SambaDC
    from tests.support.worker import CeleryWorker

    call_command("migrate", verbosity=0)
    print(f"Starting a Samba AD DC and {args.concurrency} Celery worker processes ...")
    dc = SambaDC()
    dc.start()
    worker = None
    try:
        org, plan = platform(dc)
        env = {k: os.environ[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL",
                                          "CELERY_BROKER_URL", "CELERY_QUEUE",
                                          "PROVISIONING_BACKEND", "LOG_LEVEL")}
        worker = CeleryWorker(env, concurrency=args.concurrency, name="bench").start()
        wait_all(120)  # the organization itself

        print(f"Provisioning {args.users} users through the pipeline ...")
        pipeline_seconds = pipeline(org, plan, args.users, args.timeout)
        print(f"Issuing the same LDAP operations for {args.users} users from a bare loop ...")
        bare_seconds = bare_loop(dc, args.users)
    finally:
        if worker is not None:
            worker.stop()
            worker.remove_log()
        dc.destroy()

    pipeline_rate = args.users / pipeline_seconds
    bare_rate = args.users / bare_seconds
    print()
    print(f"users                     {args.users}")
    print(f"worker concurrency        {args.concurrency} (prefork, one LDAP connection each)")
    print(f"pipeline                  {pipeline_seconds:8.1f} s  {pipeline_rate:7.1f} users/s")
    print(f"bare ldap3 loop           {bare_seconds:8.1f} s  {bare_rate:7.1f} users/s")
    print(f"ratio pipeline/bare       {pipeline_rate / bare_rate:8.2f}x  (target >= 0.80x)")
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("The benchmark starts Samba, which needs root for ports 389/636.")
    sys.exit(main())
