"""The panel's Prometheus metrics, served at /metrics (panel.views.metrics).

Two kinds, by where the figure lives:

- **Observed where it happens** — an operation finishing, a transient fault retried, a
  directory or Exchange call, an alert e-mail: counters and histograms, in whichever
  process sees it, mostly a Celery worker. With `PROMETHEUS_MULTIPROC_DIR` set (see
  panel.metrics_files), every process — each gunicorn worker, each of Celery's prefork
  children, beat — writes its values to files of its own in that shared directory, and a
  scrape of any web process sums every file. A process that dies leaves its file, so its
  counts stay in the sums, as a counter's must. Without the variable (one process: the
  development server with eager tasks, the test suite) they live in this process's memory.
- **Read from the database at scrape time** — operations by action and state, the queue's
  depth and age, organizations signed up and users created, customers: exact whatever
  process did the work and however often processes restart, a handful of aggregate
  queries per scrape (DatabaseCollector).

The HTTP and database basics (requests, latencies, queries) come from django-prometheus,
into the same registry or directory. Observing never fails the work it measures: an error
here is logged and the operation goes on.
"""

import functools
import logging

from django.conf import settings
from django.core import checks
from prometheus_client import REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

# An operation's duration includes its waits and retries with backoff: seconds to an hour.
OPERATION_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
# One directory or Exchange call: milliseconds (LDAP) to the WinRM read timeout.
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

OPERATION_DURATION = Histogram(
    "panel_operation_duration_seconds",
    "From the request (enqueue, or a person's retry) until the operation finished for good, "
    "waits and retries included, by action and outcome (succeeded, failed).",
    ["action", "outcome"], buckets=OPERATION_BUCKETS)
OPERATION_RETRIES = Counter(
    "panel_operation_retries",
    "Transient faults (directory or Exchange down, busy or slow) after which an operation "
    "was queued again with backoff, by action.",
    ["action"])
BACKEND_CALL_DURATION = Histogram(
    "panel_backend_call_duration_seconds",
    "Calls the panel makes to the directory (LDAP) or to Exchange (WinRM), by service, call "
    "(the client method) and outcome: ok, transient (retried), permanent, error (unexpected).",
    ["service", "call", "outcome"], buckets=CALL_BUCKETS)
ALERT_EMAILS = Counter(
    "panel_alert_emails",
    "Alert e-mails (kind: operations digest, provider summary) by outcome (sent, failed).",
    ["kind", "outcome"])


def _never_fails(function):
    @functools.wraps(function)
    def observe(*args, **kwargs):
        try:
            function(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a metric must never fail provisioning
            log.exception("could not record the metric of %s", function.__name__)
    return observe


@_never_fails
def operation_finished(action, outcome, requested, finished):
    OPERATION_DURATION.labels(action, outcome).observe(
        max(0.0, (finished - requested).total_seconds()))


@_never_fails
def operation_retried(action):
    OPERATION_RETRIES.labels(action).inc()


@_never_fails
def backend_call(service, call, outcome, seconds):
    BACKEND_CALL_DURATION.labels(service, call, outcome).observe(seconds)


@_never_fails
def alert_email(kind, outcome, count=1):
    ALERT_EMAILS.labels(kind, outcome).inc(count)


class DatabaseCollector:
    """Figures read from the database when Prometheus scrapes: one aggregate query each."""

    def collect(self):
        from django.db.models import Count, Min
        from django.utils import timezone

        from . import constants as c
        from .actions import ACTIONS
        from .models import Customer, Event, Operation, OperationState

        operations = GaugeMetricFamily(
            "panel_operations", "Operations in the journal, by action and state.",
            labels=["action", "state"])
        counts = dict.fromkeys(((a, s) for a in ACTIONS for s in OperationState.values), 0)
        for row in Operation.objects.order_by().values("action", "state").annotate(
                n=Count("pk")):
            counts[row["action"], row["state"]] = row["n"]
        for (action, state), n in sorted(counts.items()):
            operations.add_metric([action, state], n)
        yield operations

        queue = Operation.objects.filter(state=OperationState.QUEUED).aggregate(
            n=Count("pk"), oldest=Min("requested"))
        yield GaugeMetricFamily("panel_operations_queued",
                                "Operations waiting for a worker (state queued).",
                                value=queue["n"])
        age = (timezone.now() - queue["oldest"]).total_seconds() if queue["oldest"] else 0
        yield GaugeMetricFamily(
            "panel_operation_queue_oldest_age_seconds",
            "Seconds since the oldest queued operation was requested (0: none queued).",
            value=max(0.0, age))

        created = dict(Event.objects.filter(event_type_id=c.CREATED).order_by().values_list(
            "customer__customer_type_id").annotate(n=Count("pk")))
        yield CounterMetricFamily(
            "panel_sign_ups", "Organizations signed up (their Created events).",
            value=created.get(c.BUSINESS_ORGANIZATION, 0))
        yield CounterMetricFamily(
            "panel_users_created", "Users created (their Created events).",
            value=created.get(c.BUSINESS_USER, 0) + created.get(c.CONSUMER_USER, 0))

        customers = GaugeMetricFamily(
            "panel_customers", "Customers (resellers, organizations, users) by type and status.",
            labels=["type", "status"])
        for customer_type, status, n in Customer.objects.order_by().values_list(
                "customer_type_id", "status_id").annotate(n=Count("pk")):
            customers.add_metric([customer_type, status], n)
        yield customers


class _Sources:
    """What one scrape reads: the processes' metrics, then the database's."""

    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def exposition():
    """The text Prometheus scrapes."""
    if settings.PROMETHEUS_MULTIPROC_DIR:
        processes = MultiProcessCollector(None, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        processes = REGISTRY
    return generate_latest(_Sources(processes, DatabaseCollector()))



@checks.register(checks.Tags.compatibility, deploy=True)
def check_shared_directory(app_configs=None, **kwargs):
    """Metrics served without a shared directory miss what workers and every other web
    process observed: each scrape would show one gunicorn worker's figures."""
    if settings.METRICS_TOKEN and not settings.PROMETHEUS_MULTIPROC_DIR:
        return [checks.Warning(
            "METRICS_TOKEN is set but PROMETHEUS_MULTIPROC_DIR is not: /metrics shows only "
            "the figures of the web process that answers, none from the Celery workers.",
            hint="Set PROMETHEUS_MULTIPROC_DIR to a directory that the web, worker and beat "
                 "processes share (README, Monitoring).",
            id="provisioning.W001")]
    return []
