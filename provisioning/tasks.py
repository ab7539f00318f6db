"""Celery tasks stay thin: they load an operation and let the journal run it."""

from celery import shared_task

from . import changelog, journal


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None,
             soft_time_limit=120, time_limit=150)
def run_operation(self, operation_id):
    with changelog.correlated():
        outcome = journal.execute(operation_id, task_id=self.request.id)
    if outcome.retry_in is not None:
        # The message carries only the id: the password waits sealed in the outbox.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.state


@shared_task
def requeue_stale_operations():
    return journal.requeue_stale()


@shared_task
def reconcile_directory():
    from .reconciliation import reconcile_all

    return [report.summary() for report in reconcile_all()]


@shared_task
def send_operation_alerts():
    from .alerts import send_operation_alerts as send

    return send()


@shared_task
def send_provider_summary():
    from .alerts import send_provider_summary as send

    return send()
