"""The one tenant-scoping mechanism: who may see which customers, and which role may do what.

Every panel view narrows its querysets with `restrict` and checks actions with `require`.
A customer outside the signed-in account's subtree does not exist for it (404); an action its
role does not allow is refused (403)."""

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from . import constants as c
from .models import Account, Customer, Role

# Lower rank = more power. An account may only act on accounts of a strictly higher rank, so a
# peer can never touch the primary administrator and a full-admin peer not another one.
RANK = {
    Role.PROVIDER_STAFF: 0,
    Role.RESELLER_ADMIN: 1,
    Role.PRIMARY_ADMIN: 2,
    Role.PEER_FULL_ADMIN: 3,
    Role.PEER_USER_MANAGER: 4,
    Role.PEER_HELPDESK: 5,
    Role.PEER_READ_ONLY: 6,
}

_ABOVE_ORGANIZATION = {Role.PROVIDER_STAFF, Role.RESELLER_ADMIN}
_ORGANIZATION_ADMINS = _ABOVE_ORGANIZATION | {Role.PRIMARY_ADMIN, Role.PEER_FULL_ADMIN}
_USER_MANAGERS = _ORGANIZATION_ADMINS | {Role.PEER_USER_MANAGER}
_HELPDESK = _USER_MANAGERS | {Role.PEER_HELPDESK}
_EVERYONE = set(Role)

PERMISSIONS = {
    "organization.view": _EVERYONE,
    "organization.sign_up": _ABOVE_ORGANIZATION,
    "organization.suspend": _ABOVE_ORGANIZATION,
    "reseller.view": _ABOVE_ORGANIZATION,
    "user.view": _EVERYONE,
    "user.create": _USER_MANAGERS,
    "user.import": _USER_MANAGERS,
    "user.edit": _USER_MANAGERS,
    "user.change_plan": _USER_MANAGERS,
    "user.delete": _USER_MANAGERS,
    "user.reset_password": _HELPDESK,
    "user.set_enabled": _HELPDESK,
    "domain.view": _EVERYONE,
    "domain.add": _ORGANIZATION_ADMINS,
    "peer.view": _ORGANIZATION_ADMINS,
    "peer.manage": _ORGANIZATION_ADMINS,
    "event.view": _EVERYONE,
    "operation.view": _EVERYONE,
    "operation.retry": _USER_MANAGERS,
    "changelog.view": _ORGANIZATION_ADMINS,
}


def account_of(user):
    """The signed-in user's Account; a superuser without one counts as provider staff."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    try:
        return user.account
    except Account.DoesNotExist:
        if user.is_superuser:
            return Account(user=user, role=Role.PROVIDER_STAFF)
        return None


def role_of(user):
    account = account_of(user)
    return Role(account.role) if account else None


def can(user, permission):
    if permission not in PERMISSIONS:
        raise KeyError(f"Unknown permission {permission!r}")
    role = role_of(user)
    return role is not None and role in PERMISSIONS[permission]


def require(user, permission):
    if not can(user, permission):
        raise PermissionDenied(f"Your role does not allow {permission}.")


def outranks(user, account):
    """Whether `user` may act on the panel account `account` (never on itself or above)."""
    actor = account_of(user)
    if actor is None or account.user_id == user.pk:
        return False
    return RANK[Role(actor.role)] < RANK[Role(account.role)]


def assignable_roles(user):
    """The peer roles `user` may give: only those strictly below its own."""
    role = role_of(user)
    if role is None:
        return []
    from .models.accounts import PEER_ROLES

    return [r for r in Role if r in PEER_ROLES and RANK[r] > RANK[role]]


def _customer_q(user, prefix=""):
    account = account_of(user)
    if account is None:
        return Q(pk__in=[])
    if account.role == Role.PROVIDER_STAFF:
        return Q()
    root = account.customer
    if root is None or root.is_deleted:
        return Q(pk__in=[])
    if account.role == Role.RESELLER_ADMIN:
        return Q(**{f"{prefix}tree_id": root.tree_id, f"{prefix}lft__gte": root.lft,
                    f"{prefix}rght__lte": root.rght})
    # An organization's accounts see the organization and its users: parent_id is indexed
    # and does not depend on the tree's nested-set numbers.
    return Q(**{f"{prefix}pk": root.pk}) | Q(**{f"{prefix}parent_id": root.pk})


def visible_customers(user):
    return Customer.objects.filter(_customer_q(user))


def restrict(queryset, user):
    """Narrow a queryset of customers, or of anything with a `customer`, to the user's scope."""
    prefix = "" if queryset.model is Customer else "customer__"
    return queryset.filter(_customer_q(user, prefix))


def organizations(user):
    return visible_customers(user).organizations().exclude(status_id=c.DELETED)


def get_organization_or_404(user, pk):
    try:
        return organizations(user).get(pk=pk)
    except (Customer.DoesNotExist, ValueError, TypeError):
        raise Http404("No such organization.") from None


def home_organization(user):
    """The organization an organization-level account administers, if any."""
    account = account_of(user)
    if account is None or account.role in _ABOVE_ORGANIZATION:
        return None
    return account.customer
