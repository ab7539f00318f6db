"""One quota function for every create path (forms, CSV import, admin, API).

A limit is checked and consumed in the caller's transaction while the hosting space's row is
locked (SELECT ... FOR UPDATE), so two concurrent creates cannot both take the last unit."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Count

from servicplans.features import mailbox_megabytes
from servicplans.models import QuotaName

from . import constants as c
from .models import Customer, CustomerAsset, HostingSpace


def _live_users(space):
    return Customer.objects.filter(parent_id=space.customer_id).users().live()


def plan_mailbox_mb(plan):
    return mailbox_megabytes([plan.pk]).get(plan.pk, 0) if plan is not None else 0


def _mailbox_disk_mb(space):
    # order_by(): the tree's default ordering would otherwise split the GROUP BY per user.
    mailboxes = dict(_live_users(space).exclude(service_plan=None).order_by().values(
        "service_plan_id").annotate(n=Count("pk")).values_list("service_plan_id", "n"))
    sizes = mailbox_megabytes(mailboxes)
    return sum(count * sizes.get(plan_id, 0) for plan_id, count in mailboxes.items())


USAGE = {
    QuotaName.ORGANIZATIONS: lambda space: Customer.objects.filter(
        parent_id=space.customer_id).organizations().live().count(),
    QuotaName.USERS: lambda space: _live_users(space).count(),
    QuotaName.MAILBOXES: lambda space: _live_users(space).exclude(service_plan=None).count(),
    QuotaName.DOMAINS: lambda space: CustomerAsset.objects.filter(
        customer_id=space.customer_id).exclude(status_id=c.DELETED).count(),
    QuotaName.MAILBOX_DISK_MB: _mailbox_disk_mb,
    # The organization's own security group is the only one the panel creates so far.
    QuotaName.SECURITY_GROUPS: lambda space: 1 if space.customer.is_organization else 0,
}
assert set(USAGE) == set(QuotaName), "every quota needs a usage rule"


@dataclass(frozen=True)
class QuotaUsage:
    quota: str
    label: str
    used: int
    limit: int | None  # None: unlimited

    @property
    def percent(self):
        if not self.limit:
            return 0 if self.limit is None else 100
        return min(100, round(100 * self.used / self.limit))


def usage(space, only=None):
    """Used and limit of each quota (or of those named in `only`). Prefetch the space's
    quota_overrides and hosting_plan__quotas to keep this at one count per quota."""
    return [QuotaUsage(q.value, q.label, USAGE[q](space), space.limit_for(q.value))
            for q in QuotaName if only is None or q.value in only]


def reserve(customer, quota, amount=1, field=None):
    """Lock the customer's hosting space and check that `amount` more of `quota` fits.

    Must run inside the transaction that then creates the objects."""
    return reserve_many(customer, {quota: (amount, field)})


def reserve_many(customer, requests):
    """reserve() for several quotas at once: {quota: (amount, field)}, one lock."""
    space = (HostingSpace.objects.select_for_update(of=("self",))
             .select_related("customer", "hosting_plan")
             .prefetch_related("quota_overrides", "hosting_plan__quotas")
             .filter(customer=customer).exclude(status_id=c.DELETED).order_by("pk").first())
    if space is None:
        raise ValidationError(f"{customer} has no hosting space, so it has no quotas to use.")
    for quota, (amount, field) in requests.items():
        limit = space.limit_for(quota)
        if limit is None or amount == 0:
            continue
        used = USAGE[quota](space)
        if used + amount > limit:
            label = QuotaName(quota).label
            message = (f"The quota for {label.lower()} is reached: {used} of {limit} used, "
                       f"{amount} more requested.")
            raise ValidationError({field: message} if field else message, code="quota")
    return space
