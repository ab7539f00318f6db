"""The business rules of the panel. Views, admin actions, commands and tasks call these
functions; none of them decides anything on its own."""

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from servicplans.models import HostingPlan, QuotaName, ServicePlan

from . import constants as c
from . import journal, quotas
from .models import Account, Customer, CustomerAsset, Event, HostingSpace, Role
from .models.customers import validate_domain_name


def record_event(customer, event_type, actor=None, **data):
    return Event.objects.create(customer=customer, event_type_id=event_type,
                                actor=actor if getattr(actor, "pk", None) else None, data=data)


def normalize_domain(value):
    return (value or "").strip().lower().rstrip(".")


def _check_name(name, errors, field="name"):
    if not name or not name.strip():
        errors[field] = "Enter a name."
    elif len(name) > 64:
        errors[field] = "The name can be at most 64 characters long."
    elif any(ord(ch) < 32 for ch in name):
        errors[field] = "The name cannot contain control characters."


def _check_domain(domain, errors, field):
    try:
        validate_domain_name(domain)
    except ValidationError as exc:
        errors[field] = exc.messages[0]
        return
    if CustomerAsset.objects.annotate(lname=Lower("name")).filter(lname=domain).exists():
        errors[field] = f"The domain {domain} is already in use."


@transaction.atomic
def sign_up_organization(*, reseller, name, primary_domain, admin_username, admin_password,
                         hosting_plan, service_plans=(), admin_email="", actor=None):
    """Sign a business organization up under a reseller: its primary administration
    account, then its hosting space from a hosting plan, then its primary domain.

    All or nothing: any failure raises and leaves no row behind."""
    User = get_user_model()
    # Names are kept exactly as given (leading and trailing spaces included): the directory
    # stores them escaped, and the panel must show what the directory holds.
    name = name or ""
    primary_domain = normalize_domain(primary_domain)
    admin_username = (admin_username or "").strip()
    errors = {}

    if reseller.customer_type_id != c.RESELLER_ORGANIZATION or reseller.is_deleted:
        errors["reseller"] = "Organizations can only be signed up under an active reseller."
    _check_name(name, errors)
    if "name" not in errors and Customer.objects.organizations().annotate(
            lname=Lower("name")).filter(lname=name.lower()).exists():
        errors["name"] = f"An organization named '{name}' already exists."
    _check_domain(primary_domain, errors, "primary_domain")
    if not admin_username:
        errors["admin_username"] = "Enter a login name for the administrator."
    elif User.objects.filter(username__iexact=admin_username).exists():
        errors["admin_username"] = f"The login '{admin_username}' is already taken."
    try:
        password_validation.validate_password(
            admin_password or "", User(username=admin_username, email=admin_email))
    except ValidationError as exc:
        errors["admin_password"] = exc.messages
    if not isinstance(hosting_plan, HostingPlan) or not hosting_plan.is_active:
        errors["hosting_plan"] = "Choose an active hosting plan."
    service_plans = list(service_plans)
    if any(not isinstance(p, ServicePlan) or not p.is_active for p in service_plans):
        errors["service_plans"] = "Only active service plans can be made available."
    if errors:
        raise ValidationError(errors)

    quotas.reserve(reseller, QuotaName.ORGANIZATIONS, field="name")

    organization = Customer(parent=reseller, customer_type_id=c.BUSINESS_ORGANIZATION,
                            name=name)
    organization.full_clean(exclude=["object_guid"])
    organization.save()
    organization.available_service_plans.set(service_plans)

    # 1. The primary administration account.
    admin_user = User(username=admin_username, email=admin_email)
    admin_user.set_password(admin_password)
    admin_user.save()
    Account.objects.create(user=admin_user, customer=organization, role=Role.PRIMARY_ADMIN)

    # 2. The hosting space from the hosting plan.
    HostingSpace.objects.create(customer=organization, hosting_plan=hosting_plan,
                                name=f"{name} — {hosting_plan.name}")

    # 3. The primary domain, within the new space's domain quota.
    quotas.reserve(organization, QuotaName.DOMAINS, field="primary_domain")
    CustomerAsset.objects.create(customer=organization, asset_type_id=c.PRIMARY_DOMAIN,
                                 name=primary_domain)

    record_event(organization, c.CREATED, actor, name=name, reseller=reseller.name)
    record_event(organization, c.PLAN_SIGNUP, actor, hosting_plan=hosting_plan.name,
                 service_plans=[p.name for p in service_plans])
    record_event(organization, c.ASSET_ADDED, actor, asset_type=c.PRIMARY_DOMAIN,
                 name=primary_domain)
    journal.enqueue(organization, "provision_organization", actor)
    return organization


@transaction.atomic
def delete_customer(customer, actor=None):
    """Soft delete: the row stays, marked Deleted, with the event recorded."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.is_deleted:
        return customer
    customer.status_id = c.DELETED
    customer.save(update_fields=["status", "updated"])
    record_event(customer, c.EVENT_DELETED, actor)
    if customer.is_user:
        journal.enqueue(customer, "delete_user", actor)
    elif customer.is_organization:
        # The rows and directory objects stay; nobody of a deleted organization signs in.
        journal.enqueue(customer, "set_organization_enabled", actor, enabled=False)
    return customer


@transaction.atomic
def create_user(organization, *, display_name, local_part, domain, password, service_plan=None,
                given_name="", surname="", actor=None):
    """Create a business user in an organization, within its quotas."""
    errors = {}
    display_name = display_name or ""
    local_part = (local_part or "").strip()
    domain = normalize_domain(domain)
    _check_name(display_name, errors, "display_name")
    if not local_part or len(local_part) > 64 or any(
            ch in local_part for ch in ' @"(),:;<>[\\]') or local_part.startswith(".") \
            or local_part.endswith(".") or ".." in local_part or not local_part.isascii():
        errors["local_part"] = ("Enter the part before the @: letters, digits and . _ - + ' "
                                "(no spaces).")
    if not organization.assets.filter(name=domain).exclude(status_id=c.DELETED).exists():
        errors["domain"] = "Choose one of the organization's domains."
    upn = f"{local_part}@{domain}"
    if "local_part" not in errors and Customer.objects.filter(upn__iexact=upn).exists():
        errors["local_part"] = f"The logon name {upn} is already in use."
    if service_plan is not None and not organization.available_service_plans.filter(
            pk=service_plan.pk).exists():
        errors["service_plan"] = (f"'{service_plan}' is not one of the organization's "
                                  "available service plans.")
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
        raise ValidationError({"local_part": f"The logon name {upn} is already in use."}) \
            from None
    record_event(user, c.CREATED, actor, upn=upn, display_name=display_name)
    if service_plan is not None:
        record_event(user, c.PLAN_SIGNUP, actor, service_plan=service_plan.name)
    journal.enqueue(user, "provision_user", actor, secret=password, given_name=given_name,
                    surname=surname)
    return user


def _locked(customer):
    return Customer.objects.select_for_update().get(pk=customer.pk)


@transaction.atomic
def update_user(user, *, display_name, given_name="", surname="", actor=None):
    user = _locked(user)
    errors = {}
    display_name = display_name or ""
    _check_name(display_name, errors, "display_name")
    if errors:
        raise ValidationError(errors)
    user.name = display_name
    user.save(update_fields=["name", "updated"])
    journal.enqueue(user, "rename_user", actor, display_name=display_name,
                    given_name=given_name, surname=surname)
    return user


@transaction.atomic
def set_enabled(customer, enabled, actor=None):
    """Disable or enable a user, or suspend/resume a whole organization (all its users)."""
    customer = _locked(customer)
    if customer.is_deleted:
        raise ValidationError("A deleted customer cannot be enabled or disabled.")
    if enabled and customer.is_user and customer.parent.status_id != c.ENABLED:
        raise ValidationError("The organization is suspended: resume it before enabling "
                              "one of its users.")
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
    errors = {}
    try:
        password_validation.validate_password(password or "")
    except ValidationError as exc:
        errors["password"] = exc.messages
    if not user.is_user:
        errors["password"] = "Only users have a directory password."
    if errors:
        raise ValidationError(errors)
    journal.enqueue(user, "reset_password", actor, secret=password)
    return user


@transaction.atomic
def change_plan(user, service_plan, actor=None):
    """Move a user to another of the organization's available plans, within the quotas."""
    user = _locked(user)
    organization = user.organization
    if service_plan is not None and not organization.available_service_plans.filter(
            pk=service_plan.pk).exists():
        raise ValidationError({"service_plan": f"'{service_plan}' is not one of the "
                                               "organization's available service plans."})
    old = user.service_plan
    if old == service_plan:
        return user
    if old is None and service_plan is not None:
        quotas.reserve(organization, QuotaName.MAILBOXES, field="service_plan")
    growth = quotas.plan_mailbox_mb(service_plan) - quotas.plan_mailbox_mb(old)
    if growth > 0:
        quotas.reserve(organization, QuotaName.MAILBOX_DISK_MB, growth, field="service_plan")
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
    name = normalize_domain(name)
    errors = {}
    if asset_type not in (c.SECONDARY_DOMAIN, c.VANITY_DOMAIN):
        errors["asset_type"] = "Only secondary and vanity domains can be added."
    _check_domain(name, errors, "name")
    if errors:
        raise ValidationError(errors)
    quotas.reserve(organization, QuotaName.DOMAINS, field="name")
    asset = CustomerAsset.objects.create(customer=organization, asset_type_id=asset_type,
                                         name=name)
    record_event(organization, c.ASSET_ADDED, actor, asset_type=asset_type, name=name)
    journal.enqueue(organization, "add_domain", actor, domain=name)
    return asset
