"""The worker outlives a Redis restart: with an unacknowledged task in flight, it reconnects
and goes on provisioning instead of exiting.

Celery 5.7.0 closes the broker connection again after collecting it on a connection loss;
with kombu 5.7.0 that second close restores the channel's unacknowledged messages through a
transport that collect() already dropped, and the worker died with ``Unrecoverable error:
AttributeError("'NoneType' object has no attribute 'hostname'")`` (see panel/celery_fixes.py).
The test runs its own redis-server, so that restarting it disturbs nobody else."""

import shutil
import time

import pytest
import redis
from django.core.management import call_command
from django.db import transaction

from panel.celery import app
from tests.support.processes import RedisServer
from tests.support.provisioning import wait_for_operations
from tests.support.worker import CeleryWorker

pytestmark = pytest.mark.worker


@pytest.fixture
def private_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def restart_worker(worker_env, private_redis):
    """A worker of the test's own, on the private Redis and the suite's queue name, with the
    dry-run backend."""
    worker = CeleryWorker({**worker_env, "CELERY_BROKER_URL": private_redis.url,
                           "PROVISIONING_BACKEND": "dryrun"}, name="broker-restart")
    try:
        yield worker.start()
    finally:
        if worker.is_running:
            worker.stop()
        else:
            worker.kill()  # whatever is left of its process group
        worker.remove_log()


@pytest.fixture
def publish_to(monkeypatch):
    """Point this process's Celery app at another broker (the environment variable wins over
    the settings); the original broker and producer pools come back afterwards."""
    saved = app._pool, app.amqp._producer_pool

    def switch(url):
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        app._pool = app.amqp._producer_pool = None

    yield switch
    for pool in (app._pool, app.amqp._producer_pool):
        if pool is not None and pool not in saved:
            pool.force_close_all()
    app._pool, app.amqp._producer_pool = saved


def what_happened(worker):
    """The worker's critical log lines (its last words), then the end of its log."""
    lines = worker.log.read_text(errors="replace").splitlines()
    return "\n".join([line for line in lines if "CRITICAL" in line] + ["..."] + lines[-30:])


@pytest.mark.django_db(transaction=True)
def test_the_worker_survives_a_redis_restart_with_a_task_in_flight(
        private_redis, restart_worker, publish_to):
    assert not app.conf.task_always_eager
    publish_to(private_redis.url)
    # A task due in a minute: the worker reserves it and holds it unacknowledged.
    app.send_task("celery.accumulate", args=(1,), countdown=60)
    with redis.Redis.from_url(private_redis.url, socket_timeout=5) as client:
        deadline = time.monotonic() + 15
        while client.hlen("unacked") < 1:
            assert time.monotonic() < deadline, "the worker never reserved the task\n" + (
                restart_worker.tail())
            time.sleep(0.1)

    private_redis.stop()
    time.sleep(2)
    private_redis.start()

    # The worker either reconnects or dies; give it the time of two reconnection attempts.
    deadline = time.monotonic() + 20
    while restart_worker.is_running and time.monotonic() < deadline:
        if restart_worker.log.read_text(errors="replace").count("Connected to redis://") >= 2:
            break
        time.sleep(0.2)
    assert restart_worker.is_running, "the worker exited on the Redis restart:\n" + (
        what_happened(restart_worker))

    # A task sent after the restart is consumed and executed: the demo data's provisioning
    # operations all run through the dry-run backend.
    with transaction.atomic():
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    operations = wait_for_operations(timeout=30)
    assert operations
    assert {o.state for o in operations} == {"succeeded"}, [
        (o.action, o.state, o.last_error) for o in operations]
    assert restart_worker.is_running
