"""One run of an operation (Context), the Action base class and the helpers every action
shares: tenant marks, links to directory GUIDs, compensation, the dry-run directory."""

import threading
import uuid

from django.utils import timezone

from servers.models import ServiceKind

from .. import backends
from ..directory import PermanentDirectoryError, TenantMark, rdn
from ..exchange import PermanentExchangeError
from ..models import Customer

OWNER_MARK = "hosted-panel customer={}"


def owner_mark(customer):
    """The tenant mark's owner part: which customer of this panel an object is for."""
    return OWNER_MARK.format(customer.pk)


class Context:
    """One run of one operation: the customer, the secret (never persisted), the steps."""

    def __init__(self, operation, secret=None):
        self.operation = operation
        self.customer = operation.customer
        self.params = operation.params
        self.secret = secret
        self.steps = [dict(step) for step in operation.steps]
        self.backend_log = []
        self._directory = None
        self._exchange = False  # not looked up yet; None means the plan has no Exchange
        self._services = None
        self._marks = {}
        self.tenant_marks = []
        # Services whose live clients this run used: their last contact, once it succeeds.
        self.contacted = set()

    @property
    def services(self):
        if self._services is None:
            self._services = backends.services_of(self.customer)
        return self._services

    @property
    def directory(self):
        if self._directory is None:
            self._directory = backends.directory_for(self.customer, self.services)
            if backends.is_dry_run():
                prime_dry_run(self._directory, self.customer)
            else:
                self.contacted.add(self.services[ServiceKind.ACTIVE_DIRECTORY].pk)
            self._marks["ldap"] = (self._directory, len(getattr(self._directory, "journal", [])))
        return self._directory

    @property
    def exchange(self):
        if self._exchange is False:
            self._exchange = backends.exchange_for(self.customer, self.services)
            if self._exchange is not None:
                self._marks["exchange"] = (self._exchange,
                                           len(getattr(self._exchange, "journal", [])))
                if not backends.is_dry_run():
                    self.contacted.add(self.services[ServiceKind.EXCHANGE].pk)
        return self._exchange

    def finish(self):
        """Keep what the dry-run clients would have sent, in the operation's record."""
        for backend, (client, mark) in self._marks.items():
            journal = getattr(client, "journal", None)
            if journal is not None:
                self.backend_log += [{"backend": backend, **entry} for entry in journal[mark:]]
                del journal[mark:]
        self._marks = {}

    def done(self, name):
        return next((s for s in self.steps if s["name"] == name and s["state"] == "done"),
                    None)

    def step(self, name, function):
        """Run a step unless an earlier attempt did it; record its result."""
        previous = self.done(name)
        if previous is not None:
            return previous.get("result")
        result = function()
        self.steps = [s for s in self.steps if s["name"] != name]
        self.steps.append({"name": name, "state": "done", "result": result,
                           "at": timezone.now().isoformat()})
        return result

    def mark_for(self, customer):
        """A tenant mark for objects made for the customer by this operation."""
        known = frozenset({str(customer.object_guid)} if customer.object_guid else ())
        mark = TenantMark(owner=owner_mark(customer), operation=str(self.operation.pk),
                          known_guids=known)
        self.tenant_marks.append(mark)
        return mark

    def provision(self, name, customer, function):
        """A step that makes (or adopts) one directory object and records its GUID and
        whether this operation created it. A step done on an earlier attempt is trusted
        only while its object still exists: compensation, or someone outside the panel,
        may have removed it since."""
        previous = self.done(name)
        if previous is not None:
            guid = result_guid(previous.get("result"))
            if guid and self.directory.get_by_guid(guid) is not None:
                return guid
            self.forget(name)
        mark = self.mark_for(customer)
        guid = function(mark)
        self.steps.append({"name": name, "state": "done",
                           "result": {"guid": guid, "created": guid in mark.created},
                           "at": timezone.now().isoformat()})
        return guid

    def created_objects(self):
        """GUIDs this operation created, in the order it created them: those its steps
        recorded, then any a failed step made before it could be recorded."""
        made = [result_guid(s["result"]) for s in self.steps
                if s.get("state") == "done" and isinstance(s.get("result"), dict)
                and s["result"].get("created")]
        for mark in self.tenant_marks:
            made += [guid for guid in mark.created if guid not in made]
        return made

    def forget(self, *prefixes):
        """Drop done steps whose name starts with one of the prefixes, so that the next
        attempt does them again."""
        self.steps = [s for s in self.steps if not (
            s.get("state") == "done" and s["name"].startswith(prefixes))]

    def step_named(self, guid):
        return next((s["name"] for s in self.steps if s.get("state") == "done"
                     and result_guid(s.get("result")) == guid), None)

    def note(self, name, state, detail=""):
        self.steps.append({"name": name, "state": state, "detail": detail,
                           "at": timezone.now().isoformat()})

    def guid(self, customer=None):
        customer = customer or self.customer
        if customer.object_guid is None:
            raise PermanentDirectoryError(
                f"'{customer}' has not been provisioned in the directory yet.")
        return str(customer.object_guid)


def result_guid(result):
    """The GUID a step recorded (a dict now; a bare string in older records)."""
    if isinstance(result, dict):
        return result.get("guid")
    return result if isinstance(result, str) else None


def undo_created(ctx, customer, dependents, before_delete=None):
    """Compensation: delete, newest first, only the objects this operation created
    (never anything found by name), forget the steps that made them and the steps
    that wrote into them, and unlink the customer from a deleted GUID. A retry then
    does all of it again."""
    made = ctx.created_objects()
    try:
        for guid in reversed(made):
            step = ctx.step_named(guid)
            if before_delete is not None:
                before_delete(guid)
            ctx.directory.delete(guid)
            if step is not None:
                ctx.forget(step, *dependents.get(step, ()))
            if str(customer.object_guid or "") == guid:
                Customer.objects.filter(pk=customer.pk).update(object_guid=None)
                customer.object_guid = None
        ctx.note("rollback", "done", f"removed {len(made)} object(s) this operation created"
                 if made else "nothing to remove: this operation created no object")
    except Exception as exc:  # noqa: BLE001 - reported in the journal, never hidden
        ctx.note("rollback", "failed", getattr(exc, "user_message", str(exc)))


def prime_dry_run(directory, customer):
    """The dry-run directory lives in memory: after a restart, put back what the panel has
    already provisioned for this organization, with the GUIDs it recorded, so the next
    operation journals only its own writes. Linear in the organization's users."""
    org = customer.organization
    if org is None or org.object_guid is None:
        return
    if directory.get_by_guid(str(org.object_guid)) is not None:
        return
    mark = {"adminDescription": f"{owner_mark(org)} op=restored"}
    if directory.get_by_dn(directory.root_dn) is None:
        directory.restore(directory.root_dn, ["top", "organizationalUnit"], {},
                          str(uuid.uuid4()))
    org_dn = directory.org_dn(org.name)
    directory.restore(org_dn, ["top", "organizationalUnit"], mark, str(org.object_guid))
    group_dn = directory.org_group_dn(org.name)
    directory.restore(group_dn, ["top", "group"], {**mark, "member": []}, str(uuid.uuid4()))
    users = Customer.objects.filter(parent=org).users().exclude(object_guid=None)
    taken = set()
    for pk, name, upn, guid in users.values_list("pk", "name", "upn", "object_guid"):
        # The CN provisioning gave it: the name, or for a second user of that name the name
        # with its logon name (ProvisionUser.create).
        cn = next(c for c in (name, f"{name} ({upn.split('@', 1)[0]})", f"{name} ({pk})")
                  if c.casefold() not in taken)
        taken.add(cn.casefold())
        directory.restore(
            f"{rdn('CN', cn)},{org_dn}",
            ["top", "person", "organizationalPerson", "user"],
            {"userPrincipalName": upn, "displayName": name, "userAccountControl": 0x200,
             "memberOf": [group_dn],
             "adminDescription": f"{OWNER_MARK.format(pk)} op=restored"},
            str(guid))


def link(customer, guid, entry=None):
    """Store the directory GUID, and refresh the cached UPN and name from what AD holds."""
    fields = {"object_guid": guid}
    if entry is not None and customer.is_user:
        fields["upn"] = entry.get("userPrincipalName") or customer.upn
        fields["name"] = entry.get("displayName") or customer.name
    Customer.objects.filter(pk=customer.pk).update(updated=timezone.now(), **fields)
    for name, value in fields.items():
        setattr(customer, name, value)


def organization_names(org):
    """The Exchange objects of an organization, all named after it and tagged with it."""
    return {"all_users": f"{org.name} - All Users", "rooms": f"{org.name} - Rooms",
            "gal": f"{org.name} - GAL", "oab": f"{org.name} - OAB",
            "abp": f"{org.name} - ABP"}


def record_once(customer, event_type, **data):
    from ..services import record_event

    if not customer.events.filter(event_type_id=event_type).exists():
        record_event(customer, event_type, None, **data)


def apply_mailbox_settings(ctx, identity, settings, prefix=""):
    if settings.mailbox:
        ctx.step(f"{prefix}mailbox_settings",
                 lambda: ctx.exchange.set_mailbox(identity, **settings.mailbox))
    if settings.cas:
        ctx.step(f"{prefix}client_access",
                 lambda: ctx.exchange.set_cas_mailbox(identity, **settings.cas))


class Action:
    def run(self, ctx):
        raise NotImplementedError

    def compensate(self, ctx):
        """Undo what a failed run left half-made. Default: nothing is left half-made."""


# --- Mail contacts (issue #12) ------------------------------------------------------------


def organization_ou(ctx, org):
    """The organization's OU DN, computed from the directory service's settings (nothing
    is sent to the directory)."""
    return backends.directory_for(ctx.customer, ctx.services).org_dn(org.name)


def exchange_of(ctx):
    if ctx.exchange is None:
        raise PermanentExchangeError("The organization's hosting plan has no Exchange "
                                     "service, so it can have no mail contacts.",
                                     kind="no_exchange")
    return ctx.exchange


# The dry-run backend keeps one in-memory directory per process; its journal must not mix
# two operations' writes.
dry_run_lock = threading.RLock()
