"""Compare the panel with the directory by objectGUID.

Reports what the panel knows but the directory lacks (missing), what the panel holds with no
directory object at all and no operation under way to make one (unlinked), what changed
outside the panel (renamed or moved: the cached UPN and name are refreshed), and what sits
under the root OU that the panel does not know (orphans). On request it re-provisions the
missing and the unlinked.
"""

import logging
import secrets as random_secrets
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from servers.models import Service, ServiceKind

from . import backends, journal
from .models import Customer, Operation, OperationState

log = logging.getLogger(__name__)


@dataclass
class Report:
    service: str
    missing: list = field(default_factory=list)      # [Customer]
    unlinked: list = field(default_factory=list)     # [Customer] without a GUID
    changed: list = field(default_factory=list)      # [(Customer, {field: (old, new)})]
    moved: list = field(default_factory=list)        # [(Customer, old dn or None, new dn)]
    orphans: list = field(default_factory=list)      # [directory entry]
    repaired: list = field(default_factory=list)     # [Operation]

    def summary(self):
        return {"service": self.service, "missing": [str(c) for c in self.missing],
                "unlinked": [str(c) for c in self.unlinked],
                "changed": [str(c) for c, _ in self.changed],
                "moved": [str(c) for c, _, _ in self.moved],
                "orphans": [e["dn"] for e in self.orphans],
                "repaired": [o.pk for o in self.repaired]}


def customers_on(service):
    """Live organizations and users whose hosting plan's virtual server uses the service."""
    organizations = Customer.objects.organizations().live().filter(
        hosting_spaces__hosting_plan__virtual_server__services=service).distinct()
    users = Customer.objects.users().live().filter(parent__in=organizations)
    return organizations, users


def reconcile(service, directory, repair=False, actor=None):
    report = Report(service=service.name)
    organizations, users = customers_on(service)
    known = {}
    in_flight = set(Operation.objects.filter(
        state__in=[OperationState.QUEUED, OperationState.RUNNING],
        scope__in=organizations).values_list("customer_id", flat=True))
    for customer in list(organizations) + list(users.select_related("parent")):
        if customer.object_guid is not None:
            known[str(customer.object_guid)] = customer
        elif customer.pk not in in_flight and (customer.is_organization
                                               or customer.parent_id not in in_flight):
            # Never made, or made and rolled back, and nothing under way will make it.
            report.unlinked.append(customer)
    entries = {e["objectGUID"]: e for e in directory.list_under_root()}
    org_groups = {directory.org_group_dn(o.name).lower() for o in organizations}

    for guid, customer in known.items():
        entry = entries.get(guid)
        if entry is None:
            # Moved out from under the root OU, or gone: only a lookup by GUID can tell.
            entry = directory.get_by_guid(guid)
        if entry is None:
            report.missing.append(customer)
            continue
        _compare(customer, entry, directory, report)

    for guid, entry in entries.items():
        if guid in known or entry["dn"].lower() in org_groups:
            continue
        if entry.get("kind") == "ou" and any(
                entry["dn"].lower().endswith(directory.org_dn(o.name).lower())
                for o in organizations):
            continue  # an OU an administrator made inside an organization's own OU
        report.orphans.append(entry)

    if repair:
        # Organizations first: their users' operations wait for them in the journal.
        todo = sorted(report.missing + report.unlinked, key=lambda c: not c.is_organization)
        report.repaired = [_reprovision(customer, actor) for customer in todo]
    return report


def split_dn(dn):
    """[(attribute, value)] with escapes undone, so DNs escaped differently by the panel
    (escape_rdn) and by the server (hex escapes) compare equal."""
    components, attribute, value, index = [], "", [], 0
    in_value = False
    while index < len(dn):
        char = dn[index]
        if not in_value:
            if char == "=":
                in_value = True
            else:
                attribute += char
        elif char == "\\":
            pair = dn[index + 1:index + 3]
            if len(pair) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in pair):
                value.append(bytes.fromhex(pair))
                index += 2
            else:
                value.append(dn[index + 1].encode())
                index += 1
        elif char == ",":
            components.append((attribute.strip().lower(), b"".join(value).decode()))
            attribute, value, in_value = "", [], False
        else:
            value.append(char.encode())
        index += 1
    if attribute:
        components.append((attribute.strip().lower(), b"".join(value).decode()))
    return components


def same_dn(a, b):
    return [(k, v.lower()) for k, v in a] == [(k, v.lower()) for k, v in b]


def _compare(customer, entry, directory, report):
    changes = {}
    if customer.is_user:
        for name, attribute in (("upn", "userPrincipalName"), ("name", "displayName")):
            value = entry.get(attribute) or ""
            if value and value != getattr(customer, name):
                changes[name] = (getattr(customer, name), value)
        expected_parent = directory.org_dn(customer.parent.name)
    else:
        if entry.get("name") and entry["name"] != customer.name:
            changes["ou"] = (customer.name, entry["name"])
        expected_parent = directory.root_dn
    if not same_dn(split_dn(entry["dn"])[1:], split_dn(expected_parent)):
        report.moved.append((customer, expected_parent, entry["dn"]))
    if changes:
        cached = {k: v[1] for k, v in changes.items() if k in ("upn", "name")}
        if cached:
            Customer.objects.filter(pk=customer.pk).update(updated=timezone.now(), **cached)
        report.changed.append((customer, changes))


@transaction.atomic
def _reprovision(customer, actor):
    Customer.objects.filter(pk=customer.pk).update(object_guid=None)
    if customer.is_organization:
        return journal.enqueue(customer, "provision_organization", actor, repair=True)
    # The old password is unknowable: a random one is set and the administrator resets it.
    return journal.enqueue(customer, "provision_user", actor,
                           secret=random_secrets.token_urlsafe(24) + "aA1!", repair=True)


def reconcile_all(repair=False, actor=None):
    reports = []
    for service in Service.objects.filter(kind=ServiceKind.ACTIVE_DIRECTORY, enabled=True):
        try:
            directory = backends.directory_for_service(service)
            reports.append(reconcile(service, directory, repair=repair, actor=actor))
        except Exception:  # noqa: BLE001 - one unreachable directory must not stop the rest
            log.exception("reconciliation with %s failed", service)
    return reports



