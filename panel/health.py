"""Is the panel alive, and is it ready to provision?

Liveness (`/healthz`) needs nothing: the web process answers. Readiness (`/readyz`, and the
provider's status page) checks what provisioning needs: the database, the broker, at least
one Celery worker consuming the panel's queue, and Celery beat, which sends lost operations
again (`requeue_stale`).

Workers and beat report themselves on the broker's Redis: each worker's consumer writes a
heartbeat every HEARTBEAT_EVERY_SECONDS from its own timer (`WorkerHeartbeat`, a bootstep:
it stops while the worker has lost the broker and resumes when it reconnects, and it does not
wait behind long operations in the pool), and beat writes "beat ran at" each time its
scheduler ticks (`BeatScheduler`). A heartbeat older than READINESS_MAX_AGE_SECONDS counts as
gone. The keys carry the queue's name, so two panels (or two test sessions) sharing one Redis
never see each other's workers."""

import logging
import time

import redis
from celery import bootsteps
from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

# A key outlives its writer by a day, so the status page can still say when a worker that
# went away was last seen; then Redis forgets it.
KEY_TTL = 24 * 3600
_clients = {}


def _redis():
    """A client of the broker's Redis with short timeouts: a probe must answer quickly."""
    url = settings.CELERY_BROKER_URL
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=10)
    return client


def _key(kind, name=""):
    return f"panel:heartbeat:{settings.CELERY_TASK_DEFAULT_QUEUE}:{kind}" + (
        f":{name}" if name else "")


def record_heartbeat(kind, name=""):
    """Write "`kind` (`name`) was alive now"; never raises: a heartbeat that cannot be
    written is simply missing, which is what readiness reports."""
    try:
        _redis().set(_key(kind, name), repr(time.time()), ex=KEY_TTL)
    except redis.RedisError as exc:
        log.warning("could not record the %s heartbeat (%s)", kind, exc.__class__.__name__)


def heartbeats(kind):
    """{name: seconds since its last heartbeat} of every `kind` seen within KEY_TTL."""
    client = _redis()
    pattern = _key(kind, "*")
    keys = sorted(client.scan_iter(match=pattern, count=100))
    if not keys:
        return {}
    now = time.time()
    prefix = len(pattern) - 1
    return {key.decode()[prefix:]: max(0.0, now - float(value))
            for key, value in zip(keys, client.mget(keys), strict=True) if value is not None}


def heartbeat_age(kind, name=""):
    """Seconds since `kind` (`name`) last recorded a heartbeat, or None if it did not
    within KEY_TTL."""
    value = _redis().get(_key(kind, name))
    return None if value is None else max(0.0, time.time() - float(value))


def beat_age():
    """Seconds since beat last ticked, or None."""
    return heartbeat_age("beat")


# --- The checks ----------------------------------------------------------------------------

def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _check_broker():
    _redis().ping()
    return {"ok": True}


def _fresh(age):
    return age is not None and age <= settings.READINESS_MAX_AGE_SECONDS


def _check_worker():
    ages = heartbeats("worker")
    alive = sorted(age for age in ages.values() if _fresh(age))
    result = {"ok": bool(alive), "workers": len(alive)}
    if ages:
        result["last_heartbeat_seconds"] = round(min(ages.values()), 1)
    if not alive:
        result["error"] = "no worker heartbeat" if not ages else "worker heartbeat too old"
    return result


def _check_beat():
    age = beat_age()
    result = {"ok": _fresh(age)}
    if age is not None:
        result["last_run_seconds"] = round(age, 1)
    if not result["ok"]:
        result["error"] = "beat never ran" if age is None else "beat's last run too old"
    return result


CHECKS = {"database": _check_database, "broker": _check_broker, "worker": _check_worker,
          "beat": _check_beat}
# Errors named in the answer: which kind of failure, never a host name or a password.
FAILURES = {"database": "database unreachable", "broker": "broker unreachable"}


def readiness():
    """(ready, {check: {"ok": bool, ...}}). With tasks run in-process (the development
    setup), there is no broker, worker or beat to wait for."""
    eager = settings.CELERY_TASK_ALWAYS_EAGER
    checks = {}
    for name, check in CHECKS.items():
        if eager and name != "database":
            checks[name] = {"ok": True, "skipped": "tasks run in-process"}
            continue
        if name in ("worker", "beat") and not checks["broker"]["ok"]:
            checks[name] = {"ok": False, "error": "unknown: broker unreachable"}
            continue
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure makes the check fail
            log.warning("readiness check %s failed: %s", name, exc.__class__.__name__)
            checks[name] = {"ok": False, "error": FAILURES.get(name, exc.__class__.__name__)}
    return all(c["ok"] for c in checks.values()), checks


# --- What workers and beat run -------------------------------------------------------------

class WorkerHeartbeat(bootsteps.StartStopStep):
    """A consumer bootstep: once the worker consumes tasks, it records a heartbeat at once
    and then every HEARTBEAT_EVERY_SECONDS from the consumer's timer. The consumer stops its
    steps while the broker connection is lost, and starts them again after it reconnects."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c, **kwargs):
        self.tref = None
        super().__init__(c, **kwargs)

    def start(self, c):
        self.beat(c)
        self.tref = c.timer.call_repeatedly(settings.HEARTBEAT_EVERY_SECONDS, self.beat, (c,))

    def beat(self, c):
        record_heartbeat("worker", c.hostname)

    def stop(self, c):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    shutdown = stop


class BeatScheduler(PersistentScheduler):
    """Celery beat's own scheduler that also records "beat ran at" as it ticks, and ticks
    at least every HEARTBEAT_EVERY_SECONDS."""

    _last_heartbeat = 0.0

    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        every = settings.HEARTBEAT_EVERY_SECONDS
        if time.monotonic() - self._last_heartbeat >= every * 0.9:
            record_heartbeat("beat")
            self._last_heartbeat = time.monotonic()
        return min(interval, every)
