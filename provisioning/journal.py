"""The operation journal: every call to the directory or Exchange is an Operation, enqueued
when the transaction that asked for it commits, run by a Celery worker, idempotent, retried
with backoff on transient faults, and never left failed without a trace.

  enqueue()  — called by the service functions inside their transaction
  execute()  — called by the Celery task; runs the action's steps
  retry()    — a person asks to run a failed operation again
  requeue_stale() — periodic: re-sends operations whose task message was lost

The database is the outbox: an operation and its sealed password (OperationSecret) are
written in the caller's transaction, and the task message carries only the operation's id.
A message lost with a broker that was down or restarted is sent again by requeue_stale,
and the password is still there, sealed, until the operation no longer needs it.
"""

import contextvars
import logging
import random
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django import db
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from servers.models import Service

from . import backends, metrics, secrets
from .actions import ACTIONS, Context, dry_run_lock
from .directory import DirectoryError, TransientDirectoryError
from .exchange import ExchangeError, TransientExchangeError
from .models import Operation, OperationSecret, OperationState

log = logging.getLogger(__name__)

ORDER_WAIT_SECONDS = 1
# Retried with backoff; a script past Celery's soft time limit counts as a timeout. The
# transient classes come first: they are subclasses of the permanent ones' bases.
TRANSIENT_FAULTS = (TransientDirectoryError, TransientExchangeError, SoftTimeLimitExceeded)
PERMANENT_FAULTS = (DirectoryError, ExchangeError)
# The panel's own database unreachable: the operation is given back, never compensated.
DATABASE_LOST = (OperationalError, InterfaceError)


def _lease():
    return timedelta(seconds=settings.OPERATION_LEASE_SECONDS)


def _scope_of(customer):
    return customer.organization or customer


_collected = contextvars.ContextVar("journal_collected", default=None)


@contextmanager
def collect():
    """The operations enqueued inside the block, in order: the API answers a write that
    provisions with the Location of the operation that carries it."""
    operations = []
    token = _collected.set(operations)
    try:
        yield operations
    finally:
        _collected.reset(token)


def enqueue(customer, action, actor=None, secret=None, **params):
    """Record the operation now; send it to a worker once the caller's transaction commits."""
    if action not in ACTIONS:
        raise ValueError(f"unknown provisioning action {action!r}")
    operation = Operation.objects.create(
        customer=customer, scope=_scope_of(customer), action=action, params=params,
        needs_secret=secret is not None, due=timezone.now(),
        requested_by=actor if getattr(actor, "pk", None) else None)
    if secret is not None:
        OperationSecret.objects.create(operation=operation, sealed=secrets.seal(secret))
    transaction.on_commit(lambda: send(operation.pk))
    collected = _collected.get()
    if collected is not None:
        collected.append(operation)
    return operation


def send(operation_id, countdown=None):
    from .tasks import run_operation

    Operation.objects.filter(pk=operation_id).update(sends=F("sends") + 1)
    try:
        result = run_operation.apply_async(args=[operation_id], countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - the broker is down: the operation stays queued
        log.warning("could not send operation %s to the broker (%s); it stays queued and "
                    "requeue_stale sends it again once the broker is back", operation_id,
                    exc.__class__.__name__)
        return None
    if result is not None and not settings.CELERY_TASK_ALWAYS_EAGER:
        Operation.objects.filter(pk=operation_id, task_id="").update(task_id=result.id)
    return result


def _secret_of(operation_id):
    """The operation's password, from the outbox."""
    return secrets.unseal(OperationSecret.objects.filter(operation_id=operation_id)
                          .values_list("sealed", flat=True).first())


@dataclass
class Outcome:
    state: str
    retry_in: float | None = None


def backoff(attempt):
    """Exponential backoff with jitter: about 2, 4, 8 ... seconds, at most five minutes."""
    base = min(300, settings.OPERATION_BACKOFF_BASE ** max(1, attempt))
    return base * random.uniform(0.8, 1.2)


def _claim(operation_id, task_id):
    """Mark the operation running, unless it is finished or another live worker holds it.

    A worker that died leaves its lease to expire, so a redelivered task can take over.
    The attempt is counted here, when it starts, so an attempt killed with its worker
    counts too."""
    now = timezone.now()
    claimed = Operation.objects.filter(
        Q(state=OperationState.QUEUED)
        | Q(state=OperationState.RUNNING, lease_until__lt=now),
        pk=operation_id,
    ).update(state=OperationState.RUNNING, lease_until=now + _lease(), task_id=task_id or "",
             started=now, attempts=F("attempts") + 1, updated=now)
    return claimed == 1


def _blocked(operation):
    """Operations of one customer run in order, and a user's wait for its organization's."""
    return Operation.objects.filter(
        pk__lt=operation.pk,
        customer_id__in={operation.customer_id, operation.scope_id},
        state__in=[OperationState.QUEUED, OperationState.RUNNING],
    ).exists()


def execute(operation_id, task_id=None):
    try:
        if backends.is_dry_run():
            with dry_run_lock:
                return _execute(operation_id, task_id)
        return _execute(operation_id, task_id)
    except DATABASE_LOST as exc:
        # The panel's own database went away mid-operation (a restart, a failover, a
        # killed connection). Nothing is compensated: the steps are idempotent and carry
        # the tenant mark, so the next attempt finds and adopts what this one made.
        log.warning("operation %s lost the database (%s); it will be retried",
                    operation_id, exc.__class__.__name__)
        return _release(operation_id, exc)


def _release(operation_id, exc):
    """Give a claimed operation back to the queue on a fresh connection, if there is one;
    if not, its lease runs out and requeue_stale sends it again."""
    delay = backoff(1)
    if db.connection.in_atomic_block:  # run eagerly inside a request: its caller decides
        raise exc
    db.connection.close()
    try:
        Operation.objects.filter(pk=operation_id, state=OperationState.RUNNING).update(
            state=OperationState.QUEUED, lease_until=None,
            due=timezone.now() + timedelta(seconds=delay), updated=timezone.now())
    except DATABASE_LOST:
        db.connection.close()
    return Outcome(OperationState.QUEUED, retry_in=delay)


def _execute(operation_id, task_id):
    operation = Operation.objects.select_related("customer__parent", "scope").filter(
        pk=operation_id).first()
    if operation is None:
        log.warning("operation %s does not exist; its task is dropped", operation_id)
        return Outcome("missing")
    if operation.is_finished:
        return Outcome(operation.state)
    if _blocked(operation):
        # Waiting its turn is not being lost: requeue_stale must leave it alone.
        now = timezone.now()
        Operation.objects.filter(pk=operation_id, state=OperationState.QUEUED).update(
            due=now + timedelta(seconds=ORDER_WAIT_SECONDS), updated=now)
        return Outcome(OperationState.QUEUED, retry_in=ORDER_WAIT_SECONDS)
    if not _claim(operation_id, task_id):
        return Outcome(operation.state)
    operation.refresh_from_db(fields=["state", "attempts", "steps", "backend_log"])
    secret = _secret_of(operation_id)
    if operation.needs_secret and secret is None:
        return _finish(operation, OperationState.FAILED,
                       "The password for this operation has expired. Retry it with a new "
                       "password.")

    context = Context(operation, secret)
    action = ACTIONS[operation.action]
    try:
        action.run(context)
    except TRANSIENT_FAULTS as exc:
        return _transient(operation, context, exc)
    except DATABASE_LOST:
        raise
    except PERMANENT_FAULTS as exc:
        action.compensate(context)
        return _finish(operation, OperationState.FAILED, failure_message(exc), context)
    except Exception as exc:
        log.exception("operation %s (%s) failed unexpectedly", operation.pk, operation.action)
        action.compensate(context)
        return _finish(operation, OperationState.FAILED,
                       f"Internal error ({exc.__class__.__name__}); the provider has been "
                       "notified.", context)
    if context.contacted:
        # The provider's status page: when each server last answered a worker.
        Service.objects.filter(pk__in=context.contacted).record_contact()
    return _finish(operation, OperationState.SUCCEEDED, "", context)


def failure_message(exc):
    """The plain-language message, with Exchange's own words when it gave any."""
    message = exc.user_message
    exchange_message = getattr(exc, "exchange_message", "")
    if exchange_message and exchange_message not in message:
        message = f"{message} — Exchange said: {exchange_message}"
    return message


def _transient(operation, context, exc):
    message = getattr(exc, "user_message", None) or (
        "The server did not answer in time; the panel will try again.")
    if operation.attempts >= settings.OPERATION_MAX_ATTEMPTS:
        ACTIONS[operation.action].compensate(context)
        return _finish(operation, OperationState.FAILED,
                       f"{message} — gave up after {operation.attempts} attempts.", context)
    delay = backoff(operation.attempts)
    _save(operation, context, state=OperationState.QUEUED, last_error=message,
          due=timezone.now() + timedelta(seconds=delay))
    metrics.operation_retried(operation.action)
    return Outcome(OperationState.QUEUED, retry_in=delay)


def _save(operation, context, **fields):
    if context is not None:
        context.finish()
        fields["steps"] = context.steps
        fields["backend_log"] = operation.backend_log + context.backend_log
    fields.update(attempts=operation.attempts, lease_until=None)
    Operation.objects.filter(pk=operation.pk).update(updated=timezone.now(), **fields)


def _finish(operation, state, error, context=None):
    finished = timezone.now()
    _save(operation, context, state=state, last_error=error, finished=finished, due=None)
    metrics.operation_finished(operation.action, state, operation.requested, finished)
    # Finished, for good or for now: the password is not needed any more. A person who
    # retries a failed operation gives a new one.
    OperationSecret.objects.filter(operation_id=operation.pk).delete()
    if state == OperationState.FAILED:
        log.warning("operation %s (%s for customer %s) failed: %s", operation.pk,
                    operation.action, operation.customer_id, error)
    return Outcome(state)


@transaction.atomic
def retry(operation, actor=None, secret=None):
    """Run a failed (or cancelled) operation again; steps already done are skipped."""
    operation = Operation.objects.select_for_update().get(pk=operation.pk)
    if operation.state not in (OperationState.FAILED, OperationState.CANCELLED):
        raise ValidationError(_("Only a failed or cancelled operation can be retried."))
    if operation.needs_secret and not secret:
        raise ValidationError({"secret": _("Enter a new password to retry this operation.")})
    operation.state = OperationState.QUEUED
    operation.attempts = 0
    operation.last_error = ""
    operation.finished = None
    operation.due = operation.requested = timezone.now()
    operation.save(update_fields=["state", "attempts", "last_error", "finished", "due",
                                  "requested", "updated"])
    # Its next failure, or a long wait, is news again (provisioning.alerts).
    operation.alerts.all().delete()
    if secret:
        OperationSecret.objects.update_or_create(
            operation=operation, defaults={"sealed": secrets.seal(secret)})
    transaction.on_commit(lambda: send(operation.pk))
    return operation


def requeue_stale(grace=None):
    """Send again what the broker never got (it was down at commit) or lost (it restarted).

    Queued operations more than `grace` past their due time, and running ones whose
    worker's lease expired. Nothing is failed here: the password, if any, waits sealed in
    the outbox. Each further resend of one operation waits a grace longer, so a long
    queue behind busy workers is not flooded with duplicates (a duplicate message is
    harmless: only one worker can claim an operation)."""
    now = timezone.now()
    grace = timedelta(seconds=settings.OPERATION_REDELIVER_AFTER if grace is None else grace)
    stale = Operation.objects.filter(
        Q(state=OperationState.QUEUED, due__lt=now - grace)
        | Q(state=OperationState.RUNNING, lease_until__lt=now))
    resent = 0
    for operation_id, sends in stale.values_list("pk", "sends"):
        Operation.objects.filter(pk=operation_id).update(
            due=now + grace * min(sends, 10))
        send(operation_id)
        resent += 1
    if resent:
        log.info("requeue_stale sent %s operation(s) again", resent)
    return resent
