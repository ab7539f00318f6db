"""The one tenant-scoping mechanism: who may see which customers, and which role may do what.

Every panel view narrows its querysets with `restrict` and checks actions with `require`.
A customer outside the signed-in account's subtree does not exist for it (404); an action its
role does not allow is refused (403)."""

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

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
    "organization.change_plan": _ABOVE_ORGANIZATION,
    "organization.delete": _ABOVE_ORGANIZATION,
    "reseller.view": _ABOVE_ORGANIZATION,
    "user.view": _EVERYONE,
    "user.create": _USER_MANAGERS,
    "user.import": _USER_MANAGERS,
    "user.edit": _USER_MANAGERS,
    "user.change_plan": _USER_MANAGERS,
    "user.delete": _USER_MANAGERS,
    "user.reset_password": _HELPDESK,
    "user.set_enabled": _HELPDESK,
    # Mail contacts (issue #12): as users.
    "contact.view": _EVERYONE,
    "contact.create": _USER_MANAGERS,
    "contact.delete": _USER_MANAGERS,
    "domain.view": _EVERYONE,
    "domain.add": _ORGANIZATION_ADMINS,
    "peer.view": _ORGANIZATION_ADMINS,
    "peer.manage": _ORGANIZATION_ADMINS,
    "event.view": _EVERYONE,
    "operation.view": _EVERYONE,
    "operation.retry": _USER_MANAGERS,
    "changelog.view": _ORGANIZATION_ADMINS,
    # One's own API tokens (provisioning.tokens); a token acts with its login's role.
    "token.manage": _EVERYONE,
}


def account_of(user):
    """The signed-in user's Account; a superuser without one counts as provider staff.

    Read once per user object (so once per request), in one query with the customer it
    administers (the root of its scope) and whether its login has a confirmed authenticator
    (`two_factor_enrolled`, which provisioning.two_factor.step_due uses)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    descriptor = user.__class__.account.related  # __class__: request.user is a lazy object
    if not descriptor.is_cached(user):
        enrolled = TOTPDevice.objects.filter(user=OuterRef("user_id"), confirmed=True)
        account = (Account.objects.select_related("customer")
                   .annotate(two_factor_enrolled=Exists(enrolled))
                   .filter(user_id=user.pk).first())
        if account is not None:
            account.user = user
        descriptor.set_cached_value(user, account)
    account = descriptor.get_cached_value(user)
    if account is None and user.is_superuser:
        return Account(user=user, role=Role.PROVIDER_STAFF)
    return account


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
        raise PermissionDenied(_("Your role does not allow %(permission)s.")
                               % {"permission": permission})


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


_NOTHING = Q(pk__in=[])


def _root(user):
    """(role, the customer the account administers) — (None, None) for no scope at all."""
    account = account_of(user)
    if account is None:
        return None, None
    if account.role == Role.PROVIDER_STAFF:
        return Role.PROVIDER_STAFF, None
    root = account.customer
    if root is None or root.is_deleted:
        return None, None
    return Role(account.role), root


def _resellers_below(root):
    """The reseller and the resellers nested under it (with any consumer users): its own
    nested-set subtree, in the resellers' tree."""
    return Customer.objects.filter(tree_id=root.tree_id, lft__gte=root.lft,
                                   rght__lte=root.rght)


def _organizations_below(root):
    return Customer.objects.filter(parent_id__in=_resellers_below(root).values("pk"),
                                   customer_type_id=c.BUSINESS_ORGANIZATION)


def organization_customers(organization):
    """The organization and its users: its own nested-set tree (an indexed tree_id)."""
    return Customer.objects.filter(tree_id=organization.tree_id)


def organization_events(organization):
    """The events of the organization and its users, newest first: one range of the
    events' (scope, occurred_at, id) index, whatever the size of the database."""
    from .models import Event

    return Event.objects.filter(scope=organization)


def subtree_q(reseller, prefix=""):
    """Everything under a reseller: its resellers' subtree, and the tree of each of their
    organizations (the organization and its users); every condition on an indexed column.
    `prefix` reaches the customer through a relation ("customer__")."""
    return Q(**{f"{prefix}tree_id": reseller.tree_id, f"{prefix}lft__gte": reseller.lft,
                f"{prefix}rght__lte": reseller.rght}) | Q(
        **{f"{prefix}tree_id__in": _organizations_below(reseller).values("tree_id")})


def _customer_q(user):
    role, root = _root(user)
    if role is None:
        return _NOTHING
    if role == Role.PROVIDER_STAFF:
        return Q()
    if role == Role.RESELLER_ADMIN:
        return subtree_q(root)
    # An organization's accounts see the organization's tree: itself and its users.
    return Q(tree_id=root.tree_id)


def visible_customers(user):
    return Customer.objects.filter(_customer_q(user))


def restrict(queryset, user):
    """Narrow a queryset of customers, or of anything with a `customer`, to the user's scope.

    Anything else is narrowed by `customer_id IN (the visible customers)`, which the
    database resolves from the customers' indexes before it reads the other table, instead
    of joining every row of it with its customer first."""
    query = _customer_q(user)
    if queryset.model is Customer:
        return queryset.filter(query)
    if getattr(queryset.model, "SCOPED_BY_ORGANIZATION", False):
        # Events carry their organization (or reseller): the scope's own index.
        role, root = _root(user)
        if role == Role.RESELLER_ADMIN:
            # The ids as values (one query): PostgreSQL then knows how many events they
            # hold and reads the newest from the time index instead of sorting them all.
            return queryset.filter(scope_id__in=list(_holders_below(root)
                                                     .values_list("pk", flat=True)))
        if role not in (None, Role.PROVIDER_STAFF):
            return queryset.filter(scope_id=root.pk)
    if not query:  # provider staff: everything
        return queryset
    return queryset.filter(customer_id__in=Customer.objects.filter(query).values("pk"))


def organizations(user):
    role, root = _root(user)
    if role is None:
        return Customer.objects.none()
    if role == Role.PROVIDER_STAFF:
        found = Customer.objects.organizations()
    elif role == Role.RESELLER_ADMIN:
        found = _organizations_below(root)
    else:
        found = Customer.objects.filter(pk=root.pk).organizations()
    return found.exclude(status_id=c.DELETED)


def hosting_spaces(user):
    """The hosting spaces in scope: every one for the provider's staff (only resellers and
    organizations hold spaces), a reseller's own and its subtree's, an organization's own."""
    from .models import HostingSpace

    role, root = _root(user)
    if role is None:
        return HostingSpace.objects.none()
    if role == Role.PROVIDER_STAFF:
        return HostingSpace.objects.all()
    if role == Role.RESELLER_ADMIN:
        return HostingSpace.objects.filter(customer_id__in=_holders_below(root))
    return HostingSpace.objects.filter(customer_id=root.pk)


def _holders_below(root):
    """Ids of the reseller, the resellers nested under it and their organizations. A UNION,
    not an OR of two IN conditions: with the OR, PostgreSQL filters every customer of the
    database instead of reading the two sets from their indexes."""
    return _resellers_below(root).values("pk").union(
        _organizations_below(root).values("pk"), all=True)


def get_organization_or_404(user, pk):
    role, root = _root(user)
    # An organization's own accounts see only their organization, read with the account.
    if role is not None and role not in _ABOVE_ORGANIZATION:
        if str(root.pk) == str(pk) and root.is_organization:
            return root
        raise Http404("No such organization.")
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
