"""An organization's mail contacts: people outside the organization, with an external
e-mail address, listed in the organization's address lists (issue #12).

A contact is not a customer: it has no logon, no mailbox and no directory password. It
lives in the organization's OU as an Exchange mail contact, tagged CustomAttribute1=<the
organization's name> like its mailboxes, so the organization's address lists (filtered on
ConditionalCustomAttribute1) include it. It counts against the quota `mail_contacts`."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..names import name_key


class ContactStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    ACTIVE = "active", _("Active")
    FAILED = "failed", _("Failed")
    DELETED = "deleted", _("Deleted")


class MailContactQuerySet(models.QuerySet):
    def live(self):
        return self.exclude(status=ContactStatus.DELETED)


class MailContact(models.Model):
    organization = models.ForeignKey("provisioning.Customer", on_delete=models.PROTECT,
                                     related_name="mail_contacts")
    name = models.CharField(max_length=64, help_text="Its name in Exchange and its CN in "
                                                     "the organization's OU.")
    email = models.CharField(max_length=254, help_text="The external e-mail address.")
    # The address's comparison key (provisioning.names.name_key): one organization cannot
    # have two live contacts of one address, whatever their case.
    email_key = models.CharField(max_length=254, editable=False)
    name_key = models.CharField(max_length=64, editable=False)
    # The Exchange object's GUID, once New-MailContact made (or adopted) it.
    exchange_guid = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=ContactStatus.choices,
                              default=ContactStatus.PENDING)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = MailContactQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "email_key"],
                                    condition=~Q(status="deleted"),
                                    name="one_live_contact_per_address_per_organization"),
            # Exchange's Name is the contact's CN in the OU: unique there.
            models.UniqueConstraint(fields=["organization", "name_key"],
                                    condition=~Q(status="deleted"),
                                    name="one_live_contact_per_name_per_organization"),
        ]
        indexes = [models.Index(fields=["organization", "status"])]

    def __str__(self):
        return f"{self.name} <{self.email}>"

    def save(self, *args, **kwargs):
        self.email_key = name_key(self.email)
        self.name_key = name_key(self.name)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "email_key", "name_key"}
        super().save(*args, **kwargs)

    @property
    def is_deleted(self):
        return self.status == ContactStatus.DELETED
