from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    PROVIDER_STAFF = "provider_staff", _("Provider staff")
    RESELLER_ADMIN = "reseller_admin", _("Reseller administrator")
    PRIMARY_ADMIN = "primary_admin", _("Primary administrator")
    PEER_FULL_ADMIN = "peer_full_admin", _("Peer: full administrator")
    PEER_USER_MANAGER = "peer_user_manager", _("Peer: user manager")
    PEER_HELPDESK = "peer_helpdesk", _("Peer: helpdesk")
    PEER_READ_ONLY = "peer_read_only", _("Peer: read-only")


PEER_ROLES = {Role.PEER_FULL_ADMIN, Role.PEER_USER_MANAGER, Role.PEER_HELPDESK,
              Role.PEER_READ_ONLY}


class Account(models.Model):
    """A panel login: a Django user attached to the customer it administers, with a role.
    The primary administration account is created at sign-up; peer accounts are delegates."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="account")
    customer = models.ForeignKey("provisioning.Customer", on_delete=models.PROTECT, null=True,
                                 blank=True, related_name="accounts")
    role = models.CharField(max_length=32, choices=Role.choices)
    # The panel's language for this login; empty: the browser's (Accept-Language).
    language = models.CharField(_("language"), max_length=8, blank=True, default="",
                                choices=[("", _("As the browser asks")), *settings.LANGUAGES])
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__username"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role="provider_staff") | models.Q(customer__isnull=False),
                name="account_has_customer_unless_provider"),
        ]

    def __str__(self):
        return f"{self.user} ({self.get_role_display()})"

    @property
    def role_label(self):
        """The role's name as shown, for messages built with str.format (which cannot call
        get_role_display)."""
        return self.get_role_display()

    @property
    def is_peer(self):
        return self.role in PEER_ROLES

    def clean(self):
        if self.role != Role.PROVIDER_STAFF and not self.customer_id:
            raise ValidationError({"customer": _("Only provider staff can have no customer.")})
