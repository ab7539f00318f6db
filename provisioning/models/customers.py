from django.core.exceptions import ValidationError
from django.db import connections, models, router
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from mptt.managers import TreeManager
from mptt.models import MPTTModel, TreeForeignKey
from mptt.querysets import TreeQuerySet

from servicplans.models import QuotaLimit

from .. import constants as c
from .. import names
from ..names import name_key, normalize_domain


class ReferenceType(models.Model):
    """A uniquely named type from the seed; the name is the key."""

    name = models.CharField(max_length=32, primary_key=True)
    description = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self):
        return self.name


class CustomerType(ReferenceType):
    pass


class StatusType(ReferenceType):
    pass


class AssetType(ReferenceType):
    pass


class CustomerQuerySet(TreeQuerySet):
    def delete(self):
        # Customers are never removed: deleting marks them.
        return self.update(status_id=c.DELETED), {}

    def live(self):
        return self.exclude(status_id=c.DELETED)

    def organizations(self):
        return self.filter(customer_type_id=c.BUSINESS_ORGANIZATION)

    def named(self, name):
        """The customers whose name is the same name as `name` (see provisioning.names)."""
        return self.filter(name_key=name_key(name))

    def users(self):
        return self.filter(customer_type_id__in=[c.BUSINESS_USER, c.CONSUMER_USER])


# PostgreSQL hands out the id of every new nested-set tree (one per organization, one per
# top-level reseller) from this sequence, so two sign-ups at once never take the same one.
TREE_ID_SEQUENCE = "provisioning_customer_tree_id_seq"


class CustomerManager(TreeManager.from_queryset(CustomerQuerySet)):
    def _get_next_tree_id(self):
        return self.new_tree_ids(1)[0]

    def new_tree_ids(self, count):
        """`count` unused tree ids, for new roots (bulk loads take many at once)."""
        connection = connections[router.db_for_write(self.model)]
        if connection.vendor != "postgresql":  # SQLite: one writer at a time
            start = super()._get_next_tree_id()
            return list(range(start, start + count))
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)",
                           [TREE_ID_SEQUENCE, count])
            return [row[0] for row in cursor.fetchall()]


class Customer(MPTTModel):
    """Any customer of the tree — reseller, organization or user — as in the seed's generic
    Customers table. Active Directory is the source of truth for identity: the row keeps the
    GUID, the plan, the status, and a cached UPN and name for listing and search.

    `parent` is the customer tree: a user's organization, an organization's reseller, a
    reseller's parent reseller. The nested-set numbers (lft, rght, tree_id, level) follow
    `tree_parent`, which is `parent` except for an organization: every organization is the
    root of a tree of its own, with its users, and the resellers form trees of their own.
    Creating a user therefore renumbers its own organization's row only, whatever the size
    of the provider, and signing an organization up renumbers nothing. A reseller's subtree
    is its resellers' nested set and the trees of their organizations (provisioning.scoping).
    """

    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="children")
    tree_parent = TreeForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                 editable=False, related_name="tree_children",
                                 help_text="The parent in the nested set: the parent, "
                                           "except none for an organization.")
    customer_type = models.ForeignKey(CustomerType, on_delete=models.PROTECT, related_name="+")
    status = models.ForeignKey(StatusType, on_delete=models.PROTECT, related_name="+",
                               default=c.ENABLED)
    name = models.CharField(max_length=64,
                            help_text="Organization name (its OU) or the user's display name.")
    # provisioning.names.name_key(name), set on save: what makes two names one name.
    name_key = models.TextField(editable=False)
    upn = models.CharField("UPN", max_length=256, blank=True)
    object_guid = models.UUIDField("objectGUID", null=True, blank=True, unique=True,
                                   editable=False)
    service_plan = models.ForeignKey("servicplans.ServicePlan", on_delete=models.PROTECT,
                                     null=True, blank=True, related_name="customers")
    # Disable-Mailbox keeps a disconnected mailbox for Exchange's retention time; the user
    # keeps its plan, and reconnecting brings the same mailbox back (actions.ReconnectMailbox).
    mailbox_disconnected = models.BooleanField(default=False)
    available_service_plans = models.ManyToManyField(
        "servicplans.ServicePlan", blank=True, related_name="available_to",
        help_text="The service plans an organization may assign to its users.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = CustomerManager()

    # No order_insertion_by: a sorted insert shifts every later sibling's lft/rght, which
    # costs O(n) row updates per new user in an organization of n users. Lists sort by name.
    class MPTTMeta:
        parent_attr = "tree_parent"

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("upn"), condition=~models.Q(upn=""),
                                    name="customer_upn_unique"),
            # An organization's name is its OU under the root OU, which is never reused.
            models.UniqueConstraint(fields=["name_key"],
                                    condition=models.Q(customer_type=c.BUSINESS_ORGANIZATION),
                                    name="organization_name_key_unique",
                                    violation_error_message=gettext_lazy(
                                        "An organization with this name already exists.")),
            models.UniqueConstraint(fields=["tree_id"], condition=models.Q(level=0),
                                    name="customer_one_root_per_tree"),
        ]
        indexes = [
            models.Index(fields=["customer_type", "status"]),
            # The users list: an organization's users sorted by name, counted from the index.
            models.Index(fields=["parent", "name", "id"], include=["customer_type", "status"],
                         name="customer_parent_name_id"),
            models.Index(fields=["parent", "created"], name="customer_parent_created"),
            # MPTT's insert shifts `WHERE tree_id = %s AND (lft > %s OR rght > %s)`.
            models.Index(fields=["tree_id", "rght"], name="customer_tree_rght"),
        ]

    def __str__(self):
        return self.upn or self.name

    def save(self, *args, update_fields=None, **kwargs):
        self.name_key = name_key(self.name)
        if update_fields is not None and "name" in update_fields:
            update_fields = {*update_fields, "name_key"}
        if update_fields is None and self.tree_parent_id != self.nested_set_parent_id:
            self.tree_parent = self.parent if self.nested_set_parent_id else None
        super().save(*args, update_fields=update_fields, **kwargs)

    @property
    def nested_set_parent_id(self):
        """The node this customer hangs under in the nested set (see the class)."""
        if self.customer_type_id == c.BUSINESS_ORGANIZATION:
            return None
        return self.parent_id

    @property
    def is_deleted(self):
        return self.status_id == c.DELETED

    @property
    def is_organization(self):
        return self.customer_type_id == c.BUSINESS_ORGANIZATION

    @property
    def is_user(self):
        return self.customer_type_id in (c.BUSINESS_USER, c.CONSUMER_USER)

    @property
    def organization(self):
        """The organization a business user belongs to (itself for an organization)."""
        if self.is_organization:
            return self
        if self.customer_type_id == c.BUSINESS_USER:
            return self.parent
        return None

    def clean(self):
        errors = {}
        parent_type = self.parent.customer_type_id if self.parent_id else None
        allowed = c.ALLOWED_PARENTS.get(self.customer_type_id, set())
        if self.customer_type_id and parent_type not in allowed:
            errors["parent"] = _("A %(type)s cannot sit under %(parent)s.") % {
                "type": self.customer_type_id,
                "parent": parent_type or _("the top of the tree")}
        # The same rules as the services' (provisioning.names); the name is kept as cleaned.
        rule = names.ORGANIZATION_NAME if self.is_organization else names.DISPLAY_NAME
        try:
            self.name = rule.clean(self.name)
        except ValidationError as exc:
            errors["name"] = exc
        else:
            if self.is_organization and Customer.objects.organizations().named(
                    self.name).exclude(pk=self.pk).exists():
                errors["name"] = organization_exists(self.name)
        if self.service_plan_id and self.customer_type_id == c.BUSINESS_USER and self.parent_id:
            if not self.parent.available_service_plans.filter(pk=self.service_plan_id).exists():
                errors["service_plan"] = _("'%(plan)s' is not one of the organization's "
                                           "available service plans.") % {
                    "plan": self.service_plan}
        if errors:
            raise ValidationError(errors)

    def delete(self, *args, **kwargs):
        # Customers are never removed: deleting marks them (see provisioning.services).
        self.status_id = c.DELETED
        self.save(update_fields=["status", "updated"])
        return 0, {}


def organization_exists(name):
    return _("An organization named '%(name)s' already exists.") % {"name": name}


class HostingSpace(models.Model):
    """A customer's subscription to a hosting plan, with optional quota overrides."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT,
                                 related_name="hosting_spaces")
    hosting_plan = models.ForeignKey("servicplans.HostingPlan", on_delete=models.PROTECT,
                                     related_name="hosting_spaces")
    name = models.CharField(max_length=128)
    status = models.ForeignKey(StatusType, on_delete=models.PROTECT, related_name="+",
                               default=c.ENABLED)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["customer__name", "name"]
        # The hosting spaces list: pages in the order of the space's own name (its
        # customer's name, then the plan), read from this index.
        indexes = [models.Index(fields=["name", "id"], name="hosting_space_name_id")]

    def __str__(self):
        return self.name

    def limit_for(self, quota, hosting_plan=None):
        """The limit in force: an override on the space, else the plan's (or, asked about
        another plan, that plan's); None is unlimited. A quota the plan does not mention is
        not offered (0)."""
        plan = hosting_plan or self.hosting_plan
        for source in (self.quota_overrides.all(), plan.quotas.all()):
            for row in source:
                if row.quota == quota:
                    return None if row.unlimited else row.limit
        return 0


class HostingSpaceQuota(QuotaLimit):
    hosting_space = models.ForeignKey(HostingSpace, on_delete=models.CASCADE,
                                      related_name="quota_overrides")

    class Meta:
        verbose_name = "quota override"
        constraints = [
            models.UniqueConstraint(fields=["hosting_space", "quota"],
                                    name="one_override_per_quota_per_space"),
            models.CheckConstraint(
                condition=models.Q(unlimited=True, limit__isnull=True)
                | models.Q(unlimited=False, limit__isnull=False),
                name="space_quota_limit_or_unlimited",
            ),
        ]


def domain_in_use(domain):
    return _("The domain %(domain)s is already in use.") % {"domain": domain}


def validate_domain_name(value):
    """The model field's validator: provisioning.names.DOMAIN, the services' rule."""
    names.DOMAIN.clean(value)


class CustomerAsset(models.Model):
    """A domain (or site) mapped to a customer. A domain belongs to one customer only."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="assets")
    asset_type = models.ForeignKey(AssetType, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=253, validators=[validate_domain_name])
    # Domains are ASCII (no IDNA) and stored lower-case, so the key equals the name today;
    # it is kept so that every unique name is one rule, provisioning.names.name_key.
    name_key = models.TextField(editable=False)
    status = models.ForeignKey(StatusType, on_delete=models.PROTECT, related_name="+",
                               default=c.ENABLED)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name_key"], name="domain_key_unique"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, update_fields=None, **kwargs):
        self.name = normalize_domain(self.name)
        self.name_key = name_key(self.name)
        if update_fields is not None and "name" in update_fields:
            update_fields = {*update_fields, "name_key"}
        super().save(*args, update_fields=update_fields, **kwargs)

    def clean(self):
        if CustomerAsset.objects.filter(name_key=name_key(normalize_domain(self.name))).exclude(
                pk=self.pk).exists():
            raise ValidationError({"name": domain_in_use(normalize_domain(self.name))})
