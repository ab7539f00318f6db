"""A user's account and mailbox: provision, rename, enable or disable, reset the password,
change the service plan, delete."""

from servicplans.features import plan_settings

from ..directory import ObjectExistsError, PermanentDirectoryError
from .base import Action, apply_mailbox_settings, link, organization_names, undo_created


class ProvisionUser(Action):
    """The user, created disabled, given its password, enabled, put in the org's group;
    then the plan's directory attributes."""

    def run(self, ctx):
        user = ctx.customer
        guid = ctx.provision("user", user, lambda mark: self.create(ctx, user, mark))
        link(user, guid)
        if user.service_plan is None:
            return
        settings = plan_settings(user.service_plan)
        if settings.directory:
            ctx.step("properties",
                     lambda: ctx.directory.set_attributes(guid, settings.directory))
        if ctx.exchange is not None:
            org = user.organization
            ctx.step("mailbox", lambda: bool(ctx.exchange.enable_mailbox(
                guid, ctx.exchange.settings.default_database or None)))
            # The tenant tag and the address book policy place the mailbox in its
            # organization's lists; the plan decides quota, visibility and protocols.
            settings.mailbox.update(CustomAttribute1=org.name,
                                    AddressBookPolicy=organization_names(org)["abp"])
            apply_mailbox_settings(ctx, guid, settings)

    def create(self, ctx, user, mark):
        """Another worker may take the same logon name or CN a moment earlier: then pick
        the next free one. Anything else taken is the customer's to resolve."""
        if ctx.secret is None:
            raise PermanentDirectoryError("The user's password is missing: retry the "
                                          "operation with a new password.")
        directory = ctx.directory
        local_part = user.upn.split("@", 1)[0]
        cn = user.name
        for _ in range(5):
            sam = directory.make_sam_account_name(local_part)
            try:
                return directory.ensure_user(
                    user.organization.name, sam_account_name=sam, upn=user.upn,
                    display_name=user.name, given_name=ctx.params.get("given_name", ""),
                    surname=ctx.params.get("surname", ""), password=ctx.secret, cn=cn,
                    mark=mark)
            except ObjectExistsError:
                if directory.find_by_upn(user.upn) is not None:
                    raise  # the UPN itself belongs to an object outside this organization
                holder = directory.find_by_sam(sam)
                if holder is not None and holder.get("userPrincipalName") != user.upn:
                    continue
                # Two users may share a display name; their CNs in one OU may not.
                cn = f"{user.name} ({local_part})"
        raise PermanentDirectoryError(f"Could not find a free logon name for {user.upn}.")

    def compensate(self, ctx):
        def disconnect_mailbox(guid):
            # The mailbox of a user this operation made is this operation's too. Exchange
            # may be what failed: the user is removed all the same.
            if ctx.done("mailbox") and ctx.exchange is not None:
                try:
                    ctx.exchange.disable_mailbox(guid)
                except Exception as exc:  # noqa: BLE001 - reported in the journal
                    ctx.note("rollback_mailbox", "failed",
                             getattr(exc, "user_message", str(exc)))

        undo_created(ctx, ctx.customer, {"user": (
            "properties", "mailbox", "mailbox_settings", "client_access")},
            before_delete=disconnect_mailbox)


class RenameUser(Action):
    def run(self, ctx):
        p = ctx.params
        entry = ctx.step("rename", lambda: ctx.directory.rename(
            ctx.guid(), cn=p["display_name"], display_name=p["display_name"],
            # Absent: left as the directory holds it.
            given_name=p.get("given_name"), surname=p.get("surname")))
        link(ctx.customer, ctx.guid(), entry)


class SetUserEnabled(Action):
    def run(self, ctx):
        ctx.step("user_account_control",
                 lambda: ctx.directory.set_enabled(ctx.guid(), ctx.params["enabled"]))


class ResetPassword(Action):
    def run(self, ctx):
        if ctx.secret is None:
            raise PermanentDirectoryError("The new password is missing.")
        ctx.step("password", lambda: ctx.directory.set_password(ctx.guid(), ctx.secret))


class DeleteUser(Action):
    """Soft delete: the account is disabled in the directory, and its data is kept."""

    def run(self, ctx):
        if ctx.customer.object_guid is None:
            ctx.note("user_account_control", "skipped", "never provisioned")
            return
        ctx.step("user_account_control", lambda: ctx.directory.set_enabled(ctx.guid(), False))
        if ctx.exchange is not None and ctx.customer.service_plan_id is not None:
            # Disable-Mailbox disconnects: Exchange keeps the data for its retention time.
            ctx.step("mailbox_disconnected", lambda: ctx.exchange.disable_mailbox(ctx.guid()))


class ChangePlan(Action):
    """Applies only what differs between the old plan and the new one."""

    def run(self, ctx):
        from servicplans.models import ServicePlan

        plans = ServicePlan.objects.in_bulk(
            [p for p in (ctx.params.get("old_plan"), ctx.params.get("new_plan")) if p])
        old = plan_settings(plans.get(ctx.params.get("old_plan")))
        new = plan_settings(plans.get(ctx.params.get("new_plan")))
        changed = new.diff(old)
        if changed.directory:
            ctx.step("properties",
                     lambda: ctx.directory.set_attributes(ctx.guid(), changed.directory))
        if ctx.exchange is not None and (changed.mailbox or changed.cas):
            apply_mailbox_settings(ctx, ctx.guid(), changed)
