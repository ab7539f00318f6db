"""The operation journal: every call to the directory or Exchange is an Operation, enqueued
when the transaction that asked for it commits, run by a Celery worker, idempotent, retried
with backoff on transient faults, and never left failed without a trace.

  enqueue()  — called by the service functions inside their transaction
  execute()  — called by the Celery task; runs the action's steps
  retry()    — a person asks to run a failed operation again
  requeue_stale() — periodic: re-sends operations whose task message never reached the broker
"""

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import backends, secrets
from .actions import ACTIONS, Context, dry_run_lock
from .directory import DirectoryError, TransientDirectoryError
from .exchange import ExchangeError, TransientExchangeError
from .models import Operation, OperationState

log = logging.getLogger(__name__)

ORDER_WAIT_SECONDS = 1
# Retried with backoff; a script past Celery's soft time limit counts as a timeout. The
# transient classes come first: they are subclasses of the permanent ones' bases.
TRANSIENT_FAULTS = (TransientDirectoryError, TransientExchangeError, SoftTimeLimitExceeded)
PERMANENT_FAULTS = (DirectoryError, ExchangeError)


def _lease():
    return timedelta(seconds=settings.OPERATION_LEASE_SECONDS)


def _scope_of(customer):
    return customer.organization or customer


def enqueue(customer, action, actor=None, secret=None, **params):
    """Record the operation now; send it to a worker once the caller's transaction commits."""
    if action not in ACTIONS:
        raise ValueError(f"unknown provisioning action {action!r}")
    operation = Operation.objects.create(
        customer=customer, scope=_scope_of(customer), action=action, params=params,
        needs_secret=secret is not None,
        requested_by=actor if getattr(actor, "pk", None) else None)
    sealed = secrets.seal(secret)
    transaction.on_commit(lambda: send(operation.pk, sealed))
    return operation


def send(operation_id, sealed_secret=None, countdown=None):
    from .tasks import run_operation

    try:
        result = run_operation.apply_async(args=[operation_id, sealed_secret],
                                           countdown=countdown)
    except Exception:  # noqa: BLE001 - the broker is down: the operation stays queued
        log.exception("could not send operation %s to the broker; it stays queued and "
                      "requeue_stale will send it again", operation_id)
        return None
    if result is not None and not settings.CELERY_TASK_ALWAYS_EAGER:
        Operation.objects.filter(pk=operation_id, task_id="").update(task_id=result.id)
    return result


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

    A worker that died leaves its lease to expire, so a redelivered task can take over."""
    now = timezone.now()
    claimed = Operation.objects.filter(
        Q(state=OperationState.QUEUED)
        | Q(state=OperationState.RUNNING, lease_until__lt=now),
        pk=operation_id,
    ).update(state=OperationState.RUNNING, lease_until=now + _lease(), task_id=task_id or "",
             started=now)
    return claimed == 1


def _blocked(operation):
    """Operations of one customer run in order, and a user's wait for its organization's."""
    return Operation.objects.filter(
        pk__lt=operation.pk,
        customer_id__in={operation.customer_id, operation.scope_id},
        state__in=[OperationState.QUEUED, OperationState.RUNNING],
    ).exists()


def execute(operation_id, sealed_secret=None, task_id=None):
    if backends.is_dry_run():
        with dry_run_lock:
            return _execute(operation_id, sealed_secret, task_id)
    return _execute(operation_id, sealed_secret, task_id)


def _execute(operation_id, sealed_secret, task_id):
    operation = Operation.objects.select_related("customer__parent", "scope").filter(
        pk=operation_id).first()
    if operation is None:
        log.warning("operation %s does not exist; its task is dropped", operation_id)
        return Outcome("missing")
    if operation.is_finished:
        return Outcome(operation.state)
    if _blocked(operation):
        return Outcome(OperationState.QUEUED, retry_in=ORDER_WAIT_SECONDS)
    if not _claim(operation_id, task_id):
        return Outcome(operation.state)
    operation.state = OperationState.RUNNING
    operation.attempts += 1
    secret = secrets.unseal(sealed_secret)
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
    except PERMANENT_FAULTS as exc:
        action.compensate(context)
        return _finish(operation, OperationState.FAILED, failure_message(exc), context)
    except Exception as exc:
        log.exception("operation %s (%s) failed unexpectedly", operation.pk, operation.action)
        action.compensate(context)
        return _finish(operation, OperationState.FAILED,
                       f"Internal error ({exc.__class__.__name__}); the provider has been "
                       "notified.", context)
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
    _save(operation, context, state=OperationState.QUEUED, last_error=message)
    return Outcome(OperationState.QUEUED, retry_in=backoff(operation.attempts))


def _save(operation, context, **fields):
    if context is not None:
        context.finish()
        fields["steps"] = context.steps
        fields["backend_log"] = operation.backend_log + context.backend_log
    fields.update(attempts=operation.attempts, lease_until=None)
    Operation.objects.filter(pk=operation.pk).update(updated=timezone.now(), **fields)


def _finish(operation, state, error, context=None):
    _save(operation, context, state=state, last_error=error, finished=timezone.now())
    if state == OperationState.FAILED:
        log.warning("operation %s (%s for customer %s) failed: %s", operation.pk,
                    operation.action, operation.customer_id, error)
    return Outcome(state)


@transaction.atomic
def retry(operation, actor=None, secret=None):
    """Run a failed (or cancelled) operation again; steps already done are skipped."""
    operation = Operation.objects.select_for_update().get(pk=operation.pk)
    if operation.state not in (OperationState.FAILED, OperationState.CANCELLED):
        raise ValidationError("Only a failed or cancelled operation can be retried.")
    if operation.needs_secret and not secret:
        raise ValidationError({"secret": "Enter a new password to retry this operation."})
    operation.state = OperationState.QUEUED
    operation.attempts = 0
    operation.last_error = ""
    operation.finished = None
    operation.save(update_fields=["state", "attempts", "last_error", "finished", "updated"])
    sealed = secrets.seal(secret)
    transaction.on_commit(lambda: send(operation.pk, sealed))
    return operation


def requeue_stale(older_than=timedelta(minutes=5)):
    """Send again what the broker never got (it was down at commit) or lost.

    An operation that needed a password cannot be sent again without it: it fails, visibly,
    and waits for someone to retry it with a new password."""
    now = timezone.now()
    stale = Operation.objects.filter(
        Q(state=OperationState.QUEUED, updated__lt=now - older_than)
        | Q(state=OperationState.RUNNING, lease_until__lt=now))
    resent = 0
    for operation_id, needs_secret in stale.values_list("pk", "needs_secret"):
        if needs_secret:
            Operation.objects.filter(pk=operation_id, state__in=[
                OperationState.QUEUED, OperationState.RUNNING]).update(
                state=OperationState.FAILED, finished=now, updated=now, lease_until=None,
                last_error="The operation never reached a worker and its password is not "
                           "kept. Retry it with a new password.")
        else:
            send(operation_id)
            resent += 1
    return resent
