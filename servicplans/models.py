"""What the provider sells: hosting plans with quotas and prices, and service plans built
from features of a given feature type (the Service Plan database of the seed)."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class BillingPeriod(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    YEARLY = "yearly", "Yearly"


class QuotaName(models.TextChoices):
    ORGANIZATIONS = "organizations", _("Organizations")
    USERS = "users", _("Users")
    MAILBOXES = "mailboxes", _("Mailboxes")
    DOMAINS = "domains", _("Domains")
    MAILBOX_DISK_MB = "mailbox_disk_mb", _("Mailbox disk space (MB)")
    SECURITY_GROUPS = "security_groups", _("Security groups")
    MAIL_CONTACTS = "mail_contacts", _("Mail contacts")


class HostingPlan(models.Model):
    name = models.CharField(max_length=100, unique=True)
    virtual_server = models.ForeignKey("servers.VirtualServer", on_delete=models.PROTECT,
                                       related_name="hosting_plans")
    description = models.TextField(blank=True)
    setup_price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    recurring_price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    billing_period = models.CharField(max_length=16, choices=BillingPeriod.choices,
                                      default=BillingPeriod.MONTHLY)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class QuotaLimit(models.Model):
    """A limit that is either a number or explicitly unlimited, never silently absent."""

    quota = models.CharField(max_length=32, choices=QuotaName.choices)
    limit = models.PositiveIntegerField(null=True, blank=True)
    unlimited = models.BooleanField(default=False)

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.get_quota_display()}: {'unlimited' if self.unlimited else self.limit}"

    def clean(self):
        if self.unlimited and self.limit is not None:
            raise ValidationError(
                {"limit": _("Leave the limit empty when the quota is unlimited.")})
        if not self.unlimited and self.limit is None:
            raise ValidationError({"limit": _("Give a limit or tick 'unlimited'.")})


class HostingPlanQuota(QuotaLimit):
    hosting_plan = models.ForeignKey(HostingPlan, on_delete=models.CASCADE, related_name="quotas")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hosting_plan", "quota"],
                                    name="one_limit_per_quota_per_plan"),
            models.CheckConstraint(
                condition=models.Q(unlimited=True, limit__isnull=True)
                | models.Q(unlimited=False, limit__isnull=False),
                name="plan_quota_limit_or_unlimited",
            ),
        ]


class PlanCategory(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "plan categories"

    def __str__(self):
        return self.name


class ParentNode(models.TextChoices):
    OPTIONS = "options", "options (panel action)"
    PROPERTIES = "properties", "properties (directory attribute)"
    MAIL = "mail", "mail (Exchange mailbox setting)"


class FeatureType(models.Model):
    name = models.CharField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    native_attribute = models.CharField(max_length=128)
    parent_node = models.CharField(max_length=16, choices=ParentNode.choices)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        from .features import mapping_for

        mapping_for(self.parent_node, self.native_attribute)


class ServicePlan(models.Model):
    name = models.CharField(max_length=100, unique=True)
    category = models.ForeignKey(PlanCategory, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="service_plans")
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    feature_types = models.ManyToManyField(FeatureType, through="PlanFeature",
                                           related_name="service_plans")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def feature_values(self):
        """{feature type name: value} — what the plan promises each mailbox."""
        return {f.feature_type.name: f.value for f in self.features.select_related("feature_type")}


class PlanFeature(models.Model):
    service_plan = models.ForeignKey(ServicePlan, on_delete=models.CASCADE,
                                     related_name="features")
    feature_type = models.ForeignKey(FeatureType, on_delete=models.PROTECT, related_name="+")
    value = models.CharField(max_length=255)

    class Meta:
        ordering = ["feature_type__name"]
        constraints = [
            models.UniqueConstraint(fields=["service_plan", "feature_type"],
                                    name="one_value_per_feature_per_plan"),
        ]

    def __str__(self):
        return f"{self.feature_type}={self.value}"

    def clean(self):
        from .features import validate_value

        if self.feature_type_id is None:
            return
        try:
            validate_value(self.feature_type, self.value)
        except ValidationError as exc:
            messages = exc.message_dict.get("native_attribute") if hasattr(
                exc, "error_dict") else exc.messages
            raise ValidationError(
                {"value": [f"{self.feature_type}: {m}" for m in messages]}) from None
