"""One quota function for every create path (forms, CSV import, admin, API).

A limit is checked and consumed in the caller's transaction while the hosting spaces' rows are
locked (SELECT ... FOR UPDATE), so two concurrent creates cannot both take the last unit.

Quotas hold across the customer tree, as SolidCP's reseller spaces do: what an organization
consumes counts against its own hosting space and against the space of every reseller above
it, each of which bounds the sum over its whole subtree (the organizations under it and under
the resellers nested below it, see constants.ALLOWED_PARENTS).

Which limit a space sets for a quota its plan (and its overrides) does not list:

- on the space of the customer that consumes — an organization for its users, mailboxes,
  mailbox disk and domains, a reseller for the organizations it signs up — the quota is not
  offered: 0 (HostingSpace.limit_for), as before;
- on an ancestor's space (a reseller's, over its subtree) it sets no bound: the provider sold
  each organization its own plan and caps a reseller's subtree only in what the reseller's
  plan lists. An explicit limit, 0 included, or a lowered override does bind.

Lowering a limit below what is in use refuses new work and keeps what exists: nothing is
deleted, and usage() reports `used` above `limit`.

Lock order: every space from the top-most ancestor down to the customer's own, in one
statement whose ORDER BY PostgreSQL follows when it takes the row locks. Two creates in
sibling organizations therefore queue on their common reseller's row instead of each holding
its own space and waiting for the other's ancestor (no deadlock), which also serialises the
tree's nested-set updates of one reseller's subtree. A caller that must lock other rows too
(change_plan locks the user) takes the spaces first: reserve_many(customer, {})."""

from collections import defaultdict
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
    prefetch_related_objects,
)
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from servicplans.features import as_megabytes, mailbox_megabytes
from servicplans.models import HostingPlanQuota, PlanFeature, QuotaName

from . import constants as c
from .models import (
    Customer,
    CustomerAsset,
    HostingSpace,
    HostingSpaceQuota,
    MailContact,
    UserCount,
)


def _holders(customer):
    """The customers whose users, organizations and domains count against `customer`'s
    space: the customer itself; for a reseller also every live reseller and organization
    below it. A list of ids, or a subquery for a reseller's subtree.

    Walked by parent_id (one query per level of nested resellers), not by the tree's
    nested-set numbers, which concurrent inserts elsewhere in the tree keep shifting."""
    if customer.customer_type_id != c.RESELLER_ORGANIZATION:
        return [customer.pk]
    resellers = level = [customer.pk]
    while level:
        level = list(Customer.objects.filter(
            parent_id__in=level, customer_type_id=c.RESELLER_ORGANIZATION).live()
            .order_by().values_list("pk", flat=True))
        resellers = resellers + level
    return Customer.objects.filter(
        Q(pk__in=resellers)
        | (Q(parent_id__in=resellers, customer_type_id=c.BUSINESS_ORGANIZATION)
           & ~Q(status_id=c.DELETED))).order_by().values("pk")


def _user_counts(holders):
    """{plan id (0: none): live users} of the holders, from the counts the database keeps
    (provisioning.models.UserCount), whatever the number of users."""
    rows = UserCount.objects.filter(holder_id__in=holders, users__gt=0).order_by().values(
        "plan_id").annotate(n=Sum("users")).values_list("plan_id", "n")
    return dict(rows)


def counted_users():
    """{(holder id, plan id): users} as the rows are now, counted the slow way: what the
    counts the database keeps must equal (tests, and recount_users after a repair)."""
    rows = Customer.objects.users().live().exclude(parent_id=None).order_by().values(
        "parent_id", "service_plan_id").annotate(n=Count("pk")).values_list(
        "parent_id", "service_plan_id", "n")
    return {(holder, plan or 0): n for holder, plan, n in rows}


def kept_user_counts():
    return {(holder, plan): n for holder, plan, n in UserCount.objects.exclude(users=0)
            .values_list("holder_id", "plan_id", "users")}


def recount_users():
    """Rebuild the counts from the rows (they are the database's own, so this is needed
    only after someone changed the tables with the triggers switched off). Returns how
    many counts were wrong."""
    from django.db import transaction

    with transaction.atomic():
        # The customers' rows are locked against changes while they are counted.
        list(Customer.objects.users().select_for_update().values_list("pk", flat=True))
        truth, kept = counted_users(), kept_user_counts()
        wrong = {key for key in truth.keys() | kept.keys() if truth.get(key) != kept.get(key)}
        UserCount.objects.all().delete()
        UserCount.objects.bulk_create(UserCount(holder_id=holder, plan_id=plan, users=n)
                                      for (holder, plan), n in truth.items())
    return len(wrong)


def plan_mailbox_mb(plan):
    return mailbox_megabytes([plan.pk]).get(plan.pk, 0) if plan is not None else 0


def _mailbox_disk_mb(space, holders):
    mailboxes = {plan: n for plan, n in _user_counts(holders).items() if plan}
    sizes = mailbox_megabytes(mailboxes)
    return sum(count * sizes.get(plan_id, 0) for plan_id, count in mailboxes.items())


def _security_groups(space, holders):
    # The organization's own security group is the only one the panel creates so far.
    if space.customer.customer_type_id == c.RESELLER_ORGANIZATION:
        return Customer.objects.filter(pk__in=holders).organizations().count()
    return 1 if space.customer.is_organization else 0


# quota: (space, holders) -> used, summed over the space's subtree.
USAGE = {
    QuotaName.ORGANIZATIONS: lambda space, holders: Customer.objects.filter(
        parent_id__in=holders).organizations().live().count(),
    QuotaName.USERS: lambda space, holders: sum(_user_counts(holders).values()),
    QuotaName.MAILBOXES: lambda space, holders: sum(
        n for plan, n in _user_counts(holders).items() if plan),
    QuotaName.DOMAINS: lambda space, holders: CustomerAsset.objects.filter(
        customer_id__in=holders).exclude(status_id=c.DELETED).count(),
    QuotaName.MAILBOX_DISK_MB: _mailbox_disk_mb,
    QuotaName.SECURITY_GROUPS: _security_groups,
    # An organization's live mail contacts (provisioning.models.contacts).
    QuotaName.MAIL_CONTACTS: lambda space, holders: MailContact.objects.filter(
        organization_id__in=holders).live().count(),
}
assert set(USAGE) == set(QuotaName), "every quota needs a usage rule"


def subtree_limit(space, quota):
    """The limit an ancestor's space sets on its subtree: a listed limit (override first,
    then the plan's), else None — a quota the plan does not list does not bound it."""
    for source in (space.quota_overrides.all(), space.hosting_plan.quotas.all()):
        for row in source:
            if row.quota == quota:
                return None if row.unlimited else row.limit
    return None


def _shown_limit(space, quota):
    # A reseller consumes only organizations from its own space (sign-ups); its other
    # quotas bound what its subtree consumes, with the ancestor's rule.
    if space.customer.customer_type_id == c.RESELLER_ORGANIZATION \
            and quota != QuotaName.ORGANIZATIONS:
        return subtree_limit(space, quota)
    return space.limit_for(quota)


@dataclass(frozen=True)
class QuotaUsage:
    quota: str
    label: str
    used: int
    limit: int | None  # None: unlimited

    @property
    def unlimited(self):
        return self.limit is None

    @property
    def not_included(self):
        """A limit of 0: the plan does not offer this quota (not an alarm, unless some is
        used all the same because the limit was lowered)."""
        return self.limit == 0

    @property
    def percent(self):
        if self.limit is None:
            return 0
        if self.limit == 0:
            return 100 if self.used else 0
        return min(100, round(100 * self.used / self.limit))


def usage(space, only=None):
    """Used and limit of each quota (or of those named in `only`); a reseller's space shows
    its whole subtree's use. See usage_many for the queries it makes."""
    return usage_many([space], only)[space.pk]


def prefetch_limits(spaces):
    """Fill the spaces' quota_overrides and their plans' quotas, which limit_for and
    subtree_limit read, from one query (instead of one per relation)."""
    spaces = [s for s in spaces if "quota_overrides" not in getattr(
        s, "_prefetched_objects_cache", {})]
    if not spaces:
        return
    columns = ("kind", "owner", "quota", "limit", "unlimited")
    overrides = HostingSpaceQuota.objects.filter(
        hosting_space_id__in={s.pk for s in spaces}).annotate(
        kind=Value("space"), owner=F("hosting_space_id")).values_list(*columns)
    plans = HostingPlanQuota.objects.filter(
        hosting_plan_id__in={s.hosting_plan_id for s in spaces}).annotate(
        kind=Value("plan"), owner=F("hosting_plan_id")).values_list(*columns)
    found = {"space": defaultdict(list), "plan": defaultdict(list)}
    for kind, owner, quota, limit, unlimited in overrides.union(plans, all=True):
        model = HostingSpaceQuota if kind == "space" else HostingPlanQuota
        found[kind][owner].append(model(quota=quota, limit=limit, unlimited=unlimited))
    for space in spaces:
        _cache(space, "quota_overrides", found["space"][space.pk])
        _cache(space.hosting_plan, "quotas", found["plan"][space.hosting_plan_id])


def _cache(instance, name, rows):
    if not hasattr(instance, "_prefetched_objects_cache"):
        instance._prefetched_objects_cache = {}
    instance._prefetched_objects_cache[name] = rows


def holders_of_many(customers):
    """{customer pk: (ids of its holders, how many of them are organizations)} (see
    _holders) for many customers in one query: a reseller's nested resellers come from its
    nested set in the resellers' tree, its organizations from their parent."""
    holders = {cu.pk: ([cu.pk], 0) for cu in customers}
    resellers = [cu for cu in customers if cu.customer_type_id == c.RESELLER_ORGANIZATION]
    if not resellers:
        return holders
    subtrees = Q()
    for reseller in resellers:
        subtrees |= Q(tree_id=reseller.tree_id, lft__gt=reseller.lft, rght__lt=reseller.rght)
    nested = Customer.objects.filter(subtrees, customer_type_id=c.RESELLER_ORGANIZATION)
    rows = Customer.objects.filter(
        (subtrees & Q(customer_type_id=c.RESELLER_ORGANIZATION))
        | Q(Q(parent_id__in=[r.pk for r in resellers]) | Q(parent_id__in=nested.values("pk")),
            customer_type_id=c.BUSINESS_ORGANIZATION)).live().order_by().values_list(
        "pk", "customer_type_id", "parent_id")
    parent_of, organizations = {}, defaultdict(list)
    for pk, kind, parent_id in rows:
        if kind == c.RESELLER_ORGANIZATION:
            parent_of[pk] = parent_id
        else:
            organizations[parent_id].append(pk)
    for reseller in resellers:
        # The live resellers whose chain of live parents reaches this one: a deleted
        # reseller in between cuts its subtree off, as the walk by parent_id does.
        reached = {reseller.pk}
        for pk in parent_of:
            chain, node = [], pk
            while node in parent_of and node not in reached:
                chain.append(node)
                node = parent_of[node]
            if node in reached:
                reached.update(chain)
        orgs = [org for r in reached for org in organizations[r]]
        holders[reseller.pk] = (sorted(reached) + orgs, len(orgs))
    return holders


def usage_many(spaces, only=None):
    """usage() of many spaces at once, in a fixed number of queries whatever their number
    and size: the limits (one query, unless prefetched), the reseller subtrees (one, when
    a space is a reseller's), the users by holder and service plan with each plan's mailbox
    size (one), the domains and mail contacts by holder (one). {space pk: [QuotaUsage]}."""
    spaces = list(spaces)
    wanted = [q for q in QuotaName if only is None or q.value in only]
    if not spaces:
        return {}
    prefetch_limits(spaces)
    holders = holders_of_many({s.customer_id: s.customer for s in spaces}.values())
    every_holder = {pk for ids, _ in holders.values() for pk in ids}
    user_quotas = {QuotaName.USERS, QuotaName.MAILBOXES, QuotaName.MAILBOX_DISK_MB}
    users = defaultdict(list)  # holder -> [(plan id, count, mailbox size)]
    if user_quotas & set(wanted):
        size = PlanFeature.objects.filter(
            service_plan_id=OuterRef("plan_id"), feature_type__parent_node="mail",
            feature_type__native_attribute="size").order_by("-feature_type__name").values(
            "value")[:1]
        # The counts the database keeps (UserCount), not the users: constant in their number.
        rows = UserCount.objects.filter(holder_id__in=every_holder, users__gt=0).order_by(
            ).annotate(size=Subquery(size)).values_list("holder_id", "plan_id", "users", "size")
        for holder_id, plan_id, n, mailbox_size in rows:
            megabytes = as_megabytes(mailbox_size) if mailbox_size is not None else 0
            users[holder_id].append((plan_id, n, megabytes))
    # The domains and the mail contacts by holder: one query for both (a UNION ALL).
    counted = defaultdict(dict)  # quota -> {holder: n}
    counts = []
    if QuotaName.DOMAINS in wanted:
        counts.append(CustomerAsset.objects.filter(customer_id__in=every_holder).exclude(
            status_id=c.DELETED).order_by().values("customer_id").annotate(
            quota=Value(QuotaName.DOMAINS.value), n=Count("pk")).values_list(
            "quota", "customer_id", "n"))
    if QuotaName.MAIL_CONTACTS in wanted:
        counts.append(MailContact.objects.filter(organization_id__in=every_holder).live()
                      .order_by().values("organization_id").annotate(
            quota=Value(QuotaName.MAIL_CONTACTS.value), n=Count("pk")).values_list(
            "quota", "organization_id", "n"))
    if counts:
        for quota, holder, n in counts[0].union(*counts[1:], all=True):
            counted[quota][holder] = n
    domains, contacts = counted[QuotaName.DOMAINS.value], counted[QuotaName.MAIL_CONTACTS.value]
    result = {}
    for space in spaces:
        ids, organizations = holders[space.customer_id]
        mine = [row for pk in ids for row in users.get(pk, ())]
        used = {
            QuotaName.USERS: sum(n for _, n, _ in mine),
            QuotaName.MAILBOXES: sum(n for plan, n, _ in mine if plan),
            QuotaName.MAILBOX_DISK_MB: sum(n * mb for plan, n, mb in mine if plan),
            QuotaName.DOMAINS: sum(domains.get(pk, 0) for pk in ids),
            QuotaName.ORGANIZATIONS: organizations,
            QuotaName.SECURITY_GROUPS: organizations
            if space.customer.customer_type_id == c.RESELLER_ORGANIZATION
            else int(space.customer.is_organization),
            QuotaName.MAIL_CONTACTS: sum(contacts.get(pk, 0) for pk in ids),
        }
        result[space.pk] = [QuotaUsage(q.value, q.label, used[q], _shown_limit(space, q.value))
                            for q in wanted]
    return result


def reserve(customer, quota, amount=1, field=None):
    """Lock the hosting spaces from the top of the tree down to the customer's and check
    that `amount` more of `quota` fits in each.

    Must run inside the transaction that then creates the objects."""
    return reserve_many(customer, {quota: (amount, field)})


def _chain(customer):
    """Ids of the customer and its ancestors, the customer first (a customer never moves,
    so its parent_id is safe to read from a stale instance)."""
    chain, parent_id = [customer.pk], customer.parent_id
    while parent_id is not None and parent_id not in chain:
        chain.append(parent_id)
        parent_id = Customer.objects.filter(pk=parent_id).values_list(
            "parent_id", flat=True).first()
    return chain


# A quota as a refusal names it within a sentence (the English one in lower case).
QUOTA_NOUNS = {
    QuotaName.ORGANIZATIONS: pgettext_lazy("quota", "organizations"),
    QuotaName.USERS: pgettext_lazy("quota", "users"),
    QuotaName.MAILBOXES: pgettext_lazy("quota", "mailboxes"),
    QuotaName.DOMAINS: pgettext_lazy("quota", "domains"),
    QuotaName.MAILBOX_DISK_MB: pgettext_lazy("quota", "mailbox disk space (mb)"),
    QuotaName.SECURITY_GROUPS: pgettext_lazy("quota", "security groups"),
    QuotaName.MAIL_CONTACTS: pgettext_lazy("quota", "mail contacts"),
}
assert set(QUOTA_NOUNS) == set(QuotaName), "every quota needs a noun"


def _reached(space, customer, chain, figures):
    """The refusal, naming whose limit it is as the one who asked sees it: its own, its
    organization's reseller's, or a reseller further up (named, since a reseller can also
    ask). One whole sentence each, so that a translation can word each its own way."""
    if space.customer_id == customer.pk and customer.is_organization:
        message = _("The organization's quota for %(quota)s is reached: %(used)s of "
                    "%(limit)s used, %(amount)s more requested.")
    elif space.customer_id == customer.pk or (customer.is_organization
                                              and space.customer_id == chain[1]):
        message = _("The reseller's quota for %(quota)s is reached: %(used)s of %(limit)s "
                    "used, %(amount)s more requested.")
    else:
        message = _("The reseller %(reseller)s's quota for %(quota)s is reached: %(used)s of "
                    "%(limit)s used, %(amount)s more requested.")
    return message % {**figures, "reseller": space.customer.name}


def reserve_many(customer, requests):
    """reserve() for several quotas at once: {quota: (amount, field)}, one lock statement.

    Checks the customer's own space (a quota it does not list is not offered), then each
    ancestor's space over its whole subtree (a quota it does not list is not bounded). An
    empty `requests` only takes the locks. Returns the customer's own space."""
    chain = _chain(customer)
    top_first = Case(*[When(customer_id=pk, then=Value(depth))
                       for depth, pk in enumerate(reversed(chain))],
                     output_field=IntegerField())
    locked = (HostingSpace.objects.select_for_update(of=("self",))
              .select_related("customer", "hosting_plan")
              .prefetch_related("quota_overrides", "hosting_plan__quotas")
              .filter(customer_id__in=chain).exclude(status_id=c.DELETED)
              .order_by(top_first, "pk"))
    spaces = {}
    for space in locked:  # a customer's first live space is the one that counts
        spaces.setdefault(space.customer_id, space)
    own = spaces.get(customer.pk)
    if own is None:
        if not requests:
            return None
        raise ValidationError(_("%(customer)s has no hosting space, so it has no quotas to "
                                "use.") % {"customer": customer})
    # The customer's own limits first, then upwards: the nearest limit reached is named.
    for customer_id in chain:
        space = spaces.get(customer_id)
        if space is None:  # an ancestor without a space of its own sets no limit
            continue
        holders = None
        for quota, (amount, field) in requests.items():
            limit = space.limit_for(quota) if space is own else subtree_limit(space, quota)
            if limit is None or amount == 0:
                continue
            if holders is None:
                holders = _holders(space.customer)
            used = USAGE[quota](space, holders)
            if used + amount > limit:
                message = _reached(space, customer, chain, {
                    "quota": QUOTA_NOUNS[QuotaName(quota)], "used": used, "limit": limit,
                    "amount": amount})
                raise quota_error(message, field, quota=quota, used=used, limit=limit,
                                  requested=amount, customer=space.customer_id)
    return own


def quota_error(message, field, **figures):
    """A refusal with code "quota" and its figures in `params` (the API answers 409 with
    them); on `field` when given. The code is on the field's own error too: a dict drops
    the outer one."""
    # ValidationError formats its message with params: a % in a name must stay a %.
    error = ValidationError(message.replace("%", "%%"), code="quota", params=figures)
    return ValidationError({field: error}) if field else error


# The quotas a create reserves (reserve/reserve_many). A plan change checks the same ones:
# the organization's own security group is made at sign-up without a reservation, so a
# plan that sign-up accepts is never refused for it.
RESERVED = (QuotaName.ORGANIZATIONS, QuotaName.USERS, QuotaName.MAILBOXES,
            QuotaName.MAILBOX_DISK_MB, QuotaName.DOMAINS, QuotaName.MAIL_CONTACTS)


def check_plan(space, hosting_plan, field=None):
    """Refuse moving `space` to `hosting_plan` when its use exceeds one of the new plan's
    limits (the space's overrides still apply). Call with the spaces locked
    (reserve_many(customer, {}))."""
    holders = _holders(space.customer)
    prefetch_related_objects([hosting_plan], "quotas")  # one query for every limit
    for quota in RESERVED:
        limit = space.limit_for(quota.value, hosting_plan=hosting_plan)
        if limit is None:
            continue
        used = USAGE[quota](space, holders)
        if used > limit:
            message = _("%(quota)s: the plan %(plan)s allows %(limit)s, %(customer)s uses "
                        "%(used)s.") % {"quota": quota.label, "plan": hosting_plan.name,
                                        "limit": limit, "customer": space.customer.name,
                                        "used": used}
            raise quota_error(message, field, quota=quota.value, used=used, limit=limit,
                              requested=0, customer=space.customer_id)
