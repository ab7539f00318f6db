"""What each journaled operation does, as ordered, idempotent steps.

Like django-orchestra's backends, an action is a small class: its steps run in order, each
is safe to run again ("exists and matches" is success), and a step recorded as done by an
earlier attempt is skipped. An action whose failure would leave a half-made object behind
says how to undo what it did (compensate)."""

import logging
import threading
import uuid

from django.utils import timezone

from servers.models import ServiceKind
from servicplans.features import plan_settings

from . import backends
from . import constants as c
from .directory import ObjectExistsError, PermanentDirectoryError, TenantMark, rdn
from .exchange import PermanentExchangeError
from .models import ContactStatus, Customer, MailContact, MailForwarding

log = logging.getLogger(__name__)


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
    from .services import record_event

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


class ProvisionOrganization(Action):
    """OU under the root OU, its UPN suffixes, its universal security group."""

    def run(self, ctx):
        org = ctx.customer
        directory = ctx.directory
        # The root OU is shared by every organization: never marked, never removed.
        ctx.step("root_ou", directory.ensure_root_ou)
        guid = ctx.provision("org_ou", org, lambda mark: directory.ensure_org_ou(org.name, mark))
        link(org, guid)
        for domain in org.assets.exclude(status_id=c.DELETED).values_list("name", flat=True):
            ctx.step(f"upn_suffix:{domain}", lambda d=domain: directory.add_upn_suffix(org.name, d))
        ctx.provision("group", org, lambda mark: directory.ensure_org_group(org.name, mark))
        if ctx.exchange is not None:
            self.exchange(ctx, org)

    def exchange(self, ctx, org):
        """Accepted domains, then the tenant's address lists, GAL, offline address book
        and address book policy, all scoped by the tag CustomAttribute1=<org>."""
        exchange, names = ctx.exchange, organization_names(org)
        for domain in org.assets.exclude(status_id=c.DELETED).values_list("name", flat=True):
            ctx.step(f"accepted_domain:{domain}",
                     lambda d=domain: bool(exchange.ensure_accepted_domain(d)))
        record_once(org, c.EXCH_SERVICE_ADDED, tenant=org.name)
        ctx.step("address_list", lambda: bool(
            exchange.ensure_address_list(names["all_users"], org.name)))
        ctx.step("room_list", lambda: bool(
            exchange.ensure_address_list(names["rooms"], org.name, "Resources")))
        ctx.step("global_address_list", lambda: bool(
            exchange.ensure_global_address_list(names["gal"], org.name)))
        ctx.step("offline_address_book", lambda: bool(
            exchange.ensure_offline_address_book(names["oab"], [names["gal"]])))
        ctx.step("address_book_policy", lambda: bool(exchange.ensure_address_book_policy(
            names["abp"], global_address_list=names["gal"], offline_address_book=names["oab"],
            room_list=names["rooms"], address_lists=[names["all_users"]])))
        record_once(org, c.ADDRESS_LISTS_CREATED,
                    lists=[names["all_users"], names["rooms"], names["gal"]])

    def compensate(self, ctx):
        # The UPN suffixes live on the OU: gone with it, to be written again.
        undo_created(ctx, ctx.customer, {"org_ou": ("upn_suffix:",)})


class ProvisionUser(Action):
    """The user, created disabled, given its password, enabled, put in the org's group;
    then the plan's directory attributes."""

    def run(self, ctx):
        user = ctx.customer
        guid = ctx.provision("user", user, lambda mark: self.create(ctx, user, mark))
        link(user, guid)
        if user.service_plan is None:
            return
        settings = plan_settings(user.service_plan)
        if settings.directory:
            ctx.step("properties",
                     lambda: ctx.directory.set_attributes(guid, settings.directory))
        if ctx.exchange is not None:
            org = user.organization
            ctx.step("mailbox", lambda: bool(ctx.exchange.enable_mailbox(
                guid, ctx.exchange.settings.default_database or None)))
            # The tenant tag and the address book policy place the mailbox in its
            # organization's lists; the plan decides quota, visibility and protocols.
            settings.mailbox.update(CustomAttribute1=org.name,
                                    AddressBookPolicy=organization_names(org)["abp"])
            apply_mailbox_settings(ctx, guid, settings)

    def create(self, ctx, user, mark):
        """Another worker may take the same logon name or CN a moment earlier: then pick
        the next free one. Anything else taken is the customer's to resolve."""
        if ctx.secret is None:
            raise PermanentDirectoryError("The user's password is missing: retry the "
                                          "operation with a new password.")
        directory = ctx.directory
        local_part = user.upn.split("@", 1)[0]
        cn = user.name
        for _ in range(5):
            sam = directory.make_sam_account_name(local_part)
            try:
                return directory.ensure_user(
                    user.organization.name, sam_account_name=sam, upn=user.upn,
                    display_name=user.name, given_name=ctx.params.get("given_name", ""),
                    surname=ctx.params.get("surname", ""), password=ctx.secret, cn=cn,
                    mark=mark)
            except ObjectExistsError:
                if directory.find_by_upn(user.upn) is not None:
                    raise  # the UPN itself belongs to an object outside this organization
                holder = directory.find_by_sam(sam)
                if holder is not None and holder.get("userPrincipalName") != user.upn:
                    continue
                # Two users may share a display name; their CNs in one OU may not.
                cn = f"{user.name} ({local_part})"
        raise PermanentDirectoryError(f"Could not find a free logon name for {user.upn}.")

    def compensate(self, ctx):
        def disconnect_mailbox(guid):
            # The mailbox of a user this operation made is this operation's too. Exchange
            # may be what failed: the user is removed all the same.
            if ctx.done("mailbox") and ctx.exchange is not None:
                try:
                    ctx.exchange.disable_mailbox(guid)
                except Exception as exc:  # noqa: BLE001 - reported in the journal
                    ctx.note("rollback_mailbox", "failed",
                             getattr(exc, "user_message", str(exc)))

        undo_created(ctx, ctx.customer, {"user": (
            "properties", "mailbox", "mailbox_settings", "client_access")},
            before_delete=disconnect_mailbox)


class RenameUser(Action):
    def run(self, ctx):
        p = ctx.params
        entry = ctx.step("rename", lambda: ctx.directory.rename(
            ctx.guid(), cn=p["display_name"], display_name=p["display_name"],
            # Absent: left as the directory holds it.
            given_name=p.get("given_name"), surname=p.get("surname")))
        link(ctx.customer, ctx.guid(), entry)


class SetUserEnabled(Action):
    def run(self, ctx):
        ctx.step("user_account_control",
                 lambda: ctx.directory.set_enabled(ctx.guid(), ctx.params["enabled"]))


class SetOrganizationEnabled(Action):
    """Suspending an organization disables every one of its users in the directory;
    resuming enables those that are not disabled on their own."""

    def run(self, ctx):
        enabled = ctx.params["enabled"]
        users = Customer.objects.filter(parent=ctx.customer).users().live().exclude(
            object_guid=None)
        if enabled:
            users = users.filter(status_id=c.ENABLED)
        for guid in users.values_list("object_guid", flat=True):
            ctx.step(f"user:{guid}", lambda g=guid: ctx.directory.set_enabled(str(g), enabled))


class ResetPassword(Action):
    def run(self, ctx):
        if ctx.secret is None:
            raise PermanentDirectoryError("The new password is missing.")
        ctx.step("password", lambda: ctx.directory.set_password(ctx.guid(), ctx.secret))


class DeleteUser(Action):
    """Soft delete: the account is disabled in the directory, and its data is kept."""

    def run(self, ctx):
        if ctx.customer.object_guid is None:
            ctx.note("user_account_control", "skipped", "never provisioned")
            return
        ctx.step("user_account_control", lambda: ctx.directory.set_enabled(ctx.guid(), False))
        if ctx.exchange is not None and ctx.customer.service_plan_id is not None:
            # Disable-Mailbox disconnects: Exchange keeps the data for its retention time.
            ctx.step("mailbox_disconnected", lambda: ctx.exchange.disable_mailbox(ctx.guid()))


class ChangePlan(Action):
    """Applies only what differs between the old plan and the new one."""

    def run(self, ctx):
        from servicplans.models import ServicePlan

        plans = ServicePlan.objects.in_bulk(
            [p for p in (ctx.params.get("old_plan"), ctx.params.get("new_plan")) if p])
        old = plan_settings(plans.get(ctx.params.get("old_plan")))
        new = plan_settings(plans.get(ctx.params.get("new_plan")))
        changed = new.diff(old)
        if changed.directory:
            ctx.step("properties",
                     lambda: ctx.directory.set_attributes(ctx.guid(), changed.directory))
        if ctx.exchange is not None and (changed.mailbox or changed.cas):
            apply_mailbox_settings(ctx, ctx.guid(), changed)


class AddDomain(Action):
    def run(self, ctx):
        org = ctx.customer
        domain = ctx.params["domain"]
        ctx.step(f"upn_suffix:{domain}", lambda: ctx.directory.add_upn_suffix(org.name, domain))
        if ctx.exchange is not None:
            ctx.step(f"accepted_domain:{domain}",
                     lambda: bool(ctx.exchange.ensure_accepted_domain(domain)))


class DeleteOrganization(Action):
    """The organization's teardown, in the order Exchange requires (SolidCP's
    DeleteOrganization keeps it too): the mailboxes, its mail contacts, then the address
    book policy that
    names the lists, the offline address book, the address lists and the GAL, then the
    accepted domains; then in the directory what its OU holds, deepest first, and the OU
    (its UPN suffixes go with it). The customer rows stay, marked Deleted.

    Only what the panel made for this organization goes: an Exchange object of the same
    name that is not the organization's, or a directory object in its OU that carries no
    mark of it or of its users, stops the teardown and is named; once someone moves it
    away, a retry goes on from the step it stopped at."""

    def run(self, ctx):
        org = ctx.customer
        users = list(Customer.objects.filter(parent=org).users().exclude(object_guid=None)
                     .values_list("object_guid", flat=True))
        if ctx.exchange is not None:
            self.exchange(ctx, org, [str(guid) for guid in users])
        if org.object_guid is None:
            ctx.note("org_ou", "skipped", "never provisioned")
            return
        directory, org_guid = ctx.directory, str(org.object_guid)
        owners = {owner_mark(org)} | {
            owner_mark(Customer(pk=pk)) for pk in
            Customer.objects.filter(parent=org).values_list("pk", flat=True)}
        recorded = {str(guid) for guid in users}
        # A mail contact's Exchange GUID is its directory objectGUID (issue #12).
        recorded |= {str(guid) for guid in MailContact.objects.filter(organization=org)
                     .exclude(exchange_guid=None).values_list("exchange_guid", flat=True)}
        inside = directory.list_under(org_guid)
        foreign = [e["dn"] for e in inside if e["objectGUID"] not in recorded
                   and TenantMark.owner_of(e) not in owners]
        if foreign:
            raise PermanentDirectoryError(
                "The organization's OU holds objects the panel did not make for it; move or "
                "remove them, then retry: " + "; ".join(sorted(foreign)[:10]))
        # Deepest first: an OU goes after what it holds.
        for entry in sorted(inside, key=lambda e: -e["dn"].count(",")):
            ctx.step(f"removed:{entry['objectGUID']}",
                     lambda g=entry["objectGUID"]: directory.delete(g) or True)
        ctx.step("org_ou", lambda: directory.delete(org_guid) or True)

    def exchange(self, ctx, org, users):
        exchange, names = ctx.exchange, organization_names(org)
        for guid in users:
            # Disconnected, as Disable-Mailbox leaves it: Exchange keeps the data for its
            # retention time, and the user's deletion below removes the account.
            ctx.step(f"mailbox_disconnected:{guid}", lambda g=guid: exchange.disable_mailbox(g))
        remove_contacts(ctx, org)
        ctx.step("address_book_policy_removed", lambda: exchange.remove_address_book_policy(
            names["abp"], global_address_list=names["gal"], offline_address_book=names["oab"],
            room_list=names["rooms"], address_lists=[names["all_users"]]))
        ctx.step("offline_address_book_removed",
                 lambda: exchange.remove_offline_address_book(names["oab"], [names["gal"]]))
        ctx.step("address_list_removed",
                 lambda: exchange.remove_address_list(names["all_users"], org.name))
        ctx.step("room_list_removed",
                 lambda: exchange.remove_address_list(names["rooms"], org.name, "Resources"))
        ctx.step("global_address_list_removed",
                 lambda: exchange.remove_global_address_list(names["gal"], org.name))
        for domain in org.assets.values_list("name", flat=True):
            ctx.step(f"accepted_domain_removed:{domain}",
                     lambda d=domain: exchange.remove_accepted_domain(d))


# --- Mail flow: a mailbox's e-mail addresses and its forwarding (issue #12) ---------------


def _mailbox_identity(ctx):
    """The user's directory GUID, once its mailbox can be changed; None (noted) when the
    plan has no Exchange."""
    if ctx.exchange is None:
        ctx.note("mailbox", "skipped", "the organization's plan has no Exchange service")
        return None
    return ctx.guid()


class SetEmailAddresses(Action):
    """Sends the mailbox's complete list of SMTP addresses as the panel holds it now (the
    primary one, the logon name, the additional ones), so a retry, or an older operation
    run after a newer one, never brings back an address that was removed."""

    def run(self, ctx):
        from .services import mail_addresses_of

        identity = _mailbox_identity(ctx)
        if identity is None:
            return
        user = ctx.customer
        primary, additional = mail_addresses_of(user)
        ctx.step("email_addresses", lambda: ctx.exchange.set_email_addresses(
            identity, primary, [user.upn, *additional]))


class SetForwarding(Action):
    """Sends the mailbox's forwarding as the panel holds it now: to another mailbox of the
    organization (its GUID), to an external address, or none; both Exchange parameters are
    always set, so the mailbox ends with exactly this forwarding."""

    def run(self, ctx):
        identity = _mailbox_identity(ctx)
        if identity is None:
            return
        forwarding = MailForwarding.objects.filter(customer=ctx.customer).select_related(
            "recipient").first()
        recipient = smtp_address = None
        keep_copy = False
        if forwarding is not None:
            keep_copy = forwarding.keep_copy
            if forwarding.recipient_id:
                recipient = self.recipient_guid(ctx, forwarding.recipient)
            else:
                smtp_address = forwarding.address
        ctx.step("forwarding", lambda: ctx.exchange.set_forwarding(
            identity, recipient=recipient, smtp_address=smtp_address, keep_copy=keep_copy))

    @staticmethod
    def recipient_guid(ctx, recipient):
        if recipient.parent_id != ctx.customer.parent_id:
            raise PermanentDirectoryError("Mail can only be forwarded within the organization.")
        return ctx.guid(recipient)
# --- Mail contacts (issue #12) ------------------------------------------------------------


def organization_ou(ctx, org):
    """The organization's OU DN, computed from the directory service's settings (nothing
    is sent to the directory)."""
    return backends.directory_for(ctx.customer, ctx.services).org_dn(org.name)


def contact_identity(ctx, org, name, guid=None):
    """How Exchange finds the contact: its GUID once known, else its DN in the
    organization's OU (a name is unique only within an OU)."""
    return str(guid) if guid else f"{rdn('CN', name)},{organization_ou(ctx, org)}"


def exchange_of(ctx):
    if ctx.exchange is None:
        raise PermanentExchangeError("The organization's hosting plan has no Exchange "
                                     "service, so it can have no mail contacts.",
                                     kind="no_exchange")
    return ctx.exchange


class ProvisionContact(Action):
    """New-MailContact in the organization's OU (or adopt the organization's own), then
    Set-MailContact -CustomAttribute1 <organization>, which puts it in the organization's
    address lists (they filter on ConditionalCustomAttribute1)."""

    def run(self, ctx):
        org = ctx.customer
        contact = MailContact.objects.filter(pk=ctx.params["contact"],
                                             organization=org).first()
        if contact is None or contact.is_deleted:
            ctx.note("mail_contact", "skipped", "deleted before it was made")
            return
        exchange = exchange_of(ctx)

        def create():
            found, created = exchange.ensure_mail_contact(
                contact.name, contact.email, organizational_unit=organization_ou(ctx, org),
                identity=contact_identity(ctx, org, contact.name), tenant=org.name)
            return {"guid": found.get("Guid") or None, "created": created}

        made = ctx.step("mail_contact", create)
        identity = contact_identity(ctx, org, contact.name, made.get("guid"))
        ctx.step("tenant_tag", lambda: exchange.tag_mail_contact(identity, org.name) or True)
        MailContact.objects.filter(pk=contact.pk).exclude(status=ContactStatus.DELETED).update(
            exchange_guid=made.get("guid"), status=ContactStatus.ACTIVE,
            updated=timezone.now())

    def compensate(self, ctx):
        """Remove the contact only if this operation made it; the row is marked Failed
        (a retry makes it again)."""
        made = (ctx.done("mail_contact") or {}).get("result") or {}
        try:
            if made.get("created") and ctx.exchange is not None:
                org = ctx.customer
                contact = MailContact.objects.get(pk=ctx.params["contact"])
                ctx.exchange.remove_mail_contact(
                    contact_identity(ctx, org, contact.name, made.get("guid")), contact.email,
                    org.name)
                ctx.forget("mail_contact", "tenant_tag")
                ctx.note("rollback", "done", "removed the mail contact this operation made")
            else:
                ctx.note("rollback", "done", "nothing to remove: this operation made no "
                         "mail contact")
        except Exception as exc:  # noqa: BLE001 - reported in the journal, never hidden
            ctx.note("rollback", "failed", getattr(exc, "user_message", str(exc)))
        MailContact.objects.filter(pk=ctx.params["contact"]).exclude(
            status=ContactStatus.DELETED).update(status=ContactStatus.FAILED,
                                                 updated=timezone.now())


class DeleteContact(Action):
    """Remove-MailContact; a contact already gone is success. The parameters carry what
    the row held when it was deleted (name, address, GUID)."""

    def run(self, ctx):
        p, org = ctx.params, ctx.customer
        if ctx.exchange is None:
            ctx.note("mail_contact_removed", "skipped", "no Exchange service")
            return
        identity = contact_identity(ctx, org, p["name"], p.get("guid"))
        ctx.step("mail_contact_removed",
                 lambda: ctx.exchange.remove_mail_contact(identity, p["email"], org.name))


def remove_contacts(ctx, org):
    """The teardown's contacts: every one the organization has had (a deleted one whose
    removal failed too); one already gone is success."""
    contacts = MailContact.objects.filter(organization=org).order_by("pk").values_list(
        "pk", "name", "email", "exchange_guid")
    for pk, name, email, guid in contacts:
        ctx.step(f"mail_contact_removed:{pk}", lambda n=name, e=email, g=guid:
                 ctx.exchange.remove_mail_contact(contact_identity(ctx, org, n, g), e,
                                                  org.name))


# --- Disconnect and reconnect a user's mailbox (issue #12) ---------------------------------


class DisconnectMailbox(Action):
    """Disable-Mailbox: Exchange keeps the mailbox, disconnected, for its retention time.
    What finds it again (its ExchangeGuid and database) is recorded first, in its own
    step, so a retry after a lost reply still knows it."""

    def run(self, ctx):
        if ctx.exchange is None:
            ctx.note("mailbox_disconnected", "skipped", "no Exchange service")
            return
        guid = ctx.guid()
        ctx.step("mailbox_identity", lambda: ctx.exchange.mailbox_identity(guid))
        ctx.step("mailbox_disconnected", lambda: ctx.exchange.disable_mailbox(guid))


def disconnected_identity(user):
    """The mailbox identity the user's last disconnection recorded, or None."""
    from .models import Operation

    for steps in Operation.objects.filter(
            customer=user, action="disconnect_mailbox", state="succeeded").order_by(
            "-pk").values_list("steps", flat=True)[:1]:
        for step in steps:
            if step.get("name") == "mailbox_identity" and step.get("state") == "done":
                return step.get("result")
    return None


class ReconnectMailbox(Action):
    """Connect-Mailbox: the disconnected mailbox back on its user, then what the plan and
    the panel set on it (Exchange cleared them on disconnection): quotas, protocols, the
    tenant tag and address book policy, addresses and forwarding. A user whose disconnection
    found no mailbox gets a new one, as its plan says."""

    def run(self, ctx):
        if ctx.exchange is None:
            ctx.note("mailbox_connected", "skipped", "no Exchange service")
            return
        user, guid = ctx.customer, ctx.guid()
        identity = disconnected_identity(user)
        if identity is not None:
            ctx.step("mailbox_connected", lambda: bool(ctx.exchange.connect_mailbox(
                identity["ExchangeGuid"], identity["Database"], guid)))
        else:
            ctx.step("mailbox", lambda: bool(ctx.exchange.enable_mailbox(
                guid, ctx.exchange.settings.default_database or None)))
        settings = plan_settings(user.service_plan)
        org = user.organization
        settings.mailbox.update(CustomAttribute1=org.name,
                                AddressBookPolicy=organization_names(org)["abp"])
        apply_mailbox_settings(ctx, guid, settings)
        if user.mail_addresses.exists():
            SetEmailAddresses().run(ctx)
        if MailForwarding.objects.filter(customer=user).exists():
            SetForwarding().run(ctx)


ACTIONS = {
    "provision_organization": ProvisionOrganization(),
    "provision_user": ProvisionUser(),
    "rename_user": RenameUser(),
    "set_user_enabled": SetUserEnabled(),
    "set_organization_enabled": SetOrganizationEnabled(),
    "reset_password": ResetPassword(),
    "delete_user": DeleteUser(),
    "change_plan": ChangePlan(),
    "add_domain": AddDomain(),
    "delete_organization": DeleteOrganization(),
    "disconnect_mailbox": DisconnectMailbox(),
    "reconnect_mailbox": ReconnectMailbox(),
    # Mail flow (issue #12).
    "set_email_addresses": SetEmailAddresses(),
    "set_forwarding": SetForwarding(),
    "provision_contact": ProvisionContact(),
    "delete_contact": DeleteContact(),
}

# The dry-run backend keeps one in-memory directory per process; its journal must not mix
# two operations' writes.
dry_run_lock = threading.RLock()
