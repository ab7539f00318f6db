"""The change log: every change to these models is recorded by django-auditlog with the
actor (bound per request by its middleware), the request's correlation id and the values
before and after. `readable` turns a page of entries into what a person reads: field
labels, related objects by name, internals left out, one group per request."""

import datetime
import uuid
from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from dateutil import parser as date_parser
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.text import capfirst
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from servers.models import Server, Service, VirtualServer
from servicplans.models import FeatureType, HostingPlan, PlanFeature, ServicePlan

from . import scoping
from .models import Account, ApiToken, Customer, CustomerAsset, HostingSpace

# Bookkeeping, not a change anyone made: the tree's internals (django-mptt), the name kept
# for comparison, the timestamps the entry has anyway, and the directory's own GUID.
INTERNAL_FIELDS = ("lft", "rght", "tree_id", "level", "name_key", "created", "updated",
                   "object_guid", "date_joined")
# Secrets are never shown, whatever an older entry recorded.
SECRET_SUFFIXES = ("password", "key", "secret", "token")

User = get_user_model()

for model in (Customer, CustomerAsset, HostingSpace, Account):
    auditlog.register(model, exclude_fields=[f for f in INTERNAL_FIELDS
                                             if hasattr(model, f)])
for model in (Server, VirtualServer, HostingPlan, ServicePlan, PlanFeature, FeatureType):
    auditlog.register(model)
auditlog.register(Service, exclude_fields=["bind_password", "exchange_password",
                                           "last_contact"])
# Panel logins: deactivating or editing one is a change an organization must be able to
# trace. The password hash is a secret, and last_login changes at every sign-in, which would
# bury the real changes.
auditlog.register(User, exclude_fields=["password", "last_login"])
# Second factors: enrolled, replaced, reset. Only who owns them and whether they are
# confirmed; the key is a secret, and the counters change at every code given.
for model in (TOTPDevice, StaticDevice):
    auditlog.register(model, include_fields=["user", "name", "confirmed"])


# --- One correlation id per request (and per operation run by a worker) ------------------

_correlation_id = ContextVar("change_log_correlation_id", default=None)


def correlation_id():
    """AUDITLOG_CID_GETTER: the id auditlog stores as each entry's `cid`."""
    return _correlation_id.get()


@contextmanager
def correlated():
    """Entries written inside share one fresh correlation id, unless an outer block (the
    request an eager task runs in) already gave one. The id is made here, never taken from a
    request header, so no client can put its changes into another request's group."""
    if _correlation_id.get() is not None:
        yield
        return
    token = _correlation_id.set(uuid.uuid4().hex)
    try:
        yield
    finally:
        _correlation_id.reset(token)


# --- Reading a page of entries ----------------------------------------------------------

NOUNS = {Customer: "User", CustomerAsset: "Domain", HostingSpace: "Hosting space",
         Account: "Panel account", User: "Login", TOTPDevice: "Authenticator app",
         StaticDevice: "Recovery codes", ApiToken: "API token"}
VERBS = {LogEntry.Action.CREATE: "Created", LogEntry.Action.UPDATE: "Changed",
         LogEntry.Action.DELETE: "Deleted"}
NOT_SHOWN = "(not shown)"


@dataclass
class Change:
    label: str
    old: str
    new: str


@dataclass
class Row:
    entry: LogEntry
    noun: str
    changes: list = field(default_factory=list)


@dataclass
class Group:
    """The entries one request (or one worker's operation) wrote."""

    title: str
    actor: str
    timestamp: object
    rows: list = field(default_factory=list)


def is_hidden(model_field):
    name = model_field.name
    return (not getattr(model_field, "concrete", False) or model_field.many_to_many
            or model_field.primary_key or name in INTERNAL_FIELDS
            or name.endswith(SECRET_SUFFIXES))


def is_named_by_pk(model):
    """Reference types (status, customer type, asset type) are keyed by their name."""
    return not isinstance(model._meta.pk, models.AutoField)


def visible_fields(entry):
    """(model field or None, key, [old, new]) of what a person should see in the entry."""
    model = entry.content_type.model_class()
    for key, values in entry.changes_dict.items():
        try:
            model_field = model._meta.get_field(key) if model else None
        except FieldDoesNotExist:
            model_field = None  # a change written by hand, such as a second factor's reset
        if model_field is not None and is_hidden(model_field):
            continue
        if model_field is None and key.endswith(SECRET_SUFFIXES):
            continue
        yield model_field, key, values


def empty(value):
    return value in (None, "None", "")


def show(model_field, value, names):
    if empty(value):
        return "—"
    value = str(value)
    if model_field is None:
        return value
    if model_field.many_to_one or model_field.one_to_one:
        related = model_field.related_model
        if is_named_by_pk(related):
            return value
        return names.get((related, value), NOT_SHOWN)
    choices = dict((str(k), v) for k, v in model_field.flatchoices)
    if choices:
        return str(choices.get(value, value))
    if isinstance(model_field, models.BooleanField):
        return {"True": "yes", "False": "no"}.get(value, value)
    if isinstance(model_field, models.DateTimeField):
        try:
            moment = date_parser.parse(value)
        except (ValueError, OverflowError):
            return value
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, datetime.UTC)
        return date_format(timezone.localtime(moment), "Y-m-d H:i")
    return value


def resolve_names(entries, lookups):
    """{(model, pk as text): name} for the foreign keys in the entries: one query per
    related model, whatever the number of entries. `lookups` maps a model to the queryset a
    name may come from (the tenant's own objects); ids outside it stay unnamed."""
    wanted = defaultdict(set)
    for entry in entries:
        for model_field, _key, values in visible_fields(entry):
            if model_field is None or not (model_field.many_to_one or model_field.one_to_one):
                continue
            related = model_field.related_model
            if is_named_by_pk(related):
                continue
            wanted[related].update(str(v) for v in values if not empty(v))
    names = {}
    for model, ids in wanted.items():
        queryset = lookups.get(model)
        if queryset is None:
            continue
        pks = [model._meta.pk.to_python(pk) for pk in ids if pk.isdigit()]
        for obj in queryset.filter(pk__in=pks):
            names[(model, str(obj.pk))] = getattr(obj, "name", None) or str(obj)
    return names


def row_for(entry, organization, names):
    model = entry.content_type.model_class()
    if model is Customer and str(entry.object_id) == str(organization.pk):
        noun = "Organization"
    else:
        noun = NOUNS.get(model) or capfirst(entry.content_type.name)
    row = Row(entry=entry, noun=noun)
    if entry.action == LogEntry.Action.DELETE:
        return row
    for model_field, key, (old, new) in visible_fields(entry):
        # A new object: what was set, not the empty and false defaults.
        if entry.action == LogEntry.Action.CREATE and (empty(new) or (
                isinstance(model_field, models.BooleanField) and new == "False")):
            continue
        label = capfirst(str(model_field.verbose_name)) if model_field else capfirst(key)
        row.changes.append(Change(label, show(model_field, old, names),
                                  show(model_field, new, names)))
    return row


def title_of(rows):
    """The request's first change names it: the organization's creation is its sign-up."""
    first = min(rows, key=lambda row: row.entry.pk)
    entry = first.entry
    if entry.action == LogEntry.Action.CREATE and first.noun == "Organization":
        return f"Sign-up of {entry.object_repr}"
    if entry.action == LogEntry.Action.CREATE and first.noun == "User":
        return f"New user {entry.object_repr}"
    title = f"{VERBS.get(entry.action, 'Logged')} {first.noun.lower()} {entry.object_repr}"
    others = len(rows) - 1
    if others:
        title += f" and {others} more change{'s' if others > 1 else ''}"
    return title


def readable(entries, organization, lookups):
    """The entries (newest first) in groups, one per correlation id; an entry without one
    (written outside a request, such as the demo data) is a group of its own."""
    entries = list(entries)
    names = resolve_names(entries, lookups)
    groups = {}
    for entry in entries:
        key = entry.cid or f"entry-{entry.pk}"
        rows = groups.setdefault(key, [])
        rows.append(row_for(entry, organization, names))
    result = []
    for rows in groups.values():
        # Hidden fields only (an older entry): nothing to show.
        rows = [row for row in rows if row.changes or row.entry.action != LogEntry.Action.UPDATE]
        if not rows:
            continue
        newest = rows[0].entry
        actor = newest.actor.get_username() if newest.actor else "the system"
        result.append(Group(title=title_of(rows), actor=actor, timestamp=newest.timestamp,
                            rows=sorted(rows, key=lambda row: row.entry.pk)))
    return result
# API tokens: made and revoked, by whom, for whom. Never the digest.
auditlog.register(ApiToken, include_fields=["user", "name", "prefix", "expires", "revoked"])


def entries_of(organization):
    """The change log of an organization, newest first: its own row and its users', its
    domains, hosting spaces and panel accounts, the logins of those accounts (never a
    reseller's or another tenant's) and their API tokens."""
    User = get_user_model()
    types = ContentType.objects.get_for_models(Customer, CustomerAsset, HostingSpace, Account,
                                               User, ApiToken)
    accounts = Account.objects.filter(customer=organization)
    members = {
        Customer: scoping.organization_customers(organization).values("pk"),
        CustomerAsset: CustomerAsset.objects.filter(customer=organization).values("pk"),
        HostingSpace: HostingSpace.objects.filter(customer=organization).values("pk"),
        Account: accounts.values("pk"),
        User: accounts.values("user_id"),
        ApiToken: ApiToken.objects.filter(user__account__in=accounts).values("pk"),
    }
    query = Q()
    for model, ids in members.items():
        query |= Q(content_type=types[model], object_id__in=ids)
    return LogEntry.objects.filter(query).select_related("actor", "content_type").order_by(
        "-timestamp", "-pk")
