"""Organizations: sign-up, hosting plans, domains, suspension, deletion, and retrying an
operation."""

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from servicplans.models import HostingPlan, HostingPlanQuota, QuotaName, ServicePlan

from .. import constants as c
from .. import journal, names, quotas, scoping
from ..models import (
    Account,
    ContactStatus,
    Customer,
    CustomerAsset,
    HostingSpace,
    LoginName,
    Role,
)
from ..models.customers import domain_in_use, organization_exists
from ..names import clean_field
from .common import _check_domain, _locked, _unique, ensure_writable, record_event, record_events
from .mail import stop_forwarding_to


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
        stop_forwarding_to(customer, actor)
    elif customer.is_organization:
        # Its users and domains stay as Deleted rows (and nobody of it signs in); the
        # teardown removes what the panel made for it in Exchange and the directory.
        users = Customer.objects.filter(parent=customer).users().live()
        record_events(list(users.values_list("pk", flat=True)), c.EVENT_DELETED, actor)
        users.update(status_id=c.DELETED, updated=timezone.now())
        customer.assets.exclude(status_id=c.DELETED).update(status_id=c.DELETED)
        # And its hosting space: a deleted organization holds no quotas (its reseller's
        # count it no more) and its space leaves the lists.
        customer.hosting_spaces.exclude(status_id=c.DELETED).update(status_id=c.DELETED)
        # Its mail contacts too: the teardown removes them from Exchange.
        customer.mail_contacts.live().update(status=ContactStatus.DELETED,
                                             updated=timezone.now())
        journal.enqueue(customer, "delete_organization", actor)
    return customer


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
