"""Probes a provider's load balancer and orchestrator use: /healthz answers whatever the Host
header and never redirects; /readyz answers 503, naming the failing check, within a minute of
a worker, beat or Redis stopping, and 200 again once they are back."""

import time

import pytest
from django.test import Client

from panel import health
from tests.support.processes import Beat
from tests.support.worker import CeleryWorker

CHECKS = {"database", "broker", "worker", "beat"}


def readyz(client=None):
    response = (client or Client()).get("/readyz", HTTP_HOST="10.0.3.7:8000")
    body = response.json()
    assert set(body["checks"]) == CHECKS
    assert body["status"] == ("ok" if response.status_code == 200 else "unavailable")
    return response.status_code, body["checks"]


def test_healthz_answers_any_host_without_redirect_or_dependency(settings, client):
    settings.ALLOWED_HOSTS = ["panel.example.net"]
    settings.SECURE_SSL_REDIRECT = True
    for host in ("localhost", "10.0.3.7:8000", "web", "panel.example.net"):
        response = client.get("/healthz", HTTP_HOST=host)
        assert response.status_code == 200, host
        assert response.json() == {"status": "ok"}
        assert "no-cache" in response["Cache-Control"]
    # Every other page still checks the Host header, and redirects to HTTPS.
    assert client.get("/", HTTP_HOST="10.0.3.7:8000").status_code == 400
    assert client.get("/", HTTP_HOST="panel.example.net").status_code == 301


def test_readyz_skips_broker_worker_and_beat_when_tasks_run_in_process(db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    status, checks = readyz()
    assert status == 200
    assert checks["database"] == {"ok": True}
    assert all("skipped" in checks[name] for name in ("broker", "worker", "beat"))


def test_readyz_names_each_failing_check(db, settings, own_broker):
    settings.READINESS_MAX_AGE_SECONDS = 60
    status, checks = readyz()
    assert status == 503
    assert checks["database"]["ok"] and checks["broker"]["ok"]
    assert checks["worker"] == {"ok": False, "workers": 0, "error": "no worker heartbeat"}
    assert checks["beat"] == {"ok": False, "error": "beat never ran"}

    health.record_heartbeat("worker", "celery@web-1")
    health.record_heartbeat("beat")
    status, checks = readyz()
    assert status == 200, checks
    assert checks["worker"]["workers"] == 1

    # A heartbeat older than the limit is a worker gone.
    health._redis().set(health._key("worker", "celery@web-1"), repr(time.time() - 61))
    status, checks = readyz()
    assert (status, checks["worker"]["error"]) == (503, "worker heartbeat too old")

    own_broker.stop()
    status, checks = readyz()
    assert status == 503
    assert checks["broker"] == {"ok": False, "error": "broker unreachable"}
    assert not checks["worker"]["ok"] and not checks["beat"]["ok"]
    assert own_broker.url.split("//")[1] not in str(checks)  # no address given away
    assert str(own_broker.port) not in str(checks) and "127.0.0.1" not in str(checks)


def wait_for(ready, failing=None, timeout=60):
    """Poll /readyz until it answers 200 (ready) or 503 with `failing` among the failed
    checks; return how long that took."""
    start = time.monotonic()
    while True:
        status, checks = readyz()
        failed = {name for name, check in checks.items() if not check["ok"]}
        if (status == 200 and ready) or (
                status == 503 and not ready and (failing is None or failing in failed)):
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, (ready, failing, checks)
        time.sleep(0.5)


@pytest.mark.worker
def test_readyz_follows_the_worker_beat_and_redis(db, settings, own_broker, worker_env):
    """Real processes: a Celery worker and beat on a Redis of the test's own, heartbeats
    every second, a heartbeat older than four seconds counts as gone."""
    settings.READINESS_MAX_AGE_SECONDS = 4
    env = {**worker_env, "CELERY_BROKER_URL": own_broker.url, "PROVISIONING_BACKEND": "dryrun",
           "HEARTBEAT_EVERY_SECONDS": "1", "REQUEUE_EVERY_SECONDS": "3600"}
    worker = CeleryWorker(env, concurrency=1, name="readiness")
    beat = Beat(env)
    try:
        worker.start()
        beat.start()
        wait_for(ready=True, timeout=30)

        worker.stop()
        assert wait_for(ready=False, failing="worker") < 60
        _, checks = readyz()
        assert checks["beat"]["ok"] and checks["broker"]["ok"]
        worker.start()
        wait_for(ready=True, timeout=30)

        beat.stop()
        assert wait_for(ready=False, failing="beat") < 60
        beat.start()
        wait_for(ready=True, timeout=30)

        own_broker.stop()
        assert wait_for(ready=False, failing="broker") < 60
        own_broker.start()
        # The worker reconnects and beats again; so does beat.
        wait_for(ready=True, timeout=60)
        assert worker.is_running and beat.is_running
    except BaseException:
        print("worker:\n" + worker.tail() + "\nbeat:\n" + beat.tail())
        raise
    finally:
        worker.stop()
        worker.remove_log()
        beat.remove()
