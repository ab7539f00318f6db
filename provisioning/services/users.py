"""An organization's users: create, rename, reset the password, change the service plan."""

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from servicplans.models import QuotaName

from .. import constants as c
from .. import journal, names, quotas
from ..models import (
    Customer,
    MailAddress,
)
from ..names import clean_field, name_key
from .common import _locked, ensure_writable, record_event


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
