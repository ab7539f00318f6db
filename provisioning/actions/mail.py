"""A mailbox's mail flow: its addresses, forwarding, disconnect and reconnect."""

from servicplans.features import plan_settings

from ..directory import PermanentDirectoryError
from ..models import MailForwarding
from .base import Action, apply_mailbox_settings, organization_names

# --- Mail flow: a mailbox's e-mail addresses and its forwarding (issue #12) ---------------


def _mailbox_identity(ctx):
    """The user's directory GUID, once its mailbox can be changed; None (noted) when the
    plan has no Exchange."""
    if ctx.exchange is None:
        ctx.note("mailbox", "skipped", "the organization's plan has no Exchange service")
        return None
    return ctx.guid()


class SetEmailAddresses(Action):
    """Sends the mailbox's complete list of SMTP addresses as the panel holds it now (the
    primary one, the logon name, the additional ones), so a retry, or an older operation
    run after a newer one, never brings back an address that was removed."""

    def run(self, ctx):
        from ..services import mail_addresses_of

        identity = _mailbox_identity(ctx)
        if identity is None:
            return
        user = ctx.customer
        primary, additional = mail_addresses_of(user)
        ctx.step("email_addresses", lambda: ctx.exchange.set_email_addresses(
            identity, primary, [user.upn, *additional]))


class SetForwarding(Action):
    """Sends the mailbox's forwarding as the panel holds it now: to another mailbox of the
    organization (its GUID), to an external address, or none; both Exchange parameters are
    always set, so the mailbox ends with exactly this forwarding."""

    def run(self, ctx):
        identity = _mailbox_identity(ctx)
        if identity is None:
            return
        forwarding = MailForwarding.objects.filter(customer=ctx.customer).select_related(
            "recipient").first()
        recipient = smtp_address = None
        keep_copy = False
        if forwarding is not None:
            keep_copy = forwarding.keep_copy
            if forwarding.recipient_id:
                recipient = self.recipient_guid(ctx, forwarding.recipient)
            else:
                smtp_address = forwarding.address
        ctx.step("forwarding", lambda: ctx.exchange.set_forwarding(
            identity, recipient=recipient, smtp_address=smtp_address, keep_copy=keep_copy))

    @staticmethod
    def recipient_guid(ctx, recipient):
        if recipient.parent_id != ctx.customer.parent_id:
            raise PermanentDirectoryError("Mail can only be forwarded within the organization.")
        return ctx.guid(recipient)


# --- Disconnect and reconnect a user's mailbox (issue #12) ---------------------------------


class DisconnectMailbox(Action):
    """Disable-Mailbox: Exchange keeps the mailbox, disconnected, for its retention time.
    What finds it again (its ExchangeGuid and database) is recorded first, in its own
    step, so a retry after a lost reply still knows it."""

    def run(self, ctx):
        if ctx.exchange is None:
            ctx.note("mailbox_disconnected", "skipped", "no Exchange service")
            return
        guid = ctx.guid()
        ctx.step("mailbox_identity", lambda: ctx.exchange.mailbox_identity(guid))
        ctx.step("mailbox_disconnected", lambda: ctx.exchange.disable_mailbox(guid))


def disconnected_identity(user):
    """The mailbox identity the user's last disconnection recorded, or None."""
    from ..models import Operation

    for steps in Operation.objects.filter(
            customer=user, action="disconnect_mailbox", state="succeeded").order_by(
            "-pk").values_list("steps", flat=True)[:1]:
        for step in steps:
            if step.get("name") == "mailbox_identity" and step.get("state") == "done":
                return step.get("result")
    return None


class ReconnectMailbox(Action):
    """Connect-Mailbox: the disconnected mailbox back on its user, then what the plan and
    the panel set on it (Exchange cleared them on disconnection): quotas, protocols, the
    tenant tag and address book policy, addresses and forwarding. A user whose disconnection
    found no mailbox gets a new one, as its plan says."""

    def run(self, ctx):
        if ctx.exchange is None:
            ctx.note("mailbox_connected", "skipped", "no Exchange service")
            return
        user, guid = ctx.customer, ctx.guid()
        identity = disconnected_identity(user)
        if identity is not None:
            ctx.step("mailbox_connected", lambda: bool(ctx.exchange.connect_mailbox(
                identity["ExchangeGuid"], identity["Database"], guid)))
        else:
            ctx.step("mailbox", lambda: bool(ctx.exchange.enable_mailbox(
                guid, ctx.exchange.settings.default_database or None)))
        settings = plan_settings(user.service_plan)
        org = user.organization
        settings.mailbox.update(CustomAttribute1=org.name,
                                AddressBookPolicy=organization_names(org)["abp"])
        apply_mailbox_settings(ctx, guid, settings)
        if user.mail_addresses.exists():
            SetEmailAddresses().run(ctx)
        if MailForwarding.objects.filter(customer=user).exists():
            SetForwarding().run(ctx)
