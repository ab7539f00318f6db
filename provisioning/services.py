"""The business rules of the panel. Views, admin actions, commands and tasks call these
functions; none of them decides anything on its own."""

from contextlib import contextmanager

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from servicplans.models import HostingPlan, HostingPlanQuota, QuotaName, ServicePlan

from . import constants as c
from . import journal, names, quotas, scoping
from .feed import sequence_after_commit
from .models import (
    Account,
    ContactStatus,
    Customer,
    CustomerAsset,
    Event,
    EventSequence,
    HostingSpace,
    LoginName,
    MailAddress,
    MailContact,
    MailForwarding,
    Role,
)
from .models.customers import domain_in_use, organization_exists
from .names import clean_field, name_key

SUSPENDED_MESSAGE = gettext_lazy("%(org)s is suspended: nothing can be changed until its "
                                 "reseller resumes it. Its data can still be viewed.")


def ensure_writable(organization):
    """The one rule for a suspended organization: every write for it is refused (reads stay
    available). Only its reseller's resume and delete go through."""
    organization = organization.organization or organization
    if organization.status_id == c.DISABLED:
        raise ValidationError(SUSPENDED_MESSAGE % {"org": organization.name},
                              code="suspended")
    if organization.is_deleted:
        raise ValidationError(_("%(org)s is deleted: nothing can be changed.")
                              % {"org": organization.name}, code="deleted")


def record_event(customer, event_type, actor=None, **data):
    return Event.objects.create(customer=customer, event_type_id=event_type,
                                actor=actor if getattr(actor, "pk", None) else None, data=data)


def record_events(customer_ids, event_type, actor=None, **data):
    """record_event for many customers in two statements, each event with its place in the
    billing feed (Event.save does the same one at a time)."""
    events = Event.objects.bulk_create(
        Event(customer_id=pk, event_type_id=event_type, data=data,
              actor=actor if getattr(actor, "pk", None) else None) for pk in customer_ids)
    EventSequence.objects.bulk_create(EventSequence(event=event) for event in events)
    sequence_after_commit()
    return events


@contextmanager
def _unique(field, message):
    """Save under a unique name key: when a concurrent request took the name after the
    check, it is refused with the check's own error on the service's own field — by the
    database's constraint, or by a user model's re-check (provisioning.models.logins) if
    the other request has committed by then."""
    try:
        with transaction.atomic():
            yield
    except (IntegrityError, ValidationError):
        raise ValidationError({field: message}) from None


def _check_domain(domain, errors, field):
    """The domain as stored (provisioning.names.DOMAIN), or None with the error recorded."""
    domain = clean_field(errors, field, names.DOMAIN, domain)
    if domain is not None and CustomerAsset.objects.filter(name_key=name_key(domain)).exists():
        errors[field] = domain_in_use(domain)
    return domain


def sellable_hosting_plans(reseller=None):
    """The hosting plans an organization can be signed up on or moved to: active ones, never
    a reseller plan (one that grants organizations), and under `reseller` only those on the
    virtual servers of its own live hosting spaces. No reseller: the whole catalog."""
    reseller_plans = HostingPlanQuota.objects.filter(
        Q(unlimited=True) | Q(limit__gt=0), quota=QuotaName.ORGANIZATIONS)
    plans = HostingPlan.objects.filter(is_active=True).exclude(
        pk__in=reseller_plans.values("hosting_plan"))
    if reseller is not None:
        own_spaces = HostingSpace.objects.filter(customer_id=reseller.pk).exclude(
            status_id=c.DELETED)
        plans = plans.filter(virtual_server__in=own_spaces.values("hosting_plan__virtual_server"))
    return plans.order_by("name")


def hosting_plans_for(user):
    """The plans `user` may sell: its own reseller's, or the whole catalog for the provider."""
    account = scoping.account_of(user)
    return sellable_hosting_plans(account.customer if account is not None
                                  and account.customer_id else None)


@transaction.atomic
def sign_up_organization(*, reseller, name, primary_domain, admin_username, admin_password,
                         hosting_plan, service_plans=(), admin_email="", actor=None):
    """Sign a business organization up under a reseller: its primary administration
    account, then its hosting space from a hosting plan, then its primary domain.

    All or nothing: any failure raises and leaves no row behind. Every name is cleaned by
    its rule in provisioning.names (stripped, NFC, checked) and stored as cleaned."""
    User = get_user_model()
    errors = {}

    if reseller.customer_type_id != c.RESELLER_ORGANIZATION or reseller.is_deleted:
        errors["reseller"] = _("Organizations can only be signed up under an active reseller.")
    name = clean_field(errors, "name", names.ORGANIZATION_NAME, name)
    if name is not None and Customer.objects.organizations().named(name).exists():
        errors["name"] = organization_exists(name)
    primary_domain = _check_domain(primary_domain, errors, "primary_domain")
    admin_username = clean_field(errors, "admin_username", names.LOGIN, admin_username)
    if admin_username is not None and LoginName.is_taken(admin_username):
        errors["admin_username"] = LoginName.taken_message(admin_username)
    admin_email = clean_field(errors, "admin_email", names.EMAIL, admin_email)
    try:
        password_validation.validate_password(
            admin_password or "", User(username=admin_username or "", email=admin_email or ""))
    except ValidationError as exc:
        errors["admin_password"] = exc.messages
    if not isinstance(hosting_plan, HostingPlan) or not hosting_plan.is_active:
        errors["hosting_plan"] = _("Choose an active hosting plan.")
    elif "reseller" not in errors and not sellable_hosting_plans(reseller).filter(
            pk=hosting_plan.pk).exists():
        errors["hosting_plan"] = _("%(reseller)s does not sell the plan %(plan)s.") % {
            "reseller": reseller.name, "plan": hosting_plan.name}
    service_plans = list(service_plans)
    if any(not isinstance(p, ServicePlan) or not p.is_active for p in service_plans):
        errors["service_plans"] = _("Only active service plans can be made available.")
    if errors:
        raise ValidationError(errors)

    quotas.reserve(reseller, QuotaName.ORGANIZATIONS, field="name")

    organization = Customer(parent=reseller, customer_type_id=c.BUSINESS_ORGANIZATION,
                            name=name)
    # clean() checks the name again; the constraint on name_key (set by save()) settles a race.
    organization.full_clean(exclude=["object_guid", "name_key"])
    with _unique("name", organization_exists(name)):
        organization.save()
    organization.available_service_plans.set(service_plans)

    # 1. The primary administration account.
    admin_user = User(username=admin_username, email=admin_email)
    admin_user.set_password(admin_password)
    with _unique("admin_username", LoginName.taken_message(admin_username)):
        admin_user.save()
    Account.objects.create(user=admin_user, customer=organization, role=Role.PRIMARY_ADMIN)

    # 2. The hosting space from the hosting plan.
    HostingSpace.objects.create(customer=organization, hosting_plan=hosting_plan,
                                name=space_name(organization, hosting_plan))

    # 3. The primary domain, within the new space's domain quota.
    quotas.reserve(organization, QuotaName.DOMAINS, field="primary_domain")
    with _unique("primary_domain", domain_in_use(primary_domain)):
        CustomerAsset.objects.create(customer=organization, asset_type_id=c.PRIMARY_DOMAIN,
                                     name=primary_domain)

    record_event(organization, c.CREATED, actor, name=name, reseller=reseller.name)
    record_event(organization, c.PLAN_SIGNUP, actor, hosting_plan=hosting_plan.name,
                 service_plans=[p.name for p in service_plans])
    record_event(organization, c.ASSET_ADDED, actor, asset_type=c.PRIMARY_DOMAIN,
                 name=primary_domain)
    journal.enqueue(organization, "provision_organization", actor)
    return organization


def space_name(organization, hosting_plan):
    return f"{organization.name} — {hosting_plan.name}"[:HostingSpace._meta.get_field(
        "name").max_length]


# What a suspended or deleted organization still runs: its suspension, its resume and its
# teardown (a deleted organization's failed teardown is retried by the provider).
OWN_STATE_ACTIONS = {"set_organization_enabled", "delete_organization"}


@transaction.atomic
def retry_operation(operation, actor=None, secret=None):
    """A person runs a failed operation again. A suspended organization's operations wait
    for its resume, except those of OWN_STATE_ACTIONS. The organization's row is locked, so a
    suspension committing meanwhile is seen."""
    if operation.action not in OWN_STATE_ACTIONS:
        ensure_writable(_locked(Customer(pk=operation.scope_id)))
    return journal.retry(operation, actor=actor, secret=secret)


@transaction.atomic
def delete_customer(customer, actor=None):
    """Soft delete: the row stays, marked Deleted, with the event recorded."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.is_deleted:
        return customer
    if customer.is_user and customer.organization is not None:
        ensure_writable(customer.organization)
    customer.status_id = c.DELETED
    customer.save(update_fields=["status", "updated"])
    record_event(customer, c.EVENT_DELETED, actor)
    if customer.is_user:
        journal.enqueue(customer, "delete_user", actor)
    elif customer.is_organization:
        # Its users and domains stay as Deleted rows (and nobody of it signs in); the
        # teardown removes what the panel made for it in Exchange and the directory.
        users = Customer.objects.filter(parent=customer).users().live()
        record_events(list(users.values_list("pk", flat=True)), c.EVENT_DELETED, actor)
        users.update(status_id=c.DELETED, updated=timezone.now())
        customer.assets.exclude(status_id=c.DELETED).update(status_id=c.DELETED)
        # Its mail contacts too: the teardown removes them from Exchange.
        customer.mail_contacts.live().update(status=ContactStatus.DELETED,
                                             updated=timezone.now())
        journal.enqueue(customer, "delete_organization", actor)
    return customer


@transaction.atomic
def create_user(organization, *, display_name, local_part, domain, password, service_plan=None,
                given_name="", surname="", actor=None):
    """Create a business user in an organization, within its quotas. Its names are cleaned
    by their rules in provisioning.names and stored as cleaned."""
    ensure_writable(organization)
    errors = {}
    display_name = clean_field(errors, "display_name", names.DISPLAY_NAME, display_name)
    given_name = clean_field(errors, "given_name", names.PERSONAL_NAME, given_name)
    surname = clean_field(errors, "surname", names.PERSONAL_NAME, surname)
    local_part = clean_field(errors, "local_part", names.UPN_LOCAL_PART, local_part)
    domain = clean_field(errors, "domain", names.DOMAIN, domain)
    if domain is not None and not organization.assets.filter(name=domain).exclude(
            status_id=c.DELETED).exists():
        errors["domain"] = _("Choose one of the organization's domains.")
    upn = f"{local_part}@{domain}"
    if "local_part" not in errors and "domain" not in errors and (
            Customer.objects.filter(upn__iexact=upn).exists()
            or MailAddress.objects.filter(address_key=name_key(upn)).exists()):
        errors["local_part"] = logon_name_in_use(upn)
    if service_plan is not None and not organization.available_service_plans.filter(
            pk=service_plan.pk, is_active=True).exists():
        errors["service_plan"] = not_available(service_plan)
    try:
        password_validation.validate_password(password or "")
    except ValidationError as exc:
        errors["password"] = exc.messages
    if errors:
        raise ValidationError(errors)

    wanted = {QuotaName.USERS: (1, "local_part")}
    if service_plan is not None:
        wanted[QuotaName.MAILBOXES] = (1, "service_plan")
        wanted[QuotaName.MAILBOX_DISK_MB] = (quotas.plan_mailbox_mb(service_plan), "service_plan")
    quotas.reserve_many(organization, wanted)
    # Everything full_clean() would check was checked above; the database's unique
    # constraint on the UPN still settles a race between two requests.
    user = Customer(parent=organization, customer_type_id=c.BUSINESS_USER, name=display_name,
                    upn=upn, service_plan=service_plan)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise ValidationError({"local_part": logon_name_in_use(upn)}) from None
    record_event(user, c.CREATED, actor, upn=upn, display_name=display_name)
    if service_plan is not None:
        record_event(user, c.PLAN_SIGNUP, actor, service_plan=service_plan.name)
    journal.enqueue(user, "provision_user", actor, secret=password, given_name=given_name,
                    surname=surname)
    return user


def logon_name_in_use(upn):
    return _("The logon name %(upn)s is already in use.") % {"upn": upn}


def not_available(service_plan):
    return _("'%(plan)s' is not one of the organization's available service plans.") % {
        "plan": service_plan}


def _locked(customer):
    return Customer.objects.select_for_update().get(pk=customer.pk)


@transaction.atomic
def update_user(user, *, display_name, given_name=None, surname=None, actor=None):
    """Rename a user. A first or last name of None is left as the directory holds it (the
    panel keeps no copy); "" clears it."""
    user = _locked(user)
    ensure_writable(user.organization)
    errors = {}
    display_name = clean_field(errors, "display_name", names.DISPLAY_NAME, display_name)
    personal = {field: clean_field(errors, field, names.PERSONAL_NAME, value)
                for field, value in (("given_name", given_name), ("surname", surname))
                if value is not None}
    if errors:
        raise ValidationError(errors)
    user.name = display_name
    user.save(update_fields=["name", "updated"])
    journal.enqueue(user, "rename_user", actor, display_name=display_name, **personal)
    return user


@transaction.atomic
def set_enabled(customer, enabled, actor=None):
    """Disable or enable a user, or suspend/resume a whole organization (all its users)."""
    customer = _locked(customer)
    if customer.is_deleted:
        raise ValidationError(_("A deleted customer cannot be enabled or disabled."))
    if customer.is_user:
        ensure_writable(customer.organization)
    if enabled and customer.is_user and customer.parent.status_id != c.ENABLED:
        raise ValidationError(_("The organization is suspended: resume it before enabling "
                                "one of its users."))
    status = c.ENABLED if enabled else c.DISABLED
    if customer.status_id == status:
        return customer
    customer.status_id = status
    customer.save(update_fields=["status", "updated"])
    if not enabled:
        # The seed has no "Enabled" event type; enabling is in the change log and journal.
        record_event(customer, c.EVENT_DISABLED, actor)
    action = "set_organization_enabled" if customer.is_organization else "set_user_enabled"
    journal.enqueue(customer, action, actor, enabled=enabled)
    return customer


@transaction.atomic
def reset_password(user, password, actor=None):
    if user.organization is not None:
        ensure_writable(user.organization)
    errors = {}
    try:
        password_validation.validate_password(password or "")
    except ValidationError as exc:
        errors["password"] = exc.messages
    if not user.is_user:
        errors["password"] = _("Only users have a directory password.")
    if errors:
        raise ValidationError(errors)
    journal.enqueue(user, "reset_password", actor, secret=password)
    return user


@transaction.atomic
def change_plan(user, service_plan, actor=None):
    """Move a user to another of the organization's available plans, within the quotas."""
    # The lock order of every quota path: the hosting spaces from the top of the tree down
    # (a user never moves, so its organization is known unlocked), then the user's row, so
    # two administrators' changes queue and the second reads the plan the first committed.
    organization = user.organization
    ensure_writable(organization)
    if organization is not None:
        quotas.reserve_many(organization, {})
    user = _locked(user)
    if user.mailbox_disconnected:
        raise ValidationError(_("The mailbox of %(user)s is disconnected: reconnect it "
                                "first.") % {"user": user.upn}, code="disconnected")
    if service_plan is not None and not organization.available_service_plans.filter(
            pk=service_plan.pk, is_active=True).exists():
        raise ValidationError({"service_plan": not_available(service_plan)})
    old = user.service_plan
    if old == service_plan:
        return user
    wanted = {}
    if old is None and service_plan is not None:
        wanted[QuotaName.MAILBOXES] = (1, "service_plan")
    growth = quotas.plan_mailbox_mb(service_plan) - quotas.plan_mailbox_mb(old)
    if growth > 0:
        wanted[QuotaName.MAILBOX_DISK_MB] = (growth, "service_plan")
    if wanted:
        quotas.reserve_many(organization, wanted)
    user.service_plan = service_plan
    user.save(update_fields=["service_plan", "updated"])
    record_event(user, c.PLAN_CHANGE, actor, old=old.name if old else None,
                 new=service_plan.name if service_plan else None)
    journal.enqueue(user, "change_plan", actor, old_plan=old.pk if old else None,
                    new_plan=service_plan.pk if service_plan else None)
    return user


@transaction.atomic
def add_domain(organization, name, asset_type=c.SECONDARY_DOMAIN, actor=None):
    """Add a secondary or vanity domain: a UPN suffix in the directory, an accepted domain
    in Exchange, and an AssetAdded event."""
    ensure_writable(organization)
    errors = {}
    if asset_type not in (c.SECONDARY_DOMAIN, c.VANITY_DOMAIN):
        errors["asset_type"] = _("Only secondary and vanity domains can be added.")
    name = _check_domain(name, errors, "name")
    if errors:
        raise ValidationError(errors)
    quotas.reserve(organization, QuotaName.DOMAINS, field="name")
    with _unique("name", domain_in_use(name)):
        asset = CustomerAsset.objects.create(customer=organization, asset_type_id=asset_type,
                                             name=name)
    record_event(organization, c.ASSET_ADDED, actor, asset_type=asset_type, name=name)
    journal.enqueue(organization, "add_domain", actor, domain=name)
    return asset


def hosting_space_of(customer):
    """The customer's hosting space: its first live one, the one its quotas come from."""
    return customer.hosting_spaces.exclude(status_id=c.DELETED).order_by("pk").first()


@transaction.atomic
def change_hosting_plan(organization, hosting_plan, actor=None):
    """Move an organization's hosting space to another plan its reseller sells: an upgrade
    or a downgrade. A plan whose limits are below what the organization uses is refused,
    naming the first quota that would be exceeded (the space's own overrides stay)."""
    ensure_writable(organization)
    if not organization.is_organization:
        raise ValidationError(_("Only an organization's hosting plan can be changed here."))
    if not isinstance(hosting_plan, HostingPlan) or not sellable_hosting_plans(
            organization.parent).filter(pk=hosting_plan.pk).exists():
        raise ValidationError({"hosting_plan": _("%(reseller)s does not sell the plan "
                                                 "%(plan)s.") % {
            "reseller": organization.parent.name, "plan": hosting_plan}})
    # The lock order of every quota path: the spaces from the top of the tree down.
    space = quotas.reserve_many(organization, {})
    if space is None:
        raise ValidationError(_("%(org)s has no hosting space.") % {"org": organization.name})
    old = space.hosting_plan
    if old.pk == hosting_plan.pk:
        return space
    if hosting_plan.virtual_server_id != old.virtual_server_id:
        # The organization's OU, users and mailboxes live on the old plan's servers.
        raise ValidationError({"hosting_plan": _("The plan %(plan)s runs on other servers "
                                                 "than the organization's.") % {
            "plan": hosting_plan.name}})
    quotas.check_plan(space, hosting_plan, field="hosting_plan")
    space.hosting_plan = hosting_plan
    space.name = space_name(organization, hosting_plan)
    space.save(update_fields=["hosting_plan", "name"])
    record_event(organization, c.PLAN_CHANGE, actor, plan="hosting", old=old.name,
                 new=hosting_plan.name)
    return space


# --- Mail flow: a mailbox's e-mail addresses and its forwarding (issue #12) ---------------

#: Additional addresses one mailbox may have: enough for every alias a person uses, few
#: enough that one form, one row lock and one Set-Mailbox carry them.
MAX_MAIL_ADDRESSES = 30


def address_in_use(address):
    return _("The address %(address)s is already in use.") % {"address": address}


def _mailbox_of(user, connected=True):
    """The user, locked, if it has a mailbox the panel may change (and, unless `connected`
    is False, one that is connected); else a ValidationError."""
    user = _locked(user)
    if not user.is_user or user.organization is None:
        raise ValidationError(_("Only a user of an organization has a mailbox."))
    ensure_writable(user.organization)
    if user.is_deleted:
        raise ValidationError(_("%(user)s is deleted.") % {"user": user.upn})
    if user.service_plan_id is None:
        raise ValidationError(_("%(user)s has no mailbox: give it a service plan first.")
                              % {"user": user.upn})
    if connected and user.mailbox_disconnected:
        raise ValidationError(_("The mailbox of %(user)s is disconnected: reconnect it "
                                "first.") % {"user": user.upn}, code="disconnected")
    return user


@transaction.atomic
def disconnect_mailbox(user, actor=None):
    """Disconnect a user's mailbox: Exchange keeps it, and its data, for its retention
    time; the user keeps its account and plan, and reconnect_mailbox brings it back."""
    user = _mailbox_of(user, connected=False)
    if user.mailbox_disconnected:
        raise ValidationError(_("The mailbox of %(user)s is already disconnected.")
                              % {"user": user.upn}, code="disconnected")
    user.mailbox_disconnected = True
    user.save(update_fields=["mailbox_disconnected", "updated"])
    return journal.enqueue(user, "disconnect_mailbox", actor)


@transaction.atomic
def reconnect_mailbox(user, actor=None):
    """Connect the user's disconnected mailbox again, with its plan's settings, addresses
    and forwarding."""
    user = _mailbox_of(user, connected=False)
    if not user.mailbox_disconnected:
        raise ValidationError(_("The mailbox of %(user)s is connected.") % {"user": user.upn},
                              code="connected")
    user.mailbox_disconnected = False
    user.save(update_fields=["mailbox_disconnected", "updated"])
    return journal.enqueue(user, "reconnect_mailbox", actor)


def _addresses_in_use(addresses, user):
    """Those of `addresses` (cleaned) that a recipient other than `user` has: its logon name
    (every mailbox's first address) or one of its additional addresses."""
    keys = {name_key(a): a for a in addresses}
    taken = set(Customer.objects.annotate(upn_key=Lower("upn")).filter(
        upn_key__in=list(keys)).exclude(pk=user.pk).values_list("upn_key", flat=True))
    taken |= set(MailAddress.objects.filter(address_key__in=list(keys)).exclude(
        customer_id=user.pk).values_list("address_key", flat=True))
    return [address for key, address in keys.items() if key in taken]


def organization_domains(organization):
    """The names of the organization's live domains."""
    return set(organization.assets.exclude(status_id=c.DELETED).values_list("name", flat=True))


def mail_addresses_of(user):
    """(primary address, additional addresses) as the panel holds them."""
    rows = list(user.mail_addresses.all())
    primary = next((row.address for row in rows if row.primary), user.upn)
    return primary, [row.address for row in rows]


@transaction.atomic
def set_email_addresses(user, *, addresses, primary=None, actor=None):
    """Give a user's mailbox exactly these additional SMTP addresses, and `primary` (its logon
    name or one of them; None keeps the current one if it stays) as its primary address.

    Every address is cleaned by provisioning.names.MAILBOX_ADDRESS, must be on one of the
    organization's own live domains and must not be any other recipient's. The journaled
    action sends the complete list to Exchange."""
    user = _mailbox_of(user)
    errors, cleaned = {}, []
    if isinstance(addresses, str) or addresses is None:
        addresses = (addresses or "").split()
    for value in addresses:
        address = clean_field(errors, "addresses", names.MAILBOX_ADDRESS, value)
        if address is None:
            break
        if name_key(address) != name_key(user.upn) and name_key(address) not in {
                name_key(a) for a in cleaned}:
            cleaned.append(address)
    if "addresses" not in errors:
        if len(cleaned) > MAX_MAIL_ADDRESSES:
            errors["addresses"] = _("A mailbox can have at most %(count)s additional "
                                    "addresses.") % {"count": MAX_MAIL_ADDRESSES}
        else:
            domains = organization_domains(user.organization)
            foreign = [a for a in cleaned if a.rsplit("@", 1)[1] not in domains]
            taken = _addresses_in_use(cleaned, user)
            if foreign:
                errors["addresses"] = _(
                    "%(address)s is not on one of the organization's domains (%(domains)s).") % {
                    "address": foreign[0], "domains": ", ".join(sorted(domains))}
            elif taken:
                errors["addresses"] = address_in_use(taken[0])
    current_primary, current = mail_addresses_of(user)
    if primary is None or primary == "":
        primary = current_primary
    primary = clean_field(errors, "primary", names.MAILBOX_ADDRESS, primary)
    if primary is not None and "addresses" not in errors and name_key(primary) not in {
            name_key(a) for a in [user.upn, *cleaned]}:
        errors["primary"] = _("The primary address must be the logon name %(upn)s or one of "
                              "the additional addresses.") % {"upn": user.upn}
    if errors:
        raise ValidationError(errors)
    primary = next(a for a in [user.upn, *cleaned] if name_key(a) == name_key(primary))
    if (name_key(primary), sorted(map(name_key, cleaned))) == (
            name_key(current_primary), sorted(map(name_key, current))):
        return user
    # One row at a time, so that the change log records each address added or removed.
    wanted = {name_key(a): a for a in cleaned}
    with _unique("addresses", address_in_use(", ".join(cleaned))):
        for row in user.mail_addresses.all():
            if row.address_key not in wanted or row.address != wanted[row.address_key]:
                row.delete()
            elif row.primary and row.address_key != name_key(primary):
                row.primary = False
                row.save(update_fields=["primary"])
        kept = {row.address_key: row for row in user.mail_addresses.all()}
        for key, address in wanted.items():
            is_primary = key == name_key(primary)
            row = kept.get(key)
            if row is None:
                MailAddress.objects.create(customer=user, address=address, primary=is_primary)
            elif row.primary != is_primary:
                row.primary = is_primary
                row.save(update_fields=["primary"])
    journal.enqueue(user, "set_email_addresses", actor, primary=primary, addresses=cleaned)
    return user


@transaction.atomic
def set_forwarding(user, *, forward_to="", keep_copy=False, actor=None):
    """Forward a user's mail, or stop forwarding it (`forward_to` empty).

    `forward_to` is an address, cleaned by provisioning.names.MAILBOX_ADDRESS. An address of
    another user of the same organization (its logon name or an additional address)
    forwards to that user's mailbox; an address outside every organization's domains is an
    external address. A recipient or a domain of another organization is refused, as is an
    unknown address on one of the organization's own domains, and the user itself."""
    user = _mailbox_of(user)
    organization = user.organization
    errors = {}
    address = ""
    if forward_to is not None and (not isinstance(forward_to, str) or forward_to.strip()):
        address = clean_field(errors, "forward_to", names.MAILBOX_ADDRESS, forward_to)
    if errors:
        raise ValidationError(errors)
    recipient, external = None, ""
    if address:
        key = name_key(address)
        holder = (Customer.objects.annotate(upn_key=Lower("upn")).filter(upn_key=key).first()
                  or Customer.objects.filter(mail_addresses__address_key=key).first())
        domain = address.rsplit("@", 1)[1]
        if holder is not None and holder.pk == user.pk:
            errors["forward_to"] = _("Mail cannot be forwarded to the mailbox itself.")
        elif holder is not None and holder.parent_id == organization.pk:
            if holder.is_deleted or holder.service_plan_id is None:
                errors["forward_to"] = _("%(address)s has no mailbox to forward to.") % {
                    "address": address}
            recipient = holder
        elif holder is not None or CustomerAsset.objects.filter(
                name_key=name_key(domain)).exclude(customer_id=organization.pk).exists():
            errors["forward_to"] = _("%(address)s belongs to another organization: mail can "
                                     "only be forwarded to this organization's users or to "
                                     "external addresses.") % {"address": address}
        elif domain in organization_domains(organization):
            errors["forward_to"] = _("No user of this organization has the address "
                                     "%(address)s.") % {"address": address}
        else:
            external = address
    if errors:
        raise ValidationError(errors)
    keep_copy = bool(keep_copy and address)
    current = MailForwarding.objects.filter(customer=user).first()
    if current is None and not address:
        return user
    if current is not None and (current.recipient_id, current.address, current.keep_copy) == (
            getattr(recipient, "pk", None), external, keep_copy):
        return user
    if not address:
        current.delete()
    else:
        MailForwarding.objects.update_or_create(customer=user, defaults={
            "recipient": recipient, "address": external, "keep_copy": keep_copy})
    journal.enqueue(user, "set_forwarding", actor, recipient=getattr(recipient, "pk", None),
                    address=external, keep_copy=keep_copy)
    return user
# --- Mail contacts (issue #12) ------------------------------------------------------------


def contact_address_in_use(email):
    return _("The organization already has a contact for %(email)s.") % {"email": email}


def contact_name_in_use(name):
    return _("The organization already has a contact named %(name)s.") % {"name": name}


def _has_exchange(organization):
    from servers.models import ServiceKind

    from .backends import service_for

    service = service_for(organization, ServiceKind.EXCHANGE)
    return service is not None and service.enabled


@transaction.atomic
def create_contact(organization, *, name, email, actor=None):
    """A mail contact of the organization, within its quota `mail_contacts`: provisioned in
    Exchange by the journaled action provision_contact. Its name and address are cleaned by
    their rules in provisioning.names and stored as cleaned; one organization has one live
    contact per address and per name (the database's constraints settle a race)."""
    if not organization.is_organization:
        raise ValidationError(_("Only an organization can have mail contacts."))
    # The lock order of every quota path: the hosting spaces from the top of the tree down,
    # then the organization's row, so a suspension committing meanwhile is seen.
    quotas.reserve_many(organization, {})
    organization = _locked(organization)
    ensure_writable(organization)
    errors = {}
    name = clean_field(errors, "name", names.CONTACT_NAME, name)
    email = clean_field(errors, "email", names.EXTERNAL_EMAIL, email)
    live = organization.mail_contacts.live()
    if email is not None and live.filter(email_key=name_key(email)).exists():
        errors["email"] = contact_address_in_use(email)
    if name is not None and live.filter(name_key=name_key(name)).exists():
        errors["name"] = contact_name_in_use(name)
    if not errors and not _has_exchange(organization):
        errors["name"] = _("The organization's hosting plan has no Exchange service.")
    if errors:
        raise ValidationError(errors)
    quotas.reserve(organization, QuotaName.MAIL_CONTACTS, field="name")
    contact = MailContact(organization=organization, name=name, email=email)
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError:
        if live.filter(email_key=name_key(email)).exists():
            raise ValidationError({"email": contact_address_in_use(email)}) from None
        raise ValidationError({"name": contact_name_in_use(name)}) from None
    journal.enqueue(organization, "provision_contact", actor, contact=contact.pk, name=name,
                    email=email)
    return contact


@transaction.atomic
def delete_contact(contact, actor=None):
    """Delete a mail contact: its row stays, marked Deleted (its place in the quota is free
    at once), and the journaled action delete_contact removes it from Exchange."""
    organization = _locked(Customer(pk=contact.organization_id))
    contact = MailContact.objects.select_for_update().get(pk=contact.pk)
    if contact.is_deleted:
        return contact
    ensure_writable(organization)
    contact.status = ContactStatus.DELETED
    contact.save(update_fields=["status", "updated"])
    journal.enqueue(organization, "delete_contact", actor, contact=contact.pk,
                    name=contact.name, email=contact.email,
                    guid=str(contact.exchange_guid) if contact.exchange_guid else None)
    return contact
