"""Mail contacts of an organization."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from servicplans.models import QuotaName

from .. import journal, names, quotas
from ..models import (
    ContactStatus,
    Customer,
    MailContact,
)
from ..names import clean_field, name_key
from .common import _locked, ensure_writable

# --- Mail contacts (issue #12) ------------------------------------------------------------


def contact_address_in_use(email):
    return _("The organization already has a contact for %(email)s.") % {"email": email}


def contact_name_in_use(name):
    return _("The organization already has a contact named %(name)s.") % {"name": name}


def _has_exchange(organization):
    from servers.models import ServiceKind

    from ..backends import service_for

    service = service_for(organization, ServiceKind.EXCHANGE)
    return service is not None and service.enabled


@transaction.atomic
def create_contact(organization, *, name, email, actor=None):
    """A mail contact of the organization, within its quota `mail_contacts`: provisioned in
    Exchange by the journaled action provision_contact. Its name and address are cleaned by
    their rules in provisioning.names and stored as cleaned; one organization has one live
    contact per address and per name (the database's constraints settle a race)."""
    if not organization.is_organization:
        raise ValidationError(_("Only an organization can have mail contacts."))
    # The lock order of every quota path: the hosting spaces from the top of the tree down,
    # then the organization's row, so a suspension committing meanwhile is seen.
    quotas.reserve_many(organization, {})
    organization = _locked(organization)
    ensure_writable(organization)
    errors = {}
    name = clean_field(errors, "name", names.CONTACT_NAME, name)
    email = clean_field(errors, "email", names.EXTERNAL_EMAIL, email)
    live = organization.mail_contacts.live()
    if email is not None and live.filter(email_key=name_key(email)).exists():
        errors["email"] = contact_address_in_use(email)
    if name is not None and live.filter(name_key=name_key(name)).exists():
        errors["name"] = contact_name_in_use(name)
    if not errors and not _has_exchange(organization):
        errors["name"] = _("The organization's hosting plan has no Exchange service.")
    if errors:
        raise ValidationError(errors)
    quotas.reserve(organization, QuotaName.MAIL_CONTACTS, field="name")
    contact = MailContact(organization=organization, name=name, email=email)
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError:
        if live.filter(email_key=name_key(email)).exists():
            raise ValidationError({"email": contact_address_in_use(email)}) from None
        raise ValidationError({"name": contact_name_in_use(name)}) from None
    journal.enqueue(organization, "provision_contact", actor, contact=contact.pk, name=name,
                    email=email)
    return contact


@transaction.atomic
def delete_contact(contact, actor=None):
    """Delete a mail contact: its row stays, marked Deleted (its place in the quota is free
    at once), and the journaled action delete_contact removes it from Exchange."""
    organization = _locked(Customer(pk=contact.organization_id))
    contact = MailContact.objects.select_for_update().get(pk=contact.pk)
    if contact.is_deleted:
        return contact
    ensure_writable(organization)
    contact.status = ContactStatus.DELETED
    contact.save(update_fields=["status", "updated"])
    journal.enqueue(organization, "delete_contact", actor, contact=contact.pk,
                    name=contact.name, email=contact.email,
                    guid=str(contact.exchange_guid) if contact.exchange_guid else None)
    return contact
