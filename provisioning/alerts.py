"""E-mail to the people who must act when provisioning goes wrong.

send_operation_alerts() — beat, every OPERATION_ALERT_EVERY_SECONDS. An operation that
failed for good, or is still not done OPERATION_ALERT_AFTER_MINUTES after it was requested,
is told to its organization's administrators (the primary administrator and the
full-administrator peers) and to its reseller's administrators — each of them with an
active login and an e-mail address. Each person gets one e-mail per run listing every such
operation they have not been told about yet: one failure makes a one-line e-mail, a
hundred failing at once make one digest.

Each (operation, kind, address) is written to OperationAlert in the transaction that sends
its e-mail, under a unique constraint: a run that finds nothing new sends nothing, an
e-mail that could not be sent leaves no record and goes out with the next run, and two runs
at once cannot both send the same alert (the second one's insert waits for the first's and
fails). A person who retries an operation clears its alerts (journal.retry): its next
failure is news.

send_provider_summary() — beat, daily at PROVIDER_SUMMARY_HOUR: the provider's staff with
an e-mail address and PROVIDER_ALERT_EMAIL get the day's figures.

An e-mail names the operation, its customer and the plain-language error the Operations
page shows — never a password, the operation's parameters or the backend log.
"""

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Q
from django.template.loader import render_to_string
from django.utils import timezone

from . import constants as c
from . import metrics
from .models import Account, AlertKind, Event, Operation, OperationAlert, OperationState, Role

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[Hosted Organizations] "
ORGANIZATION_ROLES = (Role.PRIMARY_ADMIN, Role.PEER_FULL_ADMIN)
UNFINISHED = (OperationState.QUEUED, OperationState.RUNNING)
# A digest lists this many operations and counts the rest.
DIGEST_LINES = 50


def due_alerts(now):
    """[(operation, kind)] of the operations that need a person now."""
    failed_since = now - timedelta(hours=settings.OPERATION_ALERT_LOOKBACK_HOURS)
    waiting_since = now - timedelta(minutes=settings.OPERATION_ALERT_AFTER_MINUTES)
    operations = Operation.objects.filter(
        Q(state=OperationState.FAILED, finished__gte=failed_since)
        | Q(state__in=UNFINISHED, requested__lte=waiting_since),
    ).select_related("customer", "scope").defer(
        "params", "steps", "backend_log").order_by("scope__name", "pk")
    return [(operation, AlertKind.FAILED if operation.state == OperationState.FAILED
             else AlertKind.WAITING) for operation in operations]


def recipients(scopes):
    """{organization id: set of addresses}: its administrators' and its reseller's."""
    parents = {scope.pk: scope.parent_id for scope in scopes}
    accounts = Account.objects.filter(
        Q(customer_id__in=parents, role__in=ORGANIZATION_ROLES)
        | Q(customer_id__in={p for p in parents.values() if p}, role=Role.RESELLER_ADMIN),
        user__is_active=True).exclude(user__email="").values_list("customer_id",
                                                                   "user__email")
    addresses = defaultdict(set)
    for customer_id, email in accounts:
        addresses[customer_id].add(email.strip())
    return {scope: addresses[scope] | addresses[parent] for scope, parent in parents.items()}


def send_operation_alerts(now=None):
    """Send each person one e-mail about the operations they have not been told about.
    Returns the number of e-mails sent."""
    now = now or timezone.now()
    due = due_alerts(now)
    if not due:
        return 0
    told = set(OperationAlert.objects.filter(
        operation_id__in=[operation.pk for operation, _ in due]).values_list(
        "operation_id", "kind", "email"))
    addresses = recipients({operation.scope for operation, _ in due})
    digests = defaultdict(list)
    for operation, kind in due:
        for email in addresses[operation.scope_id]:
            if (operation.pk, kind, email) not in told:
                digests[email].append((operation, kind))

    sent = 0
    connection = mail.get_connection()
    try:
        connection.open()  # one SMTP session for the run, if the server answers now
    except Exception:  # noqa: BLE001, S110 - each message below tries again, and says so
        pass
    try:
        for email, items in sorted(digests.items()):
            try:
                with transaction.atomic():
                    OperationAlert.objects.bulk_create(
                        [OperationAlert(operation=operation, kind=kind, email=email)
                         for operation, kind in items])
                    operations_message(email, items, now, connection).send()
            except IntegrityError:
                continue  # a run beside this one told them first
            except Exception as exc:  # noqa: BLE001 - the next run tries again
                log.warning("could not e-mail %s operation alert(s) to %s (%s); the next run "
                            "tries again", len(items), email, exc.__class__.__name__)
                metrics.alert_email("operations", "failed")
                continue
            metrics.alert_email("operations", "sent")
            sent += 1
    finally:
        connection.close()
    return sent


def _item(operation, kind, now):
    organization = operation.scope
    customer = operation.customer
    who = customer.name if customer.pk == organization.pk else (
        f"{customer.name} ({customer.upn})" if customer.upn else customer.name)
    return {
        "operation": operation,
        "kind": kind,
        "action": operation.action.replace("_", " "),
        "who": who,
        "organization": organization,
        "waited": _duration(now - operation.requested),
        "link": f"{settings.PANEL_URL}/organizations/{organization.pk}/operations/"
                if settings.PANEL_URL else "",
    }


def _duration(delta):
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days"


def operations_message(email, items, now, connection=None):
    items = [_item(operation, kind, now) for operation, kind in items]
    organizations = sorted({item["organization"].name for item in items})
    count = len(items)
    subject = (f"{count} operation{'s' if count > 1 else ''} "
               f"need{'' if count > 1 else 's'} attention"
               + (f" ({organizations[0]})" if len(organizations) == 1 else ""))
    body = render_to_string("alerts/operations.txt", {
        "items": items[:DIGEST_LINES], "more": count - DIGEST_LINES,
        "failed": sum(item["kind"] == AlertKind.FAILED for item in items),
        "waiting": sum(item["kind"] == AlertKind.WAITING for item in items),
        "after_minutes": settings.OPERATION_ALERT_AFTER_MINUTES,
    })
    return mail.EmailMessage(SUBJECT_PREFIX + subject, body, settings.DEFAULT_FROM_EMAIL,
                             [email], connection=connection)


# --- The provider's daily summary ------------------------------------------------------


def provider_addresses():
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(
        email="").values_list("email", flat=True)
    return sorted({email.strip() for email in [*staff, *settings.PROVIDER_ALERT_EMAIL]
                   if email.strip()})


def provider_summary(now):
    """The day's figures: operations finished by action and outcome, failures by
    organization, what waits now, sign-ups and users created, alerts sent."""
    since = now - timedelta(days=1)
    finished = defaultdict(dict)
    for row in Operation.objects.filter(finished__gte=since).order_by("state").values(
            "action", "state").annotate(n=Count("pk")):
        finished[row["action"].replace("_", " ")][row["state"]] = row["n"]
    order = [OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED]
    lines = sorted((action, [(state, counts[state]) for state in order if state in counts])
                   for action, counts in finished.items())
    failed_by_organization = list(Operation.objects.filter(
        state=OperationState.FAILED, finished__gte=since).order_by().values(
        "scope__name").annotate(n=Count("pk")).order_by("-n", "scope__name")[:20])
    queue = Operation.objects.filter(state=OperationState.QUEUED).aggregate(
        n=Count("pk"), oldest=Min("requested"))
    waiting = Operation.objects.filter(
        state__in=UNFINISHED,
        requested__lte=now - timedelta(minutes=settings.OPERATION_ALERT_AFTER_MINUTES)).count()
    created = dict(Event.objects.filter(event_type_id=c.CREATED, occurred_at__gte=since)
                   .order_by().values_list("customer__customer_type_id")
                   .annotate(n=Count("pk")))
    return {
        "since": since, "now": now,
        "finished": lines,
        "succeeded": sum(s.get(OperationState.SUCCEEDED, 0) for s in finished.values()),
        "failed": sum(s.get(OperationState.FAILED, 0) for s in finished.values()),
        "failed_by_organization": failed_by_organization,
        "queued": queue["n"],
        "oldest": _duration(now - queue["oldest"]) if queue["oldest"] else "",
        "waiting": waiting,
        "after_minutes": settings.OPERATION_ALERT_AFTER_MINUTES,
        "sign_ups": created.get(c.BUSINESS_ORGANIZATION, 0),
        "users_created": created.get(c.BUSINESS_USER, 0) + created.get(c.CONSUMER_USER, 0),
        "alerts": OperationAlert.objects.filter(sent__gte=since).count(),
    }


def send_provider_summary(now=None):
    """E-mail the day's summary to each provider address. Returns the number sent."""
    now = now or timezone.now()
    addresses = provider_addresses()
    if not addresses:
        log.info("no provider address for the daily summary (staff e-mail or "
                 "PROVIDER_ALERT_EMAIL)")
        return 0
    figures = provider_summary(now)
    subject = (f"{SUBJECT_PREFIX}Daily summary: {figures['failed']} failed, "
               f"{figures['waiting']} waiting, {figures['sign_ups']} sign-up(s)")
    body = render_to_string("alerts/provider_summary.txt", figures)
    messages = [mail.EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
                for address in addresses]
    try:
        with mail.get_connection() as connection:
            sent = connection.send_messages(messages) or 0
    except Exception as exc:  # noqa: BLE001 - reported, and counted
        log.warning("could not send the provider's daily summary (%s)",
                    exc.__class__.__name__)
        metrics.alert_email("summary", "failed", len(messages))
        return 0
    metrics.alert_email("summary", "sent", sent)
    return sent
