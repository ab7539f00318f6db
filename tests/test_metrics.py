"""The provider's Prometheus scrapes /metrics with a bearer token: operations by action and
state, their durations, retries, the queue, directory and Exchange calls, sign-ups and users
created — including what Celery workers, other processes, observed."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from celery import current_app
from django.core.management import call_command
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from provisioning import journal, services
from provisioning.directory import (
    DryRunDirectoryClient,
    PermanentDirectoryError,
    TransientDirectoryError,
)
from provisioning.models import Customer, Event, Operation
from servicplans.models import ServicePlan
from tests.support.provisioning import PASSWORD, wait_for_operations
from tests.support.worker import CeleryWorker

TOKEN = "scrape-token-0123456789"
DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"


def scrape(client, token=TOKEN):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain; version=")
    return Scrape(response.content.decode())


class Scrape:
    def __init__(self, text):
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {(s.name, frozenset(s.labels.items())): s.value
                        for f in self.families.values() for s in f.samples}

    def __call__(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    return TOKEN


def test_without_a_token_configured_there_is_no_endpoint(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
    f"Bearer {TOKEN[:-1]}"])
def test_only_the_scraper_with_the_token_reads_the_metrics(client, metrics_token,
                                                           authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get("/metrics", **headers)
    assert response.status_code == 403
    assert b"panel_operations" not in response.content
    # Nor in the query string, which access logs keep.
    assert client.get(f"/metrics?token={TOKEN}").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200


def fail_once(monkeypatch, method, exc):
    """The dry-run directory's `method` raises `exc` on its next call, then works again."""
    original = getattr(DryRunDirectoryClient, method)
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise exc
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DryRunDirectoryClient, method, flaky)
    return calls


def new_user(org, local):
    return services.create_user(org, display_name=f"User {local}", local_part=local,
                                domain="contoso.example", password=PASSWORD,
                                service_plan=ServicePlan.objects.get(name="Gold"))


def test_provisioning_shows_in_the_metrics(client, db, eager_dryrun, metrics_token,
                                           monkeypatch, django_capture_on_commit_callbacks):
    # Counters and histograms of this process outlive a test: compare with before.
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    org = Customer.objects.organizations().get(name="Contoso")
    seeded_users = Operation.objects.filter(action="provision_user").count()
    assert seeded_users > 0
    assert set(Operation.objects.values_list("state", flat=True)) == {"succeeded"}

    # The directory is down once: the operation is queued again with backoff, and the
    # task's next delivery succeeds.
    calls = fail_once(monkeypatch, "ensure_user", TransientDirectoryError("down"))
    with django_capture_on_commit_callbacks(execute=True):
        retried = new_user(org, "retried")
    operation = Operation.objects.get(customer=retried)
    assert (operation.state, operation.attempts) == ("queued", 1)
    assert journal.execute(operation.pk).state == "succeeded"
    operation.refresh_from_db()
    assert (operation.state, operation.attempts, len(calls)) == ("succeeded", 2, 2)
    # A conflict fails the next one for good.
    fail_once(monkeypatch, "ensure_user", PermanentDirectoryError("conflict"))
    with django_capture_on_commit_callbacks(execute=True):
        failed = new_user(org, "failed")
    assert Operation.objects.get(customer=failed).state == "failed"
    # One waits in the queue: its message was lost an hour ago.
    waiting = journal.enqueue(retried, "set_user_enabled", enabled=False)
    Operation.objects.filter(pk=waiting.pk).update(
        requested=timezone.now() - timedelta(hours=1))

    after = scrape(client)
    users = seeded_users + 2
    assert after("panel_operations", action="provision_user", state="succeeded") == users - 1
    assert after("panel_operations", action="provision_user", state="failed") == 1
    assert after("panel_operations", action="provision_organization",
                 state="succeeded") == 1
    assert after("panel_operations", action="set_user_enabled", state="queued") == 1
    assert after("panel_operations", action="delete_user", state="failed") == 0
    assert after("panel_operations_queued") == 1
    assert 3600 <= after("panel_operation_queue_oldest_age_seconds") < 3 * 3600

    def grew(name, **labels):
        return after(name, **labels) - before(name, **labels)

    # Durations: one observation per operation finished, by outcome.
    assert grew("panel_operation_duration_seconds_count", action="provision_user",
                outcome="succeeded") == users - 1
    assert grew("panel_operation_duration_seconds_count", action="provision_user",
                outcome="failed") == 1
    assert grew("panel_operation_duration_seconds_count", action="provision_organization",
                outcome="succeeded") == 1
    assert grew("panel_operation_duration_seconds_bucket", action="provision_user",
                outcome="succeeded", le="+Inf") == users - 1
    assert grew("panel_operation_retries_total", action="provision_user") == 1
    assert grew("panel_operation_retries_total", action="provision_organization") == 0
    # Directory and Exchange calls, by call and outcome.
    ok = grew("panel_backend_call_duration_seconds_count", service="directory",
              call="ensure_user", outcome="ok")
    assert ok == users - 1
    assert grew("panel_backend_call_duration_seconds_count", service="directory",
                call="ensure_user", outcome="transient") == 1
    assert grew("panel_backend_call_duration_seconds_count", service="directory",
                call="ensure_user", outcome="permanent") == 1
    assert grew("panel_backend_call_duration_seconds_count", service="exchange",
                call="enable_mailbox", outcome="ok") == users - 1
    # Names the client computes are not calls.
    assert not any(s.labels.get("call") == "org_dn"
                   for s in after.families["panel_backend_call_duration_seconds"].samples)
    # Sign-ups and users created, from the events.
    assert after("panel_sign_ups_total") == 1
    assert after("panel_users_created_total") == users == Event.objects.filter(
        event_type_id="Created", customer__customer_type_id="BusinessUser").count()
    assert after("panel_customers", type="BusinessUser", status="Enabled") == users
    # django-prometheus's basics are there too.
    assert "django_http_requests_latency_seconds_by_view_method" in after.families
    assert "django_db_execute" in after.families


@pytest.mark.django_db
def test_every_metric_of_the_dashboard_is_served(client, metrics_token):
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"]
                   for target in panel.get("targets", [])]
    assert expressions
    import re

    used = {re.sub(r"_(bucket|count|sum|total)$", "", name) for expr in expressions
            for name in re.findall(r"\b((?:panel|django)_[a-z_]+)\b", expr)}
    served = set(scrape(client).families)
    assert used <= served, used - served
    assert {"panel_operations", "panel_operation_duration_seconds",
            "panel_operation_retries", "panel_operations_queued",
            "panel_operation_queue_oldest_age_seconds", "panel_backend_call_duration_seconds",
            "panel_sign_ups", "panel_users_created"} <= used


@pytest.fixture
def dryrun_worker(worker_env, tmp_path):
    """A worker of this test's own on a queue of its own, with the dry-run backend, writing
    its metrics to a directory as the deployment's workers do."""
    directory = tmp_path / "metrics"
    queue = f"metrics-{tmp_path.name}"
    worker = CeleryWorker({**worker_env, "PROVISIONING_BACKEND": "dryrun",
                           "CELERY_QUEUE": queue, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
                          name="metrics").start()
    previous = current_app.conf.task_default_queue
    current_app.conf.task_default_queue = queue
    yield directory
    current_app.conf.task_default_queue = previous
    worker.stop()
    worker.remove_log()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_what_the_workers_observe_reaches_the_scrape(client, metrics_token, settings,
                                                     dryrun_worker):
    settings.PROVISIONING_BACKEND = "dryrun"
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    operations = wait_for_operations()
    assert {o.state for o in operations} == {"succeeded"}
    # The scrape reads the processes' files: this process observed nothing of it.
    settings.PROMETHEUS_MULTIPROC_DIR = str(dryrun_worker)
    scraped = scrape(client)
    users = sum(o.action == "provision_user" for o in operations)
    assert scraped("panel_operation_duration_seconds_count", action="provision_user",
                   outcome="succeeded") == users
    assert scraped("panel_operation_duration_seconds_count", action="provision_organization",
                   outcome="succeeded") == 1
    assert scraped("panel_backend_call_duration_seconds_count", service="directory",
                   call="ensure_user", outcome="ok") == users
    assert scraped("panel_operations", action="provision_user", state="succeeded") == users
    # The worker's processes each wrote files of their own, named by host and pid.
    assert any(path.name.startswith("histogram_") for path in dryrun_worker.iterdir())


def test_check_deploy_warns_when_workers_metrics_would_be_missing(settings):
    from provisioning.metrics import check_shared_directory

    settings.METRICS_TOKEN, settings.PROMETHEUS_MULTIPROC_DIR = TOKEN, ""
    assert [w.id for w in check_shared_directory()] == ["provisioning.W001"]
    settings.PROMETHEUS_MULTIPROC_DIR = "/run/panel-metrics"
    assert check_shared_directory() == []
    settings.METRICS_TOKEN, settings.PROMETHEUS_MULTIPROC_DIR = "", ""
    assert check_shared_directory() == []
