"""A mailbox's mail flow: its addresses, its forwarding, disconnect and reconnect."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from .. import journal, names
from ..models import (
    Customer,
    CustomerAsset,
    MailAddress,
    MailForwarding,
)
from ..names import clean_field, name_key
from .common import _locked, _unique, ensure_writable, organization_domains

# --- Mail flow: a mailbox's e-mail addresses and its forwarding (issue #12) ---------------

#: Additional addresses one mailbox may have: enough for every alias a person uses, few
#: enough that one form, one row lock and one Set-Mailbox carry them.
MAX_MAIL_ADDRESSES = 30


def address_in_use(address):
    return _("The address %(address)s is already in use.") % {"address": address}


def _mailbox_of(user, connected=True):
    """The user, locked, if it has a mailbox the panel may change (and, unless `connected`
    is False, one that is connected); else a ValidationError."""
    user = _locked(user)
    if not user.is_user or user.organization is None:
        raise ValidationError(_("Only a user of an organization has a mailbox."))
    ensure_writable(user.organization)
    if user.is_deleted:
        raise ValidationError(_("%(user)s is deleted.") % {"user": user.upn})
    if user.service_plan_id is None:
        raise ValidationError(_("%(user)s has no mailbox: give it a service plan first.")
                              % {"user": user.upn})
    if connected and user.mailbox_disconnected:
        raise ValidationError(_("The mailbox of %(user)s is disconnected: reconnect it "
                                "first.") % {"user": user.upn}, code="disconnected")
    return user


@transaction.atomic
def disconnect_mailbox(user, actor=None):
    """Disconnect a user's mailbox: Exchange keeps it, and its data, for its retention
    time; the user keeps its account and plan, and reconnect_mailbox brings it back."""
    user = _mailbox_of(user, connected=False)
    if user.mailbox_disconnected:
        raise ValidationError(_("The mailbox of %(user)s is already disconnected.")
                              % {"user": user.upn}, code="disconnected")
    user.mailbox_disconnected = True
    user.save(update_fields=["mailbox_disconnected", "updated"])
    operation = journal.enqueue(user, "disconnect_mailbox", actor)
    stop_forwarding_to(user, actor)
    return operation


def stop_forwarding_to(user, actor=None):
    """A mailbox that goes away (its user deleted, or the mailbox disconnected) can no longer
    receive forwarded mail, and Exchange drops the link to it without a word. So the
    forwarding of every mailbox that forwarded to it stops, in the panel and, by a journaled
    Set-Mailbox, in Exchange, rather than the panel showing a forwarding that no longer
    exists. Called inside the caller's transaction."""
    forwarders = list(MailForwarding.objects.select_for_update().filter(recipient=user)
                      .values_list("customer_id", flat=True))
    MailForwarding.objects.filter(customer_id__in=forwarders).delete()
    for forwarder in Customer.objects.filter(pk__in=forwarders).order_by("pk"):
        journal.enqueue(forwarder, "set_forwarding", actor, recipient=None, address="",
                        keep_copy=False, reason="recipient_removed")
    return forwarders


@transaction.atomic
def reconnect_mailbox(user, actor=None):
    """Connect the user's disconnected mailbox again, with its plan's settings, addresses
    and forwarding."""
    user = _mailbox_of(user, connected=False)
    if not user.mailbox_disconnected:
        raise ValidationError(_("The mailbox of %(user)s is connected.") % {"user": user.upn},
                              code="connected")
    user.mailbox_disconnected = False
    user.save(update_fields=["mailbox_disconnected", "updated"])
    return journal.enqueue(user, "reconnect_mailbox", actor)


def _addresses_in_use(addresses, user):
    """Those of `addresses` (cleaned) that a recipient other than `user` has: its logon name
    (every mailbox's first address) or one of its additional addresses."""
    keys = {name_key(a): a for a in addresses}
    taken = set(Customer.objects.annotate(upn_key=Lower("upn")).filter(
        upn_key__in=list(keys)).exclude(pk=user.pk).values_list("upn_key", flat=True))
    taken |= set(MailAddress.objects.filter(address_key__in=list(keys)).exclude(
        customer_id=user.pk).values_list("address_key", flat=True))
    return [address for key, address in keys.items() if key in taken]


def mail_addresses_of(user):
    """(primary address, additional addresses) as the panel holds them."""
    rows = list(user.mail_addresses.all())
    primary = next((row.address for row in rows if row.primary), user.upn)
    return primary, [row.address for row in rows]


@transaction.atomic
def set_email_addresses(user, *, addresses, primary=None, actor=None):
    """Give a user's mailbox exactly these additional SMTP addresses, and `primary` (its logon
    name or one of them; None keeps the current one if it stays) as its primary address.

    Every address is cleaned by provisioning.names.MAILBOX_ADDRESS, must be on one of the
    organization's own live domains and must not be any other recipient's. The journaled
    action sends the complete list to Exchange."""
    user = _mailbox_of(user)
    errors, cleaned = {}, []
    if isinstance(addresses, str) or addresses is None:
        addresses = (addresses or "").split()
    for value in addresses:
        address = clean_field(errors, "addresses", names.MAILBOX_ADDRESS, value)
        if address is None:
            break
        if name_key(address) != name_key(user.upn) and name_key(address) not in {
                name_key(a) for a in cleaned}:
            cleaned.append(address)
    if "addresses" not in errors:
        if len(cleaned) > MAX_MAIL_ADDRESSES:
            errors["addresses"] = _("A mailbox can have at most %(count)s additional "
                                    "addresses.") % {"count": MAX_MAIL_ADDRESSES}
        else:
            domains = organization_domains(user.organization)
            foreign = [a for a in cleaned if a.rsplit("@", 1)[1] not in domains]
            taken = _addresses_in_use(cleaned, user)
            if foreign:
                errors["addresses"] = _(
                    "%(address)s is not on one of the organization's domains (%(domains)s).") % {
                    "address": foreign[0], "domains": ", ".join(sorted(domains))}
            elif taken:
                errors["addresses"] = address_in_use(taken[0])
    current_primary, current = mail_addresses_of(user)
    if primary is None or primary == "":
        primary = current_primary
    primary = clean_field(errors, "primary", names.MAILBOX_ADDRESS, primary)
    if primary is not None and "addresses" not in errors and name_key(primary) not in {
            name_key(a) for a in [user.upn, *cleaned]}:
        errors["primary"] = _("The primary address must be the logon name %(upn)s or one of "
                              "the additional addresses.") % {"upn": user.upn}
    if errors:
        raise ValidationError(errors)
    primary = next(a for a in [user.upn, *cleaned] if name_key(a) == name_key(primary))
    if (name_key(primary), sorted(map(name_key, cleaned))) == (
            name_key(current_primary), sorted(map(name_key, current))):
        return user
    # One row at a time, so that the change log records each address added or removed.
    wanted = {name_key(a): a for a in cleaned}
    with _unique("addresses", address_in_use(", ".join(cleaned))):
        for row in user.mail_addresses.all():
            if row.address_key not in wanted or row.address != wanted[row.address_key]:
                row.delete()
            elif row.primary and row.address_key != name_key(primary):
                row.primary = False
                row.save(update_fields=["primary"])
        kept = {row.address_key: row for row in user.mail_addresses.all()}
        for key, address in wanted.items():
            is_primary = key == name_key(primary)
            row = kept.get(key)
            if row is None:
                MailAddress.objects.create(customer=user, address=address, primary=is_primary)
            elif row.primary != is_primary:
                row.primary = is_primary
                row.save(update_fields=["primary"])
    journal.enqueue(user, "set_email_addresses", actor, primary=primary, addresses=cleaned)
    return user


@transaction.atomic
def set_forwarding(user, *, forward_to="", keep_copy=False, actor=None):
    """Forward a user's mail, or stop forwarding it (`forward_to` empty).

    `forward_to` is an address, cleaned by provisioning.names.MAILBOX_ADDRESS. An address of
    another user of the same organization (its logon name or an additional address)
    forwards to that user's mailbox; an address outside every organization's domains is an
    external address. A recipient or a domain of another organization is refused, as is an
    unknown address on one of the organization's own domains, and the user itself."""
    user = _mailbox_of(user)
    organization = user.organization
    errors = {}
    address = ""
    if forward_to is not None and (not isinstance(forward_to, str) or forward_to.strip()):
        address = clean_field(errors, "forward_to", names.MAILBOX_ADDRESS, forward_to)
    if errors:
        raise ValidationError(errors)
    recipient, external = None, ""
    if address:
        key = name_key(address)
        holder = (Customer.objects.annotate(upn_key=Lower("upn")).filter(upn_key=key).first()
                  or Customer.objects.filter(mail_addresses__address_key=key).first())
        domain = address.rsplit("@", 1)[1]
        if holder is not None and holder.pk == user.pk:
            errors["forward_to"] = _("Mail cannot be forwarded to the mailbox itself.")
        elif holder is not None and holder.parent_id == organization.pk:
            if holder.is_deleted or holder.service_plan_id is None:
                errors["forward_to"] = _("%(address)s has no mailbox to forward to.") % {
                    "address": address}
            recipient = holder
        elif holder is not None or CustomerAsset.objects.filter(
                name_key=name_key(domain)).exclude(customer_id=organization.pk).exists():
            errors["forward_to"] = _("%(address)s belongs to another organization: mail can "
                                     "only be forwarded to this organization's users or to "
                                     "external addresses.") % {"address": address}
        elif domain in organization_domains(organization):
            errors["forward_to"] = _("No user of this organization has the address "
                                     "%(address)s.") % {"address": address}
        else:
            external = address
    if errors:
        raise ValidationError(errors)
    keep_copy = bool(keep_copy and address)
    current = MailForwarding.objects.filter(customer=user).first()
    if current is None and not address:
        return user
    if current is not None and (current.recipient_id, current.address, current.keep_copy) == (
            getattr(recipient, "pk", None), external, keep_copy):
        return user
    if not address:
        current.delete()
    else:
        MailForwarding.objects.update_or_create(customer=user, defaults={
            "recipient": recipient, "address": external, "keep_copy": keep_copy})
    journal.enqueue(user, "set_forwarding", actor, recipient=getattr(recipient, "pk", None),
                    address=external, keep_copy=keep_copy)
    return user
