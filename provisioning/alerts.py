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

Each e-mail is written in its recipient's language: the language of the panel account with
that address (Account.language), else the panel's default (LANGUAGE_CODE). The error
itself is shown as the journal recorded it.
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
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext_lazy

from . import constants as c
from . import metrics
from .models import (
    Account,
    AlertKind,
    Event,
    Operation,
    OperationAlert,
    OperationState,
    ProviderSummary,
    Role,
)
from .models.operations import action_label

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[Hosted Organizations] "
ORGANIZATION_ROLES = (Role.PRIMARY_ADMIN, Role.PEER_FULL_ADMIN)
UNFINISHED = (OperationState.QUEUED, OperationState.RUNNING)
# A digest lists this many operations and counts the rest.
DIGEST_LINES = 50
# An operation's state within a sentence ("now queued", "3 succeeded").
STATE_WORDS = {
    OperationState.QUEUED: pgettext_lazy("operation state", "queued"),
    OperationState.RUNNING: pgettext_lazy("operation state", "running"),
    OperationState.SUCCEEDED: pgettext_lazy("operation state", "succeeded"),
    OperationState.FAILED: pgettext_lazy("operation state", "failed"),
    OperationState.CANCELLED: pgettext_lazy("operation state", "cancelled"),
}


def languages_of(addresses):
    """{address: language} of the panel accounts with those addresses that chose a language
    (an address shared by several accounts: the oldest account's choice)."""
    found = {}
    for email, language in Account.objects.filter(
            user__is_active=True, user__email__in=addresses).exclude(language="").order_by(
            "pk").values_list("user__email", "language"):
        found.setdefault(email.strip(), language)
    return found


def in_language_of(languages, email):
    """translation.override for the recipient's language, or the panel's default."""
    return translation.override(languages.get(email) or settings.LANGUAGE_CODE)


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

    languages = languages_of(list(digests))
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
                    with in_language_of(languages, email):
                        message = operations_message(email, items, now, connection)
                    message.send()
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
        "action": action_label(operation.action),
        "state": STATE_WORDS.get(operation.state, operation.state),
        "who": who,
        "organization": organization,
        "waited": _duration(now - operation.requested),
        "link": f"{settings.PANEL_URL}/organizations/{organization.pk}/operations/"
                if settings.PANEL_URL else "",
    }


def _duration(delta):
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return _("%(minutes)s min") % {"minutes": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
    days = hours // 24
    return ngettext("%(days)s day", "%(days)s days", days) % {"days": days}


def operations_message(email, items, now, connection=None):
    items = [_item(operation, kind, now) for operation, kind in items]
    organizations = sorted({item["organization"].name for item in items})
    count = len(items)
    if len(organizations) == 1:
        subject = ngettext("%(count)s operation needs attention (%(organization)s)",
                           "%(count)s operations need attention (%(organization)s)",
                           count) % {"count": count, "organization": organizations[0]}
    else:
        subject = ngettext("%(count)s operation needs attention",
                           "%(count)s operations need attention", count) % {"count": count}
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
        finished[action_label(row["action"])][row["state"]] = row["n"]
    order = [OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED]
    lines = sorted((action, [(STATE_WORDS[state], counts[state]) for state in order
                             if state in counts])
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
        "oldest": now - queue["oldest"] if queue["oldest"] else None,
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
    day = timezone.localdate(now)
    told = set(ProviderSummary.objects.filter(day=day).values_list("email", flat=True))
    addresses = [address for address in addresses if address not in told]
    if not addresses:
        return 0
    figures = provider_summary(now)
    languages = languages_of(addresses)
    sent = 0
    with mail.get_connection() as connection:
        for address in addresses:
            try:
                # Recorded with the send: one e-mail a day per address, however often beat
                # fires; a failed send records nothing, so the next run tries again.
                with transaction.atomic():
                    ProviderSummary.objects.create(day=day, email=address)
                    with in_language_of(languages, address):
                        message = summary_message(address, figures)
                    message.connection = connection
                    message.send()
            except IntegrityError:
                continue  # a run beside this one sent it first
            except Exception as exc:  # noqa: BLE001 - reported, and counted
                log.warning("could not send the provider's daily summary to %s (%s)",
                            address, exc.__class__.__name__)
                metrics.alert_email("summary", "failed")
                continue
            metrics.alert_email("summary", "sent")
            sent += 1
    return sent


def summary_message(address, figures):
    """The daily summary to one address, in the active language."""
    subject = _("Daily summary: %(failed)s failed, %(waiting)s waiting, %(sign_ups)s "
                "sign-up(s)") % figures
    oldest = _duration(figures["oldest"]) if figures["oldest"] is not None else ""
    body = render_to_string("alerts/provider_summary.txt", {**figures, "oldest": oldest})
    return mail.EmailMessage(SUBJECT_PREFIX + subject, body, settings.DEFAULT_FROM_EMAIL,
                             [address])
