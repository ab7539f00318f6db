"""The provider's status page in the admin (staff only): what /readyz checks, each worker's
and beat's last heartbeat, each server's services with their last successful contact, and
the operations queued, running and failed."""

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Min
from django.template.response import TemplateResponse
from django.utils import timezone

from panel import health
from provisioning.models import Operation, OperationState
from servers.models import Server

SHOWN_STATES = (OperationState.QUEUED, OperationState.RUNNING, OperationState.FAILED)


def _workers():
    try:
        return sorted(health.heartbeats("worker").items()), health.beat_age(), None
    except Exception as exc:  # noqa: BLE001 - the page must show even with Redis down
        return [], None, f"The broker cannot be read ({exc.__class__.__name__})."


def provider_status(request):
    ready, checks = health.readiness()
    workers, beat_age, broker_error = _workers()
    counts = dict(Operation.objects.filter(state__in=SHOWN_STATES).order_by().values_list(
        "state").annotate(n=Count("pk")).values_list("state", "n"))
    oldest = Operation.objects.filter(state=OperationState.QUEUED).aggregate(
        oldest=Min("created"))["oldest"]
    context = {
        **admin.site.each_context(request),
        "title": "Provider status",
        "ready": ready,
        "checks": checks,
        "workers": [(name, age, age <= settings.READINESS_MAX_AGE_SECONDS)
                    for name, age in workers],
        "beat_age": beat_age,
        "broker_error": broker_error,
        "max_age": settings.READINESS_MAX_AGE_SECONDS,
        "servers": Server.objects.prefetch_related("services"),
        "dry_run": settings.PROVISIONING_BACKEND == "dryrun",
        "eager": settings.CELERY_TASK_ALWAYS_EAGER,
        "operations": [(state.label, state.value, counts.get(state.value, 0))
                       for state in SHOWN_STATES],
        "oldest_queued_seconds": (timezone.now() - oldest).total_seconds() if oldest else None,
        "now": timezone.now(),
    }
    return TemplateResponse(request, "admin/provider_status.html", context)
