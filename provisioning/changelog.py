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
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from servers.models import Server, Service, VirtualServer
from servicplans.models import FeatureType, HostingPlan, PlanFeature, ServicePlan

from . import constants as c
from . import scoping, two_factor
from .models import (
    Account,
    ApiToken,
    Customer,
    CustomerAsset,
    HostingSpace,
    MailAddress,
    MailContact,
    MailForwarding,
)

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
# An organization's mail contacts (issue #12).
auditlog.register(MailContact, exclude_fields=["email_key", "name_key", "created", "updated",
                                               "exchange_guid"])
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

# What each kind of object is called: in the Object column, and within a group's title.
ORGANIZATION = (gettext_lazy("Organization"), pgettext_lazy("in a sentence", "organization"))
NOUNS = {
    Customer: (gettext_lazy("User"), pgettext_lazy("in a sentence", "user")),
    CustomerAsset: (gettext_lazy("Domain"), pgettext_lazy("in a sentence", "domain")),
    HostingSpace: (gettext_lazy("Hosting space"),
                   pgettext_lazy("in a sentence", "hosting space")),
    Account: (gettext_lazy("Panel account"), pgettext_lazy("in a sentence", "panel account")),
    User: (gettext_lazy("Login"), pgettext_lazy("in a sentence", "login")),
    TOTPDevice: (gettext_lazy("Authenticator app"),
                 pgettext_lazy("in a sentence", "authenticator app")),
    StaticDevice: (gettext_lazy("Recovery codes"),
                   pgettext_lazy("in a sentence", "recovery codes")),
    ApiToken: (gettext_lazy("API token"), pgettext_lazy("in a sentence", "API token")),
    # Mail flow (issue #12).
    MailAddress: (gettext_lazy("E-mail address"),
                  pgettext_lazy("in a sentence", "e-mail address")),
    MailForwarding: (gettext_lazy("Forwarding"), pgettext_lazy("in a sentence", "forwarding")),
    MailContact: (gettext_lazy("Mail contact"), pgettext_lazy("in a sentence", "mail contact")),
}
# A group's title: one whole phrase per action, so that a translation orders its words.
TITLES = {
    LogEntry.Action.CREATE: gettext_lazy("Created %(noun)s %(name)s"),
    LogEntry.Action.UPDATE: gettext_lazy("Changed %(noun)s %(name)s"),
    LogEntry.Action.DELETE: gettext_lazy("Deleted %(noun)s %(name)s"),
}
OTHER_TITLE = gettext_lazy("Logged %(noun)s %(name)s")
NOT_SHOWN = gettext_lazy("(not shown)")

# Labels of the fields a change log shows, by field name: the models' own field names are
# not translatable (Django's auth.User's are, and need no entry here).
FIELD_LABELS = {
    "parent": gettext_lazy("Parent"),
    "customer_type": gettext_lazy("Customer type"),
    "name": gettext_lazy("Name"),
    "upn": gettext_lazy("UPN"),
    "status": gettext_lazy("Status"),
    "service_plan": gettext_lazy("Service plan"),
    "mailbox_disconnected": gettext_lazy("Mailbox disconnected"),
    "customer": gettext_lazy("Customer"),
    "asset_type": gettext_lazy("Asset type"),
    "hosting_plan": gettext_lazy("Hosting plan"),
    "role": gettext_lazy("Role"),
    "confirmed": gettext_lazy("Confirmed"),
    "prefix": gettext_lazy("Prefix"),
    "expires": gettext_lazy("Expires"),
    "revoked": gettext_lazy("Revoked"),
    two_factor.CHANGELOG_FIELD: gettext_lazy("Two-factor authentication"),
    # A mail contact's (issue #12).
    "organization": gettext_lazy("Organization"),
    "email": gettext_lazy("E-mail address"),
}
# Values stored by name, shown in the reader's language.
VALUE_LABELS = {
    "status": {c.ENABLED: gettext_lazy("Enabled"), c.DISABLED: gettext_lazy("Disabled"),
               c.DELETED: gettext_lazy("Deleted")},
    "customer_type": {c.RESELLER_ORGANIZATION: gettext_lazy("Reseller"),
                      c.BUSINESS_ORGANIZATION: gettext_lazy("Organization"),
                      c.BUSINESS_USER: gettext_lazy("User"),
                      c.CONSUMER_USER: gettext_lazy("Consumer user")},
    "asset_type": {c.PRIMARY_DOMAIN: gettext_lazy("Primary domain"),
                   c.SECONDARY_DOMAIN: gettext_lazy("Secondary domain"),
                   c.VANITY_DOMAIN: gettext_lazy("Vanity domain")},
    two_factor.CHANGELOG_FIELD: {
        "on": pgettext_lazy("two-factor authentication", "on"),
        "setting up": pgettext_lazy("two-factor authentication", "setting up"),
        "reset by the provider": gettext_lazy("reset by the provider")},
}


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
    noun_in_sentence: str = ""
    is_organization: bool = False


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


def show(model_field, value, names, key=None):
    if empty(value):
        return "—"
    value = str(value)
    labels = VALUE_LABELS.get(key, {})
    if model_field is None:
        return str(labels.get(value, value))
    if model_field.many_to_one or model_field.one_to_one:
        related = model_field.related_model
        if is_named_by_pk(related):
            return str(labels.get(value, value))
        return str(names.get((related, value), NOT_SHOWN))
    choices = dict((str(k), v) for k, v in model_field.flatchoices)
    if choices:
        return str(choices.get(value, value))
    if isinstance(model_field, models.BooleanField):
        return {"True": _("yes"), "False": _("no")}.get(value, value)
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
    is_organization = model is Customer and str(entry.object_id) == str(organization.pk)
    if is_organization:
        noun, in_sentence = ORGANIZATION
    else:
        noun, in_sentence = NOUNS.get(model) or (capfirst(entry.content_type.name),
                                                 entry.content_type.name)
    row = Row(entry=entry, noun=str(noun), noun_in_sentence=str(in_sentence),
              is_organization=is_organization)
    if entry.action == LogEntry.Action.DELETE:
        return row
    for model_field, key, (old, new) in visible_fields(entry):
        # A new object: what was set, not the empty and false defaults.
        if entry.action == LogEntry.Action.CREATE and (empty(new) or (
                isinstance(model_field, models.BooleanField) and new == "False")):
            continue
        label = FIELD_LABELS.get(key) or (
            capfirst(str(model_field.verbose_name)) if model_field else capfirst(key))
        row.changes.append(Change(str(label), show(model_field, old, names, key),
                                  show(model_field, new, names, key)))
    return row


def title_of(rows):
    """The request's first change names it: the organization's creation is its sign-up."""
    first = min(rows, key=lambda row: row.entry.pk)
    entry = first.entry
    model = entry.content_type.model_class()
    if entry.action == LogEntry.Action.CREATE and first.is_organization:
        return _("Sign-up of %(name)s") % {"name": entry.object_repr}
    if entry.action == LogEntry.Action.CREATE and model is Customer:
        return _("New user %(name)s") % {"name": entry.object_repr}
    title = TITLES.get(entry.action, OTHER_TITLE) % {"noun": first.noun_in_sentence,
                                                     "name": entry.object_repr}
    others = len(rows) - 1
    if others:
        title = ngettext("%(title)s and %(count)s more change",
                         "%(title)s and %(count)s more changes", others) % {
            "title": title, "count": others}
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
        actor = newest.actor.get_username() if newest.actor else _("the system")
        result.append(Group(title=title_of(rows), actor=actor, timestamp=newest.timestamp,
                            rows=sorted(rows, key=lambda row: row.entry.pk)))
    return result
# API tokens: made and revoked, by whom, for whom. Never the digest.
auditlog.register(ApiToken, include_fields=["user", "name", "prefix", "expires", "revoked"])
# A mailbox's addresses and forwarding (issue #12): which, for whom, by whom.
auditlog.register(MailAddress, include_fields=["customer", "address", "primary"])
auditlog.register(MailForwarding, include_fields=["customer", "recipient", "address",
                                                  "keep_copy"])


def entries_of(organization):
    """The change log of an organization, newest first: its own row and its users', its
    domains, hosting spaces and panel accounts, the logins of those accounts (never a
    reseller's or another tenant's) and their API tokens."""
    User = get_user_model()
    types = ContentType.objects.get_for_models(Customer, CustomerAsset, HostingSpace, Account,
                                               User, ApiToken, MailAddress, MailForwarding,
                                               MailContact)
    accounts = Account.objects.filter(customer=organization)
    members = {
        Customer: scoping.organization_customers(organization).values("pk"),
        CustomerAsset: CustomerAsset.objects.filter(customer=organization).values("pk"),
        HostingSpace: HostingSpace.objects.filter(customer=organization).values("pk"),
        Account: accounts.values("pk"),
        User: accounts.values("user_id"),
        ApiToken: ApiToken.objects.filter(user__account__in=accounts).values("pk"),
        MailContact: MailContact.objects.filter(organization=organization).values("pk"),
    }
    query = Q()
    for model, ids in members.items():
        query |= Q(content_type=types[model], object_id__in=ids)
    # A mailbox's addresses and forwarding: found by the organization their entries name,
    # so that a removed address is still in the log.
    for model in (MailAddress, MailForwarding):
        query |= Q(content_type=types[model], additional_data__organization=organization.pk)
    return LogEntry.objects.filter(query).select_related("actor", "content_type").order_by(
        "-timestamp", "-pk")
