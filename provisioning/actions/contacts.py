"""Mail contacts in an organization's OU."""

from django.utils import timezone

from ..directory import rdn
from ..models import ContactStatus, MailContact
from .base import Action, exchange_of, organization_ou


def contact_identity(ctx, org, name, guid=None):
    """How Exchange finds the contact: its GUID once known, else its DN in the
    organization's OU (a name is unique only within an OU)."""
    return str(guid) if guid else f"{rdn('CN', name)},{organization_ou(ctx, org)}"


class ProvisionContact(Action):
    """New-MailContact in the organization's OU (or adopt the organization's own), then
    Set-MailContact -CustomAttribute1 <organization>, which puts it in the organization's
    address lists (they filter on ConditionalCustomAttribute1)."""

    def run(self, ctx):
        org = ctx.customer
        contact = MailContact.objects.filter(pk=ctx.params["contact"],
                                             organization=org).first()
        if contact is None or contact.is_deleted:
            ctx.note("mail_contact", "skipped", "deleted before it was made")
            return
        exchange = exchange_of(ctx)

        def create():
            found, created = exchange.ensure_mail_contact(
                contact.name, contact.email, organizational_unit=organization_ou(ctx, org),
                identity=contact_identity(ctx, org, contact.name), tenant=org.name)
            return {"guid": found.get("Guid") or None, "created": created}

        made = ctx.step("mail_contact", create)
        identity = contact_identity(ctx, org, contact.name, made.get("guid"))
        ctx.step("tenant_tag", lambda: exchange.tag_mail_contact(identity, org.name) or True)
        MailContact.objects.filter(pk=contact.pk).exclude(status=ContactStatus.DELETED).update(
            exchange_guid=made.get("guid"), status=ContactStatus.ACTIVE,
            updated=timezone.now())

    def compensate(self, ctx):
        """Remove the contact only if this operation made it; the row is marked Failed
        (a retry makes it again)."""
        made = (ctx.done("mail_contact") or {}).get("result") or {}
        try:
            if made.get("created") and ctx.exchange is not None:
                org = ctx.customer
                contact = MailContact.objects.get(pk=ctx.params["contact"])
                ctx.exchange.remove_mail_contact(
                    contact_identity(ctx, org, contact.name, made.get("guid")), contact.email,
                    org.name)
                ctx.forget("mail_contact", "tenant_tag")
                ctx.note("rollback", "done", "removed the mail contact this operation made")
            else:
                ctx.note("rollback", "done", "nothing to remove: this operation made no "
                         "mail contact")
        except Exception as exc:  # noqa: BLE001 - reported in the journal, never hidden
            ctx.note("rollback", "failed", getattr(exc, "user_message", str(exc)))
        MailContact.objects.filter(pk=ctx.params["contact"]).exclude(
            status=ContactStatus.DELETED).update(status=ContactStatus.FAILED,
                                                 updated=timezone.now())


class DeleteContact(Action):
    """Remove-MailContact; a contact already gone is success. The parameters carry what
    the row held when it was deleted (name, address, GUID)."""

    def run(self, ctx):
        p, org = ctx.params, ctx.customer
        if ctx.exchange is None:
            ctx.note("mail_contact_removed", "skipped", "no Exchange service")
            return
        identity = contact_identity(ctx, org, p["name"], p.get("guid"))
        ctx.step("mail_contact_removed",
                 lambda: ctx.exchange.remove_mail_contact(identity, p["email"], org.name))


def remove_contacts(ctx, org):
    """The teardown's contacts: every one the organization has had (a deleted one whose
    removal failed too); one already gone is success."""
    contacts = MailContact.objects.filter(organization=org).order_by("pk").values_list(
        "pk", "name", "email", "exchange_guid")
    for pk, name, email, guid in contacts:
        ctx.step(f"mail_contact_removed:{pk}", lambda n=name, e=email, g=guid:
                 ctx.exchange.remove_mail_contact(contact_identity(ctx, org, n, g), e,
                                                  org.name))
