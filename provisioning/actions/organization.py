"""An organization: its OU and Exchange objects, suspension, domains, and its teardown."""

from .. import constants as c
from ..directory import PermanentDirectoryError, TenantMark
from ..models import Customer, MailContact
from .base import Action, link, organization_names, owner_mark, record_once, undo_created
from .contacts import remove_contacts


class ProvisionOrganization(Action):
    """OU under the root OU, its UPN suffixes, its universal security group."""

    def run(self, ctx):
        org = ctx.customer
        directory = ctx.directory
        # The root OU is shared by every organization: never marked, never removed.
        ctx.step("root_ou", directory.ensure_root_ou)
        guid = ctx.provision("org_ou", org, lambda mark: directory.ensure_org_ou(org.name, mark))
        link(org, guid)
        for domain in org.assets.exclude(status_id=c.DELETED).values_list("name", flat=True):
            ctx.step(f"upn_suffix:{domain}", lambda d=domain: directory.add_upn_suffix(org.name, d))
        ctx.provision("group", org, lambda mark: directory.ensure_org_group(org.name, mark))
        if ctx.exchange is not None:
            self.exchange(ctx, org)

    def exchange(self, ctx, org):
        """Accepted domains, then the tenant's address lists, GAL, offline address book
        and address book policy, all scoped by the tag CustomAttribute1=<org>."""
        exchange, names = ctx.exchange, organization_names(org)
        for domain in org.assets.exclude(status_id=c.DELETED).values_list("name", flat=True):
            ctx.step(f"accepted_domain:{domain}",
                     lambda d=domain: bool(exchange.ensure_accepted_domain(d)))
        record_once(org, c.EXCH_SERVICE_ADDED, tenant=org.name)
        ctx.step("address_list", lambda: bool(
            exchange.ensure_address_list(names["all_users"], org.name)))
        ctx.step("room_list", lambda: bool(
            exchange.ensure_address_list(names["rooms"], org.name, "Resources")))
        ctx.step("global_address_list", lambda: bool(
            exchange.ensure_global_address_list(names["gal"], org.name)))
        ctx.step("offline_address_book", lambda: bool(
            exchange.ensure_offline_address_book(names["oab"], [names["gal"]])))
        ctx.step("address_book_policy", lambda: bool(exchange.ensure_address_book_policy(
            names["abp"], global_address_list=names["gal"], offline_address_book=names["oab"],
            room_list=names["rooms"], address_lists=[names["all_users"]])))
        record_once(org, c.ADDRESS_LISTS_CREATED,
                    lists=[names["all_users"], names["rooms"], names["gal"]])

    def compensate(self, ctx):
        # The UPN suffixes live on the OU: gone with it, to be written again.
        undo_created(ctx, ctx.customer, {"org_ou": ("upn_suffix:",)})


class SetOrganizationEnabled(Action):
    """Suspending an organization disables every one of its users in the directory;
    resuming enables those that are not disabled on their own."""

    def run(self, ctx):
        enabled = ctx.params["enabled"]
        users = Customer.objects.filter(parent=ctx.customer).users().live().exclude(
            object_guid=None)
        if enabled:
            users = users.filter(status_id=c.ENABLED)
        for guid in users.values_list("object_guid", flat=True):
            ctx.step(f"user:{guid}", lambda g=guid: ctx.directory.set_enabled(str(g), enabled))


class AddDomain(Action):
    def run(self, ctx):
        org = ctx.customer
        domain = ctx.params["domain"]
        ctx.step(f"upn_suffix:{domain}", lambda: ctx.directory.add_upn_suffix(org.name, domain))
        if ctx.exchange is not None:
            ctx.step(f"accepted_domain:{domain}",
                     lambda: bool(ctx.exchange.ensure_accepted_domain(domain)))


class DeleteOrganization(Action):
    """The organization's teardown, in the order Exchange requires (SolidCP's
    DeleteOrganization keeps it too): the mailboxes, its mail contacts, then the address
    book policy that
    names the lists, the offline address book, the address lists and the GAL, then the
    accepted domains; then in the directory what its OU holds, deepest first, and the OU
    (its UPN suffixes go with it). The customer rows stay, marked Deleted.

    Only what the panel made for this organization goes: an Exchange object of the same
    name that is not the organization's, or a directory object in its OU that carries no
    mark of it or of its users, stops the teardown and is named; once someone moves it
    away, a retry goes on from the step it stopped at."""

    def run(self, ctx):
        org = ctx.customer
        users = list(Customer.objects.filter(parent=org).users().exclude(object_guid=None)
                     .values_list("object_guid", flat=True))
        if ctx.exchange is not None:
            self.exchange(ctx, org, [str(guid) for guid in users])
        if org.object_guid is None:
            ctx.note("org_ou", "skipped", "never provisioned")
            return
        directory, org_guid = ctx.directory, str(org.object_guid)
        owners = {owner_mark(org)} | {
            owner_mark(Customer(pk=pk)) for pk in
            Customer.objects.filter(parent=org).values_list("pk", flat=True)}
        recorded = {str(guid) for guid in users}
        # A mail contact's Exchange GUID is its directory objectGUID (issue #12).
        recorded |= {str(guid) for guid in MailContact.objects.filter(organization=org)
                     .exclude(exchange_guid=None).values_list("exchange_guid", flat=True)}
        inside = directory.list_under(org_guid)
        foreign = [e["dn"] for e in inside if e["objectGUID"] not in recorded
                   and TenantMark.owner_of(e) not in owners]
        if foreign:
            raise PermanentDirectoryError(
                "The organization's OU holds objects the panel did not make for it; move or "
                "remove them, then retry: " + "; ".join(sorted(foreign)[:10]))
        # Deepest first: an OU goes after what it holds.
        for entry in sorted(inside, key=lambda e: -e["dn"].count(",")):
            ctx.step(f"removed:{entry['objectGUID']}",
                     lambda g=entry["objectGUID"]: directory.delete(g) or True)
        ctx.step("org_ou", lambda: directory.delete(org_guid) or True)

    def exchange(self, ctx, org, users):
        exchange, names = ctx.exchange, organization_names(org)
        for guid in users:
            # Disconnected, as Disable-Mailbox leaves it: Exchange keeps the data for its
            # retention time, and the user's deletion below removes the account.
            ctx.step(f"mailbox_disconnected:{guid}", lambda g=guid: exchange.disable_mailbox(g))
        remove_contacts(ctx, org)
        ctx.step("address_book_policy_removed", lambda: exchange.remove_address_book_policy(
            names["abp"], global_address_list=names["gal"], offline_address_book=names["oab"],
            room_list=names["rooms"], address_lists=[names["all_users"]]))
        ctx.step("offline_address_book_removed",
                 lambda: exchange.remove_offline_address_book(names["oab"], [names["gal"]]))
        ctx.step("address_list_removed",
                 lambda: exchange.remove_address_list(names["all_users"], org.name))
        ctx.step("room_list_removed",
                 lambda: exchange.remove_address_list(names["rooms"], org.name, "Resources"))
        ctx.step("global_address_list_removed",
                 lambda: exchange.remove_global_address_list(names["gal"], org.name))
        for domain in org.assets.values_list("name", flat=True):
            ctx.step(f"accepted_domain_removed:{domain}",
                     lambda d=domain: exchange.remove_accepted_domain(d))
