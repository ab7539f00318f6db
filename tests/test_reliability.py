"""The live reliability scenario (`make reliability`): the panel run as a provider runs it,
with faults injected one at a time, and a table of what each fault cost.

PostgreSQL, a Redis of the scenario's own (so it can be restarted), two Celery worker
processes (concurrency 2 each) and beat, gunicorn, the suite's Samba DC and WS-Management
endpoint, `PROVISIONING_BACKEND=live`. A reseller signs an organization up over HTTP, its
administrator creates 50 users over HTTP in batches, a helpdesk peer resets a password
(checked with an LDAP bind), and the administrator changes a plan. During each batch one
fault is injected. At the end every user is checked in AD by its GUID and in the endpoint,
and `docs/reliability.md` is written when RELIABILITY_REPORT names it.

Nothing is mocked: the faults are real (processes stopped and killed, connections
terminated, the endpoint's own fault injection)."""

import base64
import os
import platform
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis as redis_client
import requests
from celery import Celery, current_app
from django.db import connection

from provisioning.models import Customer, Operation
from servicplans.models import HostingPlan, ServicePlan
from tests.conftest import PANEL_PASSWORD, seed_live_demo
from tests.support.processes import Beat, Gunicorn, RedisServer
from tests.support.provisioning import can_bind
from tests.support.worker import CeleryWorker

pytestmark = [pytest.mark.reliability, pytest.mark.samba, pytest.mark.worker]

USER_PASSWORD = "Reliable-Pass-2026!"
RESET_PASSWORD = "Reset-By-Helpdesk-1!"
WRONG_PASSWORD = "Wrong-Guess-2026!"
QUEUE = f"reliability-{os.getpid()}"
SETTLE_TIMEOUT = 240


# --- the panel over HTTP ---------------------------------------------------------------


class Browser:
    """A person at the panel: a session with its cookies, posting forms with CSRF."""

    def __init__(self, base):
        self.base = base
        self.session = requests.Session()

    def get(self, path):
        response = self.session.get(self.base + path, timeout=60)
        response.raise_for_status()
        return response

    def post(self, path, data, expect_redirect=True):
        self.session.get(self.base + path, timeout=60)  # the form, and its CSRF cookie
        token = self.session.cookies.get("csrftoken")
        response = self.session.post(self.base + path, data={**data,
                                     "csrfmiddlewaretoken": token},
                                     headers={"Referer": self.base + path},
                                     allow_redirects=False, timeout=60)
        if expect_redirect and response.status_code != 302:
            errors = re.findall(r"<li>(.*?)</li>", response.text.split("<form", 1)[-1])[:5]
            raise AssertionError(f"POST {path} answered {response.status_code}: {errors}")
        return response

    def sign_in(self, username, password):
        response = self.post("/account/login/", {"username": username, "password": password})
        assert "sessionid" in self.session.cookies, response.status_code
        return self


# --- what a phase measured -------------------------------------------------------------


@dataclass
class Phase:
    fault: str
    transient: bool = True
    users: list = field(default_factory=list)  # Customer pks
    manual_actions: int = 0
    extra_deliveries: set = field(default_factory=set)  # operations sent more than once
    retried: set = field(default_factory=set)  # operations a person retried
    recovered_in: float | None = None  # seconds from the fault's end to the batch settled
    notes: list = field(default_factory=list)
    # Filled in by measure():
    affected: int = 0
    attempts: int = 0
    max_attempts: int = 0
    outcome: str = ""
    duplicates: int = 0
    lost: int = 0

    def row(self):
        recovered = "" if self.recovered_in is None else f"{self.recovered_in:.0f} s"
        return (f"| {self.fault} | {len(self.users)} | {self.affected} | {self.attempts} "
                f"(max {self.max_attempts}) | {self.outcome} | {recovered} | "
                f"{self.duplicates} | {self.lost} | {self.manual_actions} |")


# --- the stack -------------------------------------------------------------------------


@pytest.fixture
def stack(transactional_db, samba_dc, directory_settings, wsman_endpoint, worker_env,
          settings):
    redis = RedisServer().start()
    name = connection.settings_dict["NAME"]
    database = f"postgres://postgres@127.0.0.1:5432/{name}"
    env = {**worker_env, "CELERY_BROKER_URL": redis.url, "CELERY_QUEUE": QUEUE,
           "DATABASE_URL": f"{database}?application_name=panel-worker"}
    workers = [CeleryWorker(env, concurrency=2, name=f"reliability{i}") for i in (1, 2)]
    beat = Beat(env)
    web = Gunicorn({**env, "DATABASE_URL": f"{database}?application_name=panel-web",
                    "ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "false"})
    settings.PROVISIONING_BACKEND = "live"
    # The demo data is provisioned in this process, before the scenario's own stack runs.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    current_app.conf.task_always_eager = True
    try:
        seed_live_demo(directory_settings, wsman_endpoint)
    finally:
        settings.CELERY_TASK_ALWAYS_EAGER = False
        current_app.conf.task_always_eager = False
    assert set(Operation.objects.values_list("state", flat=True)) == {"succeeded"}
    for worker in workers:
        worker.start()
    beat.start()
    web.start()
    probe = Celery("probe", broker=redis.url)
    try:
        yield {"redis": redis, "workers": workers, "beat": beat, "web": web,
               "probe": probe, "dc": samba_dc, "endpoint": wsman_endpoint,
               "directory_settings": directory_settings}
    finally:
        for process in (web, beat, *workers):
            process.stop()
        for worker in workers:
            worker.remove_log()
        beat.remove()
        web.remove()
        redis.remove()
        probe.close()


def settle(users, workers=(), timeout=SETTLE_TIMEOUT):
    """Wait until every operation of these users is finished; return the seconds waited.
    A worker that exits on its own fails the scenario at once."""
    started = time.monotonic()
    while True:
        for worker in workers:
            assert worker.is_running, f"a worker exited:\n{worker.tail()}"
        pending = Operation.objects.filter(customer__in=users).exclude(
            state__in=["succeeded", "failed", "cancelled"])
        if not pending.exists():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError("still pending: " + ", ".join(
                f"#{o.pk} {o.action} {o.state} {o.last_error!r}" for o in pending))
        time.sleep(0.5)


# --- the faults ------------------------------------------------------------------------


def in_thread(fault):
    """A fault runs beside the batch; its database connection is its own and closed."""
    def run(stack):
        try:
            fault(stack)
        finally:
            connection.close()
    return run


@in_thread
def stop_the_dc(stack):
    stack["dc"].stop()
    time.sleep(20)
    stack["dc"].start()


@in_thread
def restart_redis(stack):
    stack["redis"].restart(down_for=10)


@in_thread
def kill_a_worker(stack):
    """SIGKILL the workers while one of them waits on Exchange for a user's mailbox; a
    supervisor starts them again. The endpoint holds that one Enable-Mailbox call, so the
    kill always lands mid-operation (an operation takes ~70 ms; polling for one in the
    'running' state could miss it). Both processes die, so whichever holds it dies too."""
    endpoint = stack["endpoint"]
    endpoint.fail_next("timeout", count=1, cmdlet="Enable-Mailbox", seconds=10)
    deadline = time.monotonic() + 30
    while endpoint.pending_faults:
        assert time.monotonic() < deadline, "no operation ever reached Exchange"
        time.sleep(0.01)
    for worker in stack["workers"]:
        worker.kill()
    time.sleep(2)
    for worker in stack["workers"]:
        worker.start()


@in_thread
def terminate_database_connections(stack):
    """pg_terminate_backend on every connection of the workers, three times."""
    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE application_name = 'panel-worker'")
        time.sleep(1.5)


def endpoint_fault(kind, count=3, cmdlet=None, **options):
    def inject(stack):
        stack["endpoint"].fail_next(kind, count=count, cmdlet=cmdlet, **options)
    return inject


# --- the scenario ----------------------------------------------------------------------


def test_provisioning_survives_faults_without_loss_or_duplicates(stack, ad):
    web, endpoint = stack["web"], stack["endpoint"]
    reseller = Customer.objects.get(name="Northwind Hosting")
    tag = uuid.uuid4().hex[:6]
    domain = f"reliable-{tag}.example"
    gold, silver = ServicePlan.objects.get(name="Gold"), ServicePlan.objects.get(name="Silver")

    # A reseller signs an organization up over HTTP.
    seller = Browser(web.url).sign_in("reseller", PANEL_PASSWORD)
    response = seller.post("/organizations/new/", {
        "reseller": reseller.pk, "name": f"Reliable {tag}", "primary_domain": domain,
        "admin_username": f"boss-{tag}", "admin_password": USER_PASSWORD,
        "hosting_plan": HostingPlan.objects.get(name="Business Premium").pk,
        "service_plans": [gold.pk, silver.pk]})
    org = Customer.objects.organizations().get(name=f"Reliable {tag}")
    assert response.headers["Location"].rstrip("/").endswith(str(org.pk))
    settle([org])
    assert Operation.objects.get(customer=org).state == "succeeded"
    admin = Browser(web.url).sign_in(f"boss-{tag}", USER_PASSWORD)
    base = f"/organizations/{org.pk}"

    def create_user(number):
        admin.post(f"{base}/users/new/", {
            "display_name": f"User {number:02d}", "given_name": "User",
            "surname": f"{number:02d}", "local_part": f"user{number:02d}", "domain": domain,
            "service_plan": gold.pk, "password": USER_PASSWORD})
        return Customer.objects.get(upn=f"user{number:02d}@{domain}").pk

    phases = [
        (Phase("none (baseline)"), None),
        (Phase("DC stopped for 20 s"), stop_the_dc),
        (Phase("Redis restarted (down 10 s, no persistence)"), restart_redis),
        (Phase("workers killed with SIGKILL mid-operation"), kill_a_worker),
        (Phase("WinRM endpoint times out (3 calls)"),
         endpoint_fault("timeout", cmdlet="Set-Mailbox", seconds=6)),
        (Phase("WinRM endpoint drops the connection (3 calls)"), endpoint_fault("drop")),
        (Phase("Exchange answers busy (3 calls)"), endpoint_fault("busy")),
        (Phase("worker's PostgreSQL connections terminated (3 times)"),
         terminate_database_connections),
        (Phase("the same operation delivered to two workers at once"), None),
        (Phase("Exchange fails permanently, then a person retries", transient=False),
         endpoint_fault("error", count=1, cmdlet="Enable-Mailbox",
                        message="The database is offline for maintenance.")),
    ]
    sizes = [5] + [5] * 9
    assert sum(sizes) == 50
    number = 0
    for (phase, fault), size in zip(phases, sizes, strict=True):
        injector = None
        for index in range(size):
            number += 1
            if index == size // 2 and fault is not None:
                injector = threading.Thread(target=fault, args=(stack,))
                injector.start()
            phase.users.append(create_user(number))
            if phase.fault.startswith("the same operation"):
                operation = Operation.objects.get(customer_id=phase.users[-1])
                for _ in range(2):
                    stack["probe"].send_task("provisioning.tasks.run_operation",
                                             args=[operation.pk], queue=QUEUE)
                phase.extra_deliveries.add(operation.pk)
        if injector is not None:
            injector.join()
        phase.recovered_in = settle(phase.users, stack["workers"])
        # Every operation left failed needs a person: that is what a manual action is.
        failed = list(Operation.objects.filter(customer__in=phase.users, state="failed"))
        phase.manual_actions = len(failed)
        if not phase.transient:
            for operation in failed:
                phase.notes.append(operation.last_error)
                admin.post(f"{base}/operations/{operation.pk}/retry/",
                           {"secret": USER_PASSWORD})
                phase.retried.add(operation.pk)
            settle(phase.users)
        for process in (*stack["workers"], stack["beat"], stack["web"]):
            assert process.is_running, f"a process died during '{phase.fault}':\n" + (
                process.tail())

    # A helpdesk peer resets a password; the user binds with it.
    admin.post(f"{base}/peers/new/", {"username": f"helpdesk-{tag}", "role": "peer_helpdesk",
                                      "password": USER_PASSWORD})
    helpdesk = Browser(web.url).sign_in(f"helpdesk-{tag}", USER_PASSWORD)
    first = Customer.objects.get(pk=phases[0][0].users[0])
    helpdesk.post(f"{base}/users/{first.pk}/password/",
                  {"password": RESET_PASSWORD, "confirm": RESET_PASSWORD})
    settle([first])
    assert can_bind(stack["directory_settings"], first.upn, RESET_PASSWORD)
    # The administrator moves a user to Silver.
    admin.post(f"{base}/users/{first.pk}/plan/", {"service_plan": silver.pk})
    settle([first])
    assert list(Operation.objects.filter(customer=first).values_list("state", flat=True)
                ) == ["succeeded"] * 3

    # Someone mistypes a password: django-axes records the attempt (never its password).
    typo = Browser(web.url)
    typo.post("/account/login/", {"username": f"boss-{tag}", "password": WRONG_PASSWORD},
              expect_redirect=False)

    # The end: every user in AD by its GUID, in the organization, once; one mailbox each.
    entries = [e for e in ad.list_under_root() if e["kind"] == "user"
               and e["dn"].lower().endswith(ad.org_dn(org.name).lower())]
    mailboxes = endpoint.snapshot()["exchange"]["mailboxes"]
    for phase, _ in phases:
        measure(phase, ad, entries, mailboxes)
    searched = search_for_passwords(stack, [USER_PASSWORD, RESET_PASSWORD, WRONG_PASSWORD,
                                            PANEL_PASSWORD])
    report(phases, stack, searched)
    for phase, _ in phases:
        assert (phase.lost, phase.duplicates) == (0, 0), phase.row()
        assert phase.outcome == "all succeeded", phase.row()
        if phase.transient:
            assert phase.manual_actions == 0, phase.row()
        else:
            assert phase.manual_actions >= 1, phase.row()  # the permanent fault did bite
        if phase.extra_deliveries:
            # Three messages each, one attempt each: the copies were dropped, not run.
            assert phase.max_attempts == 1, phase.row()
        if phase.fault != "none (baseline)":
            # A fault that touched no operation would prove nothing.
            assert phase.affected >= 1, phase.row()
        if phase.fault.startswith("Redis restarted"):
            # Work created while the broker was away is provisioned within a minute of its
            # return, without anyone's help.
            assert phase.recovered_in <= 60, phase.row()
    assert len(entries) == 50, len(entries)
    assert endpoint.violations == []
    assert all(not found for found in searched.values()), searched


def measure(phase, ad, entries, mailboxes):
    users = list(Customer.objects.filter(pk__in=phase.users))
    operations = list(Operation.objects.filter(customer__in=users, action="provision_user"))
    phase.affected = sum(1 for o in operations if o.attempts > 1 or o.sends > 1
                         or o.pk in phase.extra_deliveries or o.pk in phase.retried)
    phase.attempts = sum(o.attempts for o in operations)
    phase.max_attempts = max(o.attempts for o in operations)
    states = {o.state for o in operations}
    phase.outcome = "all succeeded" if states == {"succeeded"} else ", ".join(sorted(states))
    for user in users:
        entry = ad.get_by_guid(str(user.object_guid)) if user.object_guid else None
        if entry is None or entry["userPrincipalName"] != user.upn or not any(
                g.lower() == ad.org_group_dn(user.parent.name).lower()
                for g in entry["memberOf"]):
            phase.lost += 1
        same_upn = [e for e in entries if (e.get("userPrincipalName") or "").lower()
                    == user.upn.lower()]
        own_mailboxes = [m for m in mailboxes if m["Identity"] == str(user.object_guid)]
        phase.duplicates += max(0, len(same_upn) - 1) + max(0, len(own_mailboxes) - 1)
        if user.object_guid and not own_mailboxes:
            phase.lost += 1


def search_for_passwords(stack, passwords):
    """Every place a password could leak to: the whole database (the journal, the outbox,
    the change log, django-axes' attempts and their POST data), every process's log, every
    key on the broker. Returns {place: [passwords found]}."""
    name = connection.settings_dict["NAME"]
    dump = subprocess.run(["pg_dump", "--data-only", "-U", "postgres", "-h", "127.0.0.1",
                           name], capture_output=True, check=True).stdout
    # The control: the dump holds what it should, so a miss below means something.
    assert b"Northwind Hosting" in dump
    places = {"the database (pg_dump of every table)": dump}
    labelled = [(f"worker {i}", w) for i, w in enumerate(stack["workers"], 1)] + [
        ("beat", stack["beat"]), ("gunicorn", stack["web"]), ("redis", stack["redis"])]
    for label, process in labelled:
        places[f"the log of {label}"] = process.log.read_bytes()
    broker = redis_client.Redis.from_url(stack["redis"].url)
    values = []
    for key in broker.scan_iter():
        kind = broker.type(key)
        if kind == b"list":
            values += broker.lrange(key, 0, -1)
        elif kind == b"hash":
            values += [v for pair in broker.hgetall(key).items() for v in pair]
        elif kind == b"zset":
            values += broker.zrange(key, 0, -1)
        elif kind == b"set":
            values += list(broker.smembers(key))
        elif kind == b"string":
            values.append(broker.get(key))
    places["the broker (every key and value)"] = b"\n".join(values)
    found = {}
    for place, data in places.items():
        found[place] = [p for p in passwords
                        if p.encode() in data or p.encode("utf-16-le") in data
                        or base64.b64encode(p.encode()) in data]
    return found


def report(phases, stack, searched):
    path = os.environ.get("RELIABILITY_REPORT")
    lines = [
        "# Reliability: the journal under real faults",
        "",
        "Written by `make reliability` (`tests/test_reliability.py`) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}).",
        "",
        "The panel ran as a provider runs it: PostgreSQL, Redis without persistence, two "
        "Celery worker processes (concurrency 2 each) and beat, gunicorn with 2 workers, the "
        "Samba AD DC and the WS-Management endpoint, `PROVISIONING_BACKEND=live`. A reseller "
        "signed an organization up over HTTP and its administrator created 50 users over "
        "HTTP in batches of 5; during each batch one fault was injected, half-way through. "
        "Then a helpdesk peer reset a password (an LDAP bind with it succeeded) and the "
        "administrator changed a plan. At the end every user was looked up in AD by its "
        "objectGUID and in the endpoint.",
        "",
        "- **operations affected**: those that needed more than one attempt or more than one "
        "task message, were delivered twice, or were retried by a person;",
        "- **attempts**: over the batch's user operations (5 means one each; a person's "
        "retry starts the count again);",
        "- **settled in**: from the batch's last request (and the fault's end) until every "
        "operation had finished;",
        "- **duplicates**: extra directory users with the same UPN, extra mailboxes for one "
        "user;",
        "- **lost**: users without their directory object (by GUID, UPN, group) or mailbox;",
        "- **manual actions**: retries a person had to make.",
        "",
        "| fault | users | operations affected | attempts | outcome | settled in | "
        "duplicates | lost | manual actions |",
        "|---|---|---|---|---|---|---|---|---|",
        *[phase.row() for phase, _ in phases],
        "",
        "Notes:",
        "",
        "- The scenario runs with the test suite's short timers (a worker's lease and "
        "Redis's visibility timeout 8 s, backoff base 1.6 s, WinRM read timeout 4 s) and "
        "the production defaults for redelivery (`OPERATION_REDELIVER_AFTER=30`, "
        "`REQUEUE_EVERY_SECONDS=15`). With the production lease (180 s) a killed worker's "
        "operation waits up to three minutes before another worker takes it over.",
        "- The workers killed with SIGKILL (both processes, while one runs a user's "
        "operation) are started again two seconds later, as a supervisor (systemd, "
        "Docker's restart policy) would; the killed operation is taken over once its "
        "lease expires and is counted as a second attempt.",
        "- Restarting Redis loses every message, including those of operations waiting "
        "out a backoff. `requeue_stale` (beat, every 15 s) sends again each operation "
        "more than 30 s past its due time, its password read from the sealed outbox.",
        "- The worker processes, beat and gunicorn keep running through every fault but the "
        "SIGKILL, with no supervisor (the scenario fails if one exits).",
        "- The duplicate delivery sends each operation's task twice more from another "
        "process, to two worker processes at once: one claims it, the others find it "
        "running or finished and drop their copy.",
        "- The permanent failure is Exchange's own error, shown to the administrator; the "
        "retry through the Operations page, with a new password, is the one manual "
        "action, by design.",
    ]
    for phase, _ in phases:
        for note in phase.notes:
            lines.append(f"- '{phase.fault}' failed first with: {note}")
    lines += ["", "## Passwords", "",
              "Every password the scenario used (the administrators', the users', the "
              "helpdesk's reset, a mistyped sign-in) was searched for, as text, UTF-16LE and "
              "base64, in:", ""]
    lines += [f"- {place}: {'not found' if not found else 'FOUND ' + ', '.join(found)}"
              for place, found in searched.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    if path:
        Path(path).write_text(text)
