"""Peer accounts: delegated panel logins of an organization, each limited by its role.

An account may only create, change or remove accounts whose role ranks below its own
(see `scoping.RANK`): a peer can never touch the primary administrator, and nobody can give a
role at or above their own. Removing an account deactivates its login; the row stays because
events and the change log point at it."""

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from . import names, scoping
from .models import Account, LoginName, Role
from .models.accounts import PEER_ROLES
from .names import clean_field
from .services import ensure_writable


def peers_of(organization):
    """The organization's active panel accounts, the primary administrator first."""
    return (Account.objects.filter(customer=organization, user__is_active=True)
            .select_related("user").order_by("created", "pk"))


def _check_role(role, actor, errors):
    if role not in PEER_ROLES:
        errors["role"] = _("Choose a peer role.")
    elif role not in scoping.assignable_roles(actor):
        errors["role"] = _("You can only give a role below your own.")


def _clean_person(errors, email, first_name, last_name):
    return (clean_field(errors, "email", names.EMAIL, email),
            clean_field(errors, "first_name", names.PERSONAL_NAME, first_name),
            clean_field(errors, "last_name", names.PERSONAL_NAME, last_name))


def _check_can_act_on(account, actor):
    if not scoping.outranks(actor, account):
        raise PermissionDenied(_("You cannot change an account whose role is not below "
                                 "yours."))
    ensure_writable(account.customer)


@transaction.atomic
def create_peer(organization, *, username, password, role, email="", first_name="",
                last_name="", actor):
    """A peer account; its login and names are cleaned by their rules in
    provisioning.names and stored as cleaned."""
    ensure_writable(organization)
    User = get_user_model()
    errors = {}
    username = clean_field(errors, "username", names.LOGIN, username)
    if username is not None and LoginName.is_taken(username):
        errors["username"] = LoginName.taken_message(username)
    email, first_name, last_name = _clean_person(errors, email, first_name, last_name)
    _check_role(role, actor, errors)
    try:
        password_validation.validate_password(password or "", User(username=username or "",
                                                                    email=email or ""))
    except ValidationError as exc:
        errors["password"] = exc.messages
    if errors:
        raise ValidationError(errors)
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        # Another request took the login after the check: its unique key refuses this one.
        raise ValidationError({"username": LoginName.taken_message(username)}) from None
    return Account.objects.create(user=user, customer=organization, role=role)


@transaction.atomic
def update_peer(account, *, role=None, email="", first_name="", last_name="", actor):
    """Change an account's names, e-mail and role. The primary administrator's role is not
    a peer role and never changes here: a reseller editing its e-mail keeps it primary."""
    _check_can_act_on(account, actor)
    errors = {}
    email, first_name, last_name = _clean_person(errors, email, first_name, last_name)
    if account.role == Role.PRIMARY_ADMIN:
        if role not in (None, "", Role.PRIMARY_ADMIN):
            errors["role"] = _("The primary administrator keeps its role; give another "
                               "account a peer role instead.")
        role = Role.PRIMARY_ADMIN
    else:
        _check_role(role, actor, errors)
    if errors:
        raise ValidationError(errors)
    user = account.user
    user.email, user.first_name, user.last_name = email, first_name, last_name
    user.save(update_fields=["email", "first_name", "last_name"])
    if account.role != role:
        account.role = role
        account.save(update_fields=["role"])
    return account


@transaction.atomic
def set_peer_password(account, password, *, actor):
    _check_can_act_on(account, actor)
    try:
        password_validation.validate_password(password or "", account.user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    account.user.set_password(password)
    account.user.save(update_fields=["password"])
    return account


@transaction.atomic
def remove_peer(account, *, actor):
    _check_can_act_on(account, actor)
    if account.role == Role.PRIMARY_ADMIN:
        raise PermissionDenied(_("The primary administrator cannot be removed."))
    account.user.is_active = False
    account.user.save(update_fields=["is_active"])
    return account
