from django.core.exceptions import ValidationError
from django.core.validators import DomainNameValidator
from django.db import models
from django.db.models.functions import Lower
from mptt.managers import TreeManager
from mptt.models import MPTTModel, TreeForeignKey
from mptt.querysets import TreeQuerySet

from servicplans.models import QuotaLimit

from .. import constants as c


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

    def users(self):
        return self.filter(customer_type_id__in=[c.BUSINESS_USER, c.CONSUMER_USER])


CustomerManager = TreeManager.from_queryset(CustomerQuerySet)


class Customer(MPTTModel):
    """Any customer of the tree — reseller, organization or user — as in the seed's generic
    Customers table. Active Directory is the source of truth for identity: the row keeps the
    GUID, the plan, the status, and a cached UPN and name for listing and search."""

    parent = TreeForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                            related_name="children")
    customer_type = models.ForeignKey(CustomerType, on_delete=models.PROTECT, related_name="+")
    status = models.ForeignKey(StatusType, on_delete=models.PROTECT, related_name="+",
                               default=c.ENABLED)
    name = models.CharField(max_length=64,
                            help_text="Organization name (its OU) or the user's display name.")
    upn = models.CharField("UPN", max_length=256, blank=True)
    object_guid = models.UUIDField("objectGUID", null=True, blank=True, unique=True,
                                   editable=False)
    service_plan = models.ForeignKey("servicplans.ServicePlan", on_delete=models.PROTECT,
                                     null=True, blank=True, related_name="customers")
    available_service_plans = models.ManyToManyField(
        "servicplans.ServicePlan", blank=True, related_name="available_to",
        help_text="The service plans an organization may assign to its users.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = CustomerManager()

    # No order_insertion_by: a sorted insert shifts every later sibling's lft/rght, which
    # costs O(n) row updates per new user in an organization of n users. Lists sort by name.
    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("upn"), condition=~models.Q(upn=""),
                                    name="customer_upn_unique"),
            # An organization's name is its OU under the root OU, which is never reused.
            models.UniqueConstraint(Lower("name"),
                                    condition=models.Q(customer_type=c.BUSINESS_ORGANIZATION),
                                    name="organization_name_unique"),
        ]
        indexes = [models.Index(fields=["customer_type", "status"])]

    def __str__(self):
        return self.upn or self.name

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
            errors["parent"] = (f"A {self.customer_type_id} cannot sit under "
                                f"{parent_type or 'the top of the tree'}.")
        if self.name != self.name.strip("\r\n\t") or any(ord(ch) < 32 for ch in self.name):
            errors["name"] = "The name cannot contain control characters."
        if self.service_plan_id and self.customer_type_id == c.BUSINESS_USER and self.parent_id:
            if not self.parent.available_service_plans.filter(pk=self.service_plan_id).exists():
                errors["service_plan"] = (f"'{self.service_plan}' is not one of the "
                                          "organization's available service plans.")
        if errors:
            raise ValidationError(errors)

    def delete(self, *args, **kwargs):
        # Customers are never removed: deleting marks them (see provisioning.services).
        self.status_id = c.DELETED
        self.save(update_fields=["status", "updated"])
        return 0, {}


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

    def __str__(self):
        return self.name

    def limit_for(self, quota):
        """The limit in force: an override on the space, else the plan's; None is unlimited.
        A quota the plan does not mention is not offered (0)."""
        for source in (self.quota_overrides.all(), self.hosting_plan.quotas.all()):
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


domain_name_validator = DomainNameValidator(accept_idna=False,
                                            message="Enter a valid domain name, "
                                                    "such as contoso.com.")


def validate_domain_name(value):
    domain_name_validator(value)
    if "." not in value:
        raise ValidationError("Enter a fully qualified domain name, such as contoso.com.")


class CustomerAsset(models.Model):
    """A domain (or site) mapped to a customer. A domain belongs to one customer only."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="assets")
    asset_type = models.ForeignKey(AssetType, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=253, validators=[validate_domain_name])
    status = models.ForeignKey(StatusType, on_delete=models.PROTECT, related_name="+",
                               default=c.ENABLED)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="domain_belongs_to_one_customer"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.name = self.name.strip().lower().rstrip(".")
        super().save(*args, **kwargs)
