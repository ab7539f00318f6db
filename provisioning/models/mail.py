"""A mailbox's mail flow as the panel asked Exchange for it: its additional SMTP addresses
(and which address is its primary one) and where its mail is forwarded. The rules are
provisioning.services' (set_email_addresses, set_forwarding); the journaled actions
SetEmailAddresses and SetForwarding send the complete state to Exchange."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..names import name_key


class MailAddress(models.Model):
    """An additional SMTP address of a user's mailbox, on one of its organization's domains.

    Every address is one recipient's: `address_key` (provisioning.names.name_key) is unique
    across the panel, and the services also refuse an address that is some user's logon
    name (UPN), which is every mailbox's own first address. A user with no primary row has
    its logon name as primary address."""

    customer = models.ForeignKey("provisioning.Customer", on_delete=models.PROTECT,
                                 related_name="mail_addresses")
    address = models.CharField(_("e-mail address"), max_length=254)
    address_key = models.CharField(max_length=254, editable=False)
    primary = models.BooleanField(_("primary address"), default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address_key"]
        constraints = [
            models.UniqueConstraint(fields=["address_key"], name="mail_address_key_unique"),
            models.UniqueConstraint(fields=["customer"], condition=models.Q(primary=True),
                                    name="mail_address_one_primary"),
        ]

    def __str__(self):
        return self.address

    def save(self, *args, update_fields=None, **kwargs):
        self.address_key = name_key(self.address)
        if update_fields is not None and "address" in update_fields:
            update_fields = {*update_fields, "address_key"}
        super().save(*args, update_fields=update_fields, **kwargs)


    def get_additional_data(self):
        """Kept in each change log entry (django-auditlog), so that an organization's change
        log finds the entries of a row that has since been removed."""
        return {"organization": self.customer.parent_id}


class MailForwarding(models.Model):
    """Where a user's mail is forwarded: to another mailbox of its organization
    (`recipient`, Exchange's ForwardingAddress) or to an external address (`address`,
    ForwardingSmtpAddress), with or without a copy kept in the mailbox. No row: none."""

    customer = models.OneToOneField("provisioning.Customer", on_delete=models.PROTECT,
                                    related_name="mail_forwarding")
    recipient = models.ForeignKey("provisioning.Customer", on_delete=models.PROTECT,
                                  null=True, blank=True, related_name="+",
                                  verbose_name=_("forwarded to"))
    address = models.CharField(_("forwarded to address"), max_length=254, blank=True)
    keep_copy = models.BooleanField(_("keep a copy"), default=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(recipient__isnull=False, address="")
                           | models.Q(recipient__isnull=True) & ~models.Q(address="")),
                name="mail_forwarding_one_target"),
        ]

    def __str__(self):
        return f"forwarding of {self.customer_id}"

    def get_additional_data(self):
        return {"organization": self.customer.parent_id}

    @property
    def target(self):
        return self.recipient.upn if self.recipient_id else self.address
