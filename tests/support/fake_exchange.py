"""Exchange emulated in memory for the test endpoint: accepted domains, address lists,
GALs, OABs, address book policies, users, mailboxes and contacts, with Exchange's own
error messages."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from typing import Any

from tests.support.exchange_cmdlets import (
    _CUSTOM_ATTRIBUTES,
    PROXY_ADDRESS,
    CmdletError,
    _task,
    already_exists,
    bind_parameters,
    cannot_bind,
    not_found,
    opath_quote,
)


class FakeExchange:
    """Exchange organization state; every method runs under the server's lock."""

    def __init__(self, *, domain: str, dc: str, databases: tuple[str, ...]) -> None:
        self.domain = domain
        self.dc = dc
        self.databases = list(databases)
        self.accepted_domains: dict[str, dict[str, Any]] = {}
        self.address_lists: dict[str, dict[str, Any]] = {}
        self.global_address_lists: dict[str, dict[str, Any]] = {}
        self.offline_address_books: dict[str, dict[str, Any]] = {}
        self.address_book_policies: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.disconnected_mailboxes: list[dict[str, Any]] = []
        self.known_users_only = False
        # Mail contacts by GUID (issue #12).
        self.mail_contacts: dict[str, dict[str, Any]] = {}

    # -- dispatch ---------------------------------------------------------------

    def execute(self, cmdlet: str, raw: dict[str, Any]) -> tuple[list[dict], list[str]]:
        params = bind_parameters(cmdlet, raw)
        verb, noun = cmdlet.split("-", 1)
        handler: Callable[..., tuple[list[dict], list[str]]] = getattr(
            self, f"_{verb.lower()}_{_snake(noun)}"
        )
        return handler(cmdlet, params)

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "accepted_domains": list(self.accepted_domains.values()),
                "address_lists": list(self.address_lists.values()),
                "global_address_lists": list(self.global_address_lists.values()),
                "offline_address_books": list(self.offline_address_books.values()),
                "address_book_policies": list(self.address_book_policies.values()),
                "users": [self._user_view(u) for u in self.users.values()],
                "mailboxes": [
                    {**u["mailbox"], "cas": u["cas"]} for u in self.users.values() if u["mailbox"]
                ],
                "disconnected_mailboxes": self.disconnected_mailboxes,
                "mail_contacts": list(self.mail_contacts.values()),
                "address_list_members": {
                    record["Name"]: self.address_list_members(record)
                    for table in (self.address_lists, self.global_address_lists)
                    for record in table.values()
                },
            }
        )

    def add_user(self, user_principal_name: str, name: str | None = None) -> dict[str, Any]:
        """A directory user that Enable-Mailbox can find (the directory is not emulated)."""
        guid = str(uuid.uuid4())
        user = {
            "Guid": guid,
            "Name": name or user_principal_name.split("@", 1)[0],
            "UserPrincipalName": user_principal_name,
            "DisplayName": name or user_principal_name.split("@", 1)[0],
            "FirstName": "",
            "LastName": "",
            "Company": "",
            "Department": "",
            "Title": "",
            "Phone": "",
            "mailbox": None,
            "cas": None,
        }
        self.users[guid] = user
        return user

    # -- lookups ----------------------------------------------------------------

    def _find(
        self, cmdlet: str, table: dict[str, dict[str, Any]], identity: str | None
    ) -> list[dict[str, Any]]:
        if identity is None:
            return list(table.values())
        found = table.get(identity.lstrip("\\").casefold())
        if found is None:
            raise not_found(cmdlet, identity, self.dc)
        return [found]

    def _create(
        self, cmdlet: str, table: dict[str, dict[str, Any]], record: dict[str, Any], container: str
    ) -> tuple[list[dict], list[str]]:
        key = record["Name"].casefold()
        if key in table:
            raise already_exists(cmdlet, f"CN={record['Name']},{container}", self.dc)
        record.setdefault("Guid", str(uuid.uuid4()))
        table[key] = record
        return [copy.deepcopy(record)], []

    def _resolve_user(self, cmdlet: str, identity: str) -> dict[str, Any]:
        folded = identity.casefold()
        matches = []
        for user in self.users.values():
            keys = {user["Guid"], user["Name"], user["UserPrincipalName"]}
            if user["mailbox"]:
                keys |= {user["mailbox"]["Alias"], user["mailbox"]["PrimarySmtpAddress"]}
            if folded in {k.casefold() for k in keys}:
                matches.append(user)
        if len(matches) > 1:
            raise CmdletError(
                f"The operation couldn't be performed because '{identity}' matches multiple "
                "entries.",
                "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
                "NotSpecified",
                "[FailureCategory=Cmdlet-ManagementObjectAmbiguousException] 8A3F1C2B,"
                + _task(cmdlet),
            )
        if not matches:
            raise not_found(cmdlet, identity, self.dc)
        return matches[0]

    def _mailbox_user(self, cmdlet: str, identity: str) -> dict[str, Any]:
        user = self._resolve_user(cmdlet, identity)
        if not user["mailbox"]:
            raise not_found(cmdlet, identity, self.dc)
        return user

    def _user_view(self, user: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in user.items() if k not in ("mailbox", "cas")}
        view["Identity"] = user["Name"]
        view["RecipientType"] = "UserMailbox" if user["mailbox"] else "User"
        return view

    def _list_ref(self, cmdlet: str, table: dict[str, dict[str, Any]], name: str) -> str:
        return self._find(cmdlet, table, name)[0]["Identity"]

    # -- accepted domains ------------------------------------------------------

    def _get_accepted_domain(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        return copy.deepcopy(self._find(cmdlet, self.accepted_domains, p.get("Identity"))), []

    def _new_accepted_domain(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        for existing in self.accepted_domains.values():
            if existing["DomainName"].casefold() == p["DomainName"].casefold():
                raise already_exists(
                    cmdlet,
                    f"CN={existing['Name']},CN=Accepted Domains,CN=Transport Settings",
                    self.dc,
                )
        record = {
            "Name": p["Name"],
            "Identity": p["Name"],
            "DomainName": p["DomainName"],
            "DomainType": p.get("DomainType") or "Authoritative",
            "Default": False,
        }
        return self._create(cmdlet, self.accepted_domains, record, "CN=Accepted Domains")

    # -- address lists and GALs -------------------------------------------------

    def _filter_record(self, cmdlet: str, p: dict) -> dict[str, Any]:
        conditional = {k: v for k, v in p.items() if k.startswith("Conditional")}
        if p.get("RecipientFilter") and (p.get("IncludedRecipients") or conditional):
            raise CmdletError(
                "Parameter set cannot be resolved using the specified named parameters.",
                "System.Management.Automation.ParameterBindingException",
                "InvalidArgument",
                "AmbiguousParameterSet," + _task(cmdlet),
            )
        # Binding already checked the names and spelled them as Exchange does.
        included = [part.strip() for part in (p.get("IncludedRecipients") or "").split(",")]
        included = [part for part in included if part]
        if p.get("RecipientFilter"):
            recipient_filter = p["RecipientFilter"]
        else:
            clauses = [
                "(" + " -or ".join(f"{key[11:]} -eq {opath_quote(v)}" for v in values) + ")"
                for key, values in sorted(conditional.items())
                if values
            ]
            clauses.append("(Alias -ne $null)")
            recipient_filter = "(" + " -and ".join(clauses) + ")"
        return {
            "Name": p["Name"],
            "DisplayName": p.get("DisplayName") or p["Name"],
            "Identity": "\\" + p["Name"],
            "Path": "\\" + p["Name"],
            "IncludedRecipients": ", ".join(included) if included else None,
            "ConditionalCustomAttribute1": p.get("ConditionalCustomAttribute1", []),
            "ConditionalCompany": p.get("ConditionalCompany", []),
            "ConditionalDepartment": p.get("ConditionalDepartment", []),
            "RecipientFilter": recipient_filter,
        }

    def _get_address_list(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        return copy.deepcopy(self._find(cmdlet, self.address_lists, p.get("Identity"))), []

    def _new_address_list(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        record = self._filter_record(cmdlet, p)
        return self._create(
            cmdlet, self.address_lists, record, "CN=All Address Lists,CN=Address Lists Container"
        )

    def _get_global_address_list(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        table = self.global_address_lists
        return copy.deepcopy(self._find(cmdlet, table, p.get("Identity"))), []

    def _new_global_address_list(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        record = self._filter_record(cmdlet, p)
        return self._create(
            cmdlet,
            self.global_address_lists,
            record,
            "CN=All Global Address Lists,CN=Address Lists Container",
        )

    # -- offline address books and policies -----------------------------------

    def _get_offline_address_book(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        table = self.offline_address_books
        return copy.deepcopy(self._find(cmdlet, table, p.get("Identity"))), []

    def _new_offline_address_book(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        lists = []
        for name in p["AddressLists"]:
            key = name.lstrip("\\").casefold()
            found = self.address_lists.get(key) or self.global_address_lists.get(key)
            if found is None:
                raise not_found(cmdlet, name, self.dc)
            lists.append(found["Identity"])
        record = {
            "Name": p["Name"],
            "Identity": "\\" + p["Name"],
            "AddressLists": lists,
            "GlobalWebDistributionEnabled": p.get("GlobalWebDistributionEnabled", False),
            "VirtualDirectories": p.get("VirtualDirectories", []),
            "IsDefault": False,
        }
        return self._create(cmdlet, self.offline_address_books, record, "CN=Offline Address Lists")

    def _get_address_book_policy(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        table = self.address_book_policies
        return copy.deepcopy(self._find(cmdlet, table, p.get("Identity"))), []

    def _new_address_book_policy(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        record = {
            "Name": p["Name"],
            "Identity": p["Name"],
            "GlobalAddressList": self._list_ref(
                cmdlet, self.global_address_lists, p["GlobalAddressList"]
            ),
            "OfflineAddressBook": self._list_ref(
                cmdlet, self.offline_address_books, p["OfflineAddressBook"]
            ),
            "RoomList": self._list_ref(cmdlet, self.address_lists, p["RoomList"]),
            "AddressLists": [
                self._list_ref(cmdlet, self.address_lists, name) for name in p["AddressLists"]
            ],
        }
        return self._create(
            cmdlet, self.address_book_policies, record, "CN=AddressBook Mailbox Policies"
        )

    # -- removals ----------------------------------------------------------------
    # Exchange refuses to remove an object another one still refers to (a list named by a
    # policy or an offline address book, a policy assigned to mailboxes, a domain that
    # mailboxes still have addresses in), so a teardown must go in order. The refusal
    # texts are this endpoint's own wording of Exchange's (docs/exchange.md).

    def _in_use(self, cmdlet: str, what: str, name: str, users: str) -> CmdletError:
        return CmdletError(
            f"The {what} '{name}' can't be removed because it is used by {users}.",
            "Microsoft.Exchange.Configuration.Tasks.TaskInvalidOperationException",
            "InvalidOperation",
            "[FailureCategory=Cmdlet-TaskInvalidOperationException] 6E1D0A39," + _task(cmdlet),
        )

    def _remove(
        self, cmdlet: str, table: dict[str, dict[str, Any]], identity: str
    ) -> dict[str, Any]:
        record = self._find(cmdlet, table, identity)[0]
        del table[record["Name"].casefold()]
        return record

    def _referrers(self, identity: str, *fields: str) -> list[str]:
        found = []
        for table in (self.address_book_policies, self.offline_address_books):
            for record in table.values():
                for field_name in fields:
                    value = record.get(field_name)
                    values = value if isinstance(value, list) else [value]
                    if any(str(v or "").casefold() == identity.casefold() for v in values):
                        found.append(record["Name"])
        return found

    def _remove_address_book_policy(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        policy = self._find(cmdlet, self.address_book_policies, p["Identity"])[0]
        assigned = [u["mailbox"]["PrimarySmtpAddress"] for u in self.users.values()
                    if u["mailbox"] and str(u["mailbox"].get("AddressBookPolicy") or "")
                    .casefold() == policy["Name"].casefold()]
        if assigned:
            raise self._in_use(cmdlet, "address book policy", policy["Name"],
                               f"{len(assigned)} mailbox(es)")
        self._remove(cmdlet, self.address_book_policies, p["Identity"])
        return [], []

    def _remove_offline_address_book(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        book = self._find(cmdlet, self.offline_address_books, p["Identity"])[0]
        referrers = self._referrers(book["Identity"], "OfflineAddressBook")
        if referrers:
            raise self._in_use(cmdlet, "offline address book", book["Name"],
                               ", ".join(referrers))
        self._remove(cmdlet, self.offline_address_books, p["Identity"])
        return [], []

    def _remove_address_list(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        record = self._find(cmdlet, self.address_lists, p["Identity"])[0]
        referrers = self._referrers(record["Identity"], "RoomList", "AddressLists")
        if referrers:
            raise self._in_use(cmdlet, "address list", record["Name"], ", ".join(referrers))
        self._remove(cmdlet, self.address_lists, p["Identity"])
        return [], []

    def _remove_global_address_list(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        record = self._find(cmdlet, self.global_address_lists, p["Identity"])[0]
        referrers = self._referrers(record["Identity"], "GlobalAddressList", "AddressLists")
        if referrers:
            raise self._in_use(cmdlet, "global address list", record["Name"],
                               ", ".join(referrers))
        self._remove(cmdlet, self.global_address_lists, p["Identity"])
        return [], []

    def _remove_accepted_domain(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        record = self._find(cmdlet, self.accepted_domains, p["Identity"])[0]
        domain = "@" + record["DomainName"].casefold()
        addresses = [a for u in self.users.values() if u["mailbox"]
                     for a in sorted(self._smtp_addresses_of(u["mailbox"]))
                     if a.endswith(domain)]
        if addresses:
            raise self._in_use(cmdlet, "accepted domain", record["Name"],
                               f"{len(addresses)} recipient address(es)")
        self._remove(cmdlet, self.accepted_domains, p["Identity"])
        return [], []

    # -- users and mailboxes -----------------------------------------------------

    def _get_user(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        if p.get("Identity") is None:
            return [self._user_view(u) for u in self.users.values()], []
        return [self._user_view(self._resolve_user(cmdlet, p["Identity"]))], []

    def _set_user(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        user = self._resolve_user(cmdlet, p["Identity"])
        return [], self._apply(user, p, p["Identity"])

    @staticmethod
    def _apply(record: dict[str, Any], p: dict, identity: str) -> list[str]:
        changed = False
        for key, value in p.items():
            if key != "Identity" and record.get(key) != value:
                record[key] = value
                changed = True
        if changed:
            return []
        return [
            f"The command completed successfully but no settings of '{identity}' have been "
            "modified."
        ]

    def _get_mailbox(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        if p.get("Identity") is None:
            return [copy.deepcopy(u["mailbox"]) for u in self.users.values() if u["mailbox"]], []
        return [copy.deepcopy(self._mailbox_user(cmdlet, p["Identity"])["mailbox"])], []

    def _enable_mailbox(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        identity = p["Identity"]
        try:
            user = self._resolve_user(cmdlet, identity)
        except CmdletError:
            if self.known_users_only:
                raise
            user = self.add_user(identity, name=identity)
        if user["mailbox"]:
            raise CmdletError(
                f'The user "{user["Name"]}" is already mailbox-enabled.',
                "Microsoft.Exchange.Configuration.Tasks.RecipientTaskException",
                "InvalidArgument",
                "[FailureCategory=Cmdlet-RecipientTaskException] 1E2F9A52," + _task(cmdlet),
            )
        database = p.get("Database") or self.databases[0]
        if database.casefold() not in {d.casefold() for d in self.databases}:
            raise not_found(cmdlet, database, self.dc)
        policy = p.get("AddressBookPolicy")
        if policy:
            policy = self._find(cmdlet, self.address_book_policies, policy)[0]["Name"]
        local = user["UserPrincipalName"].split("@", 1)[0]
        alias = p.get("Alias") or re.sub(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]", "", local) or "user"
        domain = (
            user["UserPrincipalName"].split("@", 1)[1]
            if "@" in user["UserPrincipalName"]
            else self.domain
        )
        smtp = p.get("PrimarySmtpAddress") or f"{alias}@{domain}"
        user["mailbox"] = {
            "Name": user["Name"],
            "Identity": user["Name"],
            "Alias": alias,
            "DisplayName": p.get("DisplayName") or user["DisplayName"],
            "UserPrincipalName": user["UserPrincipalName"],
            "PrimarySmtpAddress": smtp,
            "EmailAddresses": [f"SMTP:{smtp}"],
            "Database": database,
            "Guid": user["Guid"],
            "ExchangeGuid": str(uuid.uuid4()),
            "RecipientTypeDetails": "UserMailbox",
            "UseDatabaseQuotaDefaults": True,
            "ProhibitSendQuota": "Unlimited",
            "ProhibitSendReceiveQuota": "Unlimited",
            "IssueWarningQuota": "Unlimited",
            "AddressBookPolicy": policy or None,
            "HiddenFromAddressListsEnabled": False,
            "EmailAddressPolicyEnabled": True,
            "ForwardingAddress": None,
            "ForwardingSmtpAddress": None,
            "DeliverToMailboxAndForward": False,
            **{name: "" for name in _CUSTOM_ATTRIBUTES},
        }
        user["cas"] = {
            "Name": user["Name"],
            "Identity": user["Name"],
            "OWAEnabled": True,
            "PopEnabled": True,
            "ImapEnabled": True,
            "MAPIEnabled": True,
            "ActiveSyncEnabled": True,
            "EwsEnabled": True,
            "OwaMailboxPolicy": None,
        }
        return [copy.deepcopy(user["mailbox"])], []

    def _set_mailbox(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        user = self._mailbox_user(cmdlet, p["Identity"])
        if p.get("AddressBookPolicy"):
            policy = self._find(cmdlet, self.address_book_policies, p["AddressBookPolicy"])[0]
            p = {**p, "AddressBookPolicy": policy["Name"]}
        # Everything is checked before anything is written: a refused call changes nothing.
        if "EmailAddresses" in p:
            p = {**p, **self._email_addresses(cmdlet, user, p)}
        if p.get("ForwardingAddress") is not None:
            target = self._resolve_user(cmdlet, p["ForwardingAddress"])
            if not target["mailbox"]:
                raise not_found(cmdlet, p["ForwardingAddress"], self.dc)
            p = {**p, "ForwardingAddress": target["Name"]}
        if p.get("ForwardingSmtpAddress") is not None:
            p = {**p, "ForwardingSmtpAddress": "smtp:" + self._smtp_address(
                cmdlet, "ForwardingSmtpAddress", p["ForwardingSmtpAddress"], prefixes=("smtp",))}
        return [], self._apply(user["mailbox"], p, p["Identity"])

    # -- a mailbox's proxy addresses --------------------------------------------------
    # Exchange checks a recipient's EmailAddresses as a whole: well-formed proxy
    # addresses, one primary SMTP address (SMTP: in capitals), every SMTP address in an
    # accepted domain (RecipientTaskHelper.ValidateSmtpAddress: NotAcceptedDomainException)
    # and none used by another recipient (ProxyAddressExistsException). The texts of the
    # first three are this stand-in's wording (docs/exchange.md).

    SMTP_PATTERN = re.compile(r"^[^@\s:\\\"<>()\[\],;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

    def _smtp_address(
        self, cmdlet: str, name: str, value: str, prefixes: tuple[str, ...] = ("smtp",)
    ) -> str:
        prefix, colon, address = value.partition(":")
        if not colon:
            prefix, address = "smtp", value
        if prefix.casefold() not in prefixes or not self.SMTP_PATTERN.match(address):
            raise cannot_bind(
                cmdlet,
                name,
                f'Cannot convert value "{value}" to type "Microsoft.Exchange.Data.ProxyAddress". '
                f'Error: "The e-mail address "{address}" isn\'t correct. Please use this format: '
                "user name, the @ sign, followed by the domain name. For example, "
                'tonysmith@contoso.com or tony.smith@contoso.com."',
            )
        return address

    @staticmethod
    def _smtp_addresses_of(mailbox: dict[str, Any]) -> set[str]:
        return {
            item.split(":", 1)[1].casefold()
            for item in mailbox.get("EmailAddresses") or []
            if item.casefold().startswith("smtp:")
        }

    def _email_addresses(self, cmdlet: str, user: dict[str, Any], p: dict) -> dict[str, Any]:
        mailbox = user["mailbox"]
        listed, seen, primaries = [], set(), []
        for item in p["EmailAddresses"]:
            prefix, colon, _rest = item.partition(":")
            if colon and prefix.casefold() != "smtp":
                listed.append(item)  # X500:, SIP: … are kept as they are
                continue
            address = self._smtp_address(cmdlet, "EmailAddresses", item)
            if address.casefold() in seen:
                raise CmdletError(
                    f'The value "smtp:{address}" is already present in the collection.',
                    "Microsoft.Exchange.Data.DataValidationException",
                    "InvalidData",
                    "[FailureCategory=Cmdlet-DataValidationException] 3C1B22F0," + _task(cmdlet),
                )
            seen.add(address.casefold())
            if colon and prefix == "SMTP":
                primaries.append(address)
                listed.append(f"SMTP:{address}")
            else:
                listed.append(f"smtp:{address}")
        if len(primaries) != 1:
            raise CmdletError(
                "The EmailAddresses property must contain exactly one primary SMTP address "
                f"(SMTP: in capital letters); it contains {len(primaries)}.",
                "Microsoft.Exchange.Data.DataValidationException",
                "InvalidData",
                "[FailureCategory=Cmdlet-DataValidationException] 3C1B22F1," + _task(cmdlet),
            )
        accepted = {d["DomainName"].casefold() for d in self.accepted_domains.values()}
        for address in seen:
            domain = address.rsplit("@", 1)[1]
            if domain not in accepted:
                raise CmdletError(
                    f"The domain {domain} of the address {address} isn't an accepted domain "
                    "of this Exchange organization.",
                    "Microsoft.Exchange.Configuration.Tasks.NotAcceptedDomainException",
                    "NotSpecified",
                    "[FailureCategory=Cmdlet-NotAcceptedDomainException] 9F2E6C11,"
                    + _task(cmdlet),
                )
        for other in self.users.values():
            if other is user or not other["mailbox"]:
                continue
            taken = seen & self._smtp_addresses_of(other["mailbox"])
            if taken:
                item = next(i for i in listed if i.split(":", 1)[1].casefold() in taken)
                raise CmdletError(
                    f'The proxy address "{item}" is already being used by the proxy '
                    f'addresses or LegacyExchangeDN of "{other["Name"]}". Please choose '
                    "another proxy address.",
                    "Microsoft.Exchange.Configuration.ObjectModel.ProxyAddressExistsException",
                    "NotSpecified",
                    "[FailureCategory=Cmdlet-ProxyAddressExistsException] 6BD3A1C4,"
                    + _task(cmdlet),
                )
        policy = p.get("EmailAddressPolicyEnabled", mailbox.get("EmailAddressPolicyEnabled"))
        if policy and primaries[0].casefold() != str(mailbox["PrimarySmtpAddress"]).casefold():
            raise CmdletError(
                "The primary SMTP address can't be changed while EmailAddressPolicyEnabled is "
                "$true: the email address policy would put its own back.",
                "Microsoft.Exchange.Configuration.Tasks.RecipientTaskException",
                "InvalidOperation",
                "[FailureCategory=Cmdlet-RecipientTaskException] 5A0E7D93," + _task(cmdlet),
            )
        return {
            "EmailAddresses": listed,
            "PrimarySmtpAddress": primaries[0],
            "WindowsEmailAddress": primaries[0],
        }

    def _disable_mailbox(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        user = self._mailbox_user(cmdlet, p["Identity"])
        self.disconnected_mailboxes.append(
            {**user["mailbox"], "DisconnectReason": "Disabled", "cas": user["cas"]}
        )
        user["mailbox"] = None
        user["cas"] = None
        return [], []

    def _connect_mailbox(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        """A disconnected mailbox, found by its ExchangeGuid (or name) in the database it
        was disconnected from, back on a directory user that has no mailbox."""
        wanted, database = p["Identity"].casefold(), p["Database"].casefold()
        found = [m for m in self.disconnected_mailboxes
                 if wanted in {str(m.get("ExchangeGuid", "")).casefold(),
                               str(m.get("Name", "")).casefold()}
                 and str(m.get("Database", "")).casefold() == database]
        if not found:
            raise not_found(cmdlet, p["Identity"], self.dc)
        if not p.get("User"):
            raise CmdletError(
                "The parameter User is required to connect a user mailbox.",
                "Microsoft.Exchange.Configuration.Tasks.TaskArgumentException",
                "InvalidArgument",
                "[FailureCategory=Cmdlet-TaskArgumentException] 4D0C2B71," + _task(cmdlet),
            )
        user = self._resolve_user(cmdlet, p["User"])
        if user["mailbox"]:
            raise CmdletError(
                f'The user "{user["Name"]}" is already mailbox-enabled.',
                "Microsoft.Exchange.Configuration.Tasks.RecipientTaskException",
                "InvalidArgument",
                "[FailureCategory=Cmdlet-RecipientTaskException] 1E2F9A52," + _task(cmdlet),
            )
        record = found[0]
        self.disconnected_mailboxes.remove(record)
        mailbox = {k: v for k, v in record.items() if k not in ("DisconnectReason", "cas")}
        # Exchange clears the directory's mail attributes on Disable-Mailbox: the tenant tag
        # and the address book policy come back only when the panel sets them again.
        mailbox.update({"AddressBookPolicy": None, "CustomAttribute1": "",
                        "Identity": user["Name"], "Name": user["Name"]})
        user["mailbox"] = mailbox
        user["cas"] = {**record["cas"], "Identity": user["Name"], "Name": user["Name"]}
        return [], []

    def _get_c_a_s_mailbox(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        if p.get("Identity") is None:
            return [copy.deepcopy(u["cas"]) for u in self.users.values() if u["cas"]], []
        return [copy.deepcopy(self._mailbox_user(cmdlet, p["Identity"])["cas"])], []

    def _set_c_a_s_mailbox(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        user = self._mailbox_user(cmdlet, p["Identity"])
        return [], self._apply(user["cas"], p, p["Identity"])


    # -- mail contacts (issue #12) ------------------------------------------------------
    # A mail contact is an AD contact in an OU: its Name is its CN there, unique within the
    # OU only. Its external address becomes its primary SMTP proxy address, which must be
    # unique among all recipients of the Exchange organization, as Exchange requires.

    def _proxy_addresses(self) -> dict[str, str]:
        """{folded SMTP address: the recipient's name} of every recipient."""
        found = {}
        for user in self.users.values():
            if user["mailbox"]:
                for address in user["mailbox"].get("EmailAddresses") or []:
                    found[_bare_smtp(address)] = user["Name"]
        for contact in self.mail_contacts.values():
            for address in contact["EmailAddresses"]:
                found[_bare_smtp(address)] = contact["Name"]
        return found

    def _resolve_contact(self, cmdlet: str, identity: str) -> dict[str, Any]:
        folded = identity.casefold()
        matches = [
            contact for contact in self.mail_contacts.values()
            if folded in {str(contact[key]).casefold() for key in
                          ("Guid", "DistinguishedName", "Name", "Alias")}
        ]
        if len(matches) > 1:
            raise CmdletError(
                f"The operation couldn't be performed because '{identity}' matches multiple "
                "entries.",
                "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
                "NotSpecified",
                "[FailureCategory=Cmdlet-ManagementObjectAmbiguousException] 8A3F1C2B,"
                + _task(cmdlet),
            )
        if not matches:
            raise not_found(cmdlet, identity, self.dc)
        return matches[0]

    def _get_mail_contact(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        if p.get("Identity") is None:
            return copy.deepcopy(list(self.mail_contacts.values())), []
        return [copy.deepcopy(self._resolve_contact(cmdlet, p["Identity"]))], []

    def _new_mail_contact(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        unit = p.get("OrganizationalUnit") or f"CN=Users,DC={self.domain.split('.')[0]}"
        if not re.match(r"^(OU|CN)=", unit, re.IGNORECASE):
            raise not_found(cmdlet, unit, self.dc)
        external = _bare_smtp(p["ExternalEmailAddress"])
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", external):
            raise cannot_bind(
                cmdlet, "ExternalEmailAddress",
                f'Cannot convert value "{p["ExternalEmailAddress"]}" to type '
                f'"{PROXY_ADDRESS.type_name}". Error: "The address '
                f"'{p['ExternalEmailAddress']}' is invalid.\"",
            )
        dn = f"CN={_escape_rdn(p['Name'])},{unit}"
        for contact in self.mail_contacts.values():
            if contact["DistinguishedName"].casefold() == dn.casefold():
                raise already_exists(cmdlet, dn, self.dc)
        holder = self._proxy_addresses().get(external.casefold())
        if holder is not None:
            raise CmdletError(
                f'The proxy address "SMTP:{external}" is already being used by the proxy '
                f'addresses or LegacyExchangeDN of "{holder}". Please choose another proxy '
                "address.",
                "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException",
                "NotSpecified",
                "[FailureCategory=Cmdlet-ProxyAddressExistsException] 4C9B7D21," + _task(cmdlet),
            )
        alias = p.get("Alias") or re.sub(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]", "",
                                         p["Name"]) or "contact"
        guid = str(uuid.uuid4())
        record = {
            "Name": p["Name"],
            "Identity": p["Name"],
            "DisplayName": p.get("DisplayName") or p["Name"],
            "Alias": alias,
            "DistinguishedName": dn,
            "OrganizationalUnit": unit,
            "ExternalEmailAddress": f"SMTP:{external}",
            "PrimarySmtpAddress": external,
            "EmailAddresses": [f"SMTP:{external}"],
            "RecipientType": "MailContact",
            "RecipientTypeDetails": "MailContact",
            "HiddenFromAddressListsEnabled": False,
            "Guid": guid,
            **{name: "" for name in _CUSTOM_ATTRIBUTES},
        }
        self.mail_contacts[guid] = record
        return [copy.deepcopy(record)], []

    def _set_mail_contact(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        contact = self._resolve_contact(cmdlet, p["Identity"])
        return [], self._apply(contact, p, p["Identity"])

    def _remove_mail_contact(self, cmdlet: str, p: dict) -> tuple[list[dict], list[str]]:
        contact = self._resolve_contact(cmdlet, p["Identity"])
        del self.mail_contacts[contact["Guid"]]
        return [], []

    def address_list_members(self, record: dict[str, Any]) -> list[str]:
        """The names of the recipients an address list (or GAL) made from precanned
        conditions shows: the recipient types it includes whose CustomAttribute1 is one of
        its ConditionalCustomAttribute1 values (every one, when it names none)."""
        included = {part.strip().casefold() for part in
                    str(record.get("IncludedRecipients") or "").split(",") if part.strip()}
        tags = {str(t).casefold() for t in record.get("ConditionalCustomAttribute1") or []}

        def shown(kind: str, attributes: dict[str, Any]) -> bool:
            if not ({"allrecipients", kind} & included):
                return False
            if attributes.get("HiddenFromAddressListsEnabled"):
                return False
            return not tags or str(attributes.get("CustomAttribute1") or "").casefold() in tags

        members = [u["Name"] for u in self.users.values()
                   if u["mailbox"] and shown("mailboxusers", u["mailbox"])]
        members += [c["Name"] for c in self.mail_contacts.values() if shown("mailcontacts", c)]
        return sorted(members)


def _bare_smtp(address: str) -> str:
    text = str(address or "").strip()
    return text[5:] if text[:5].casefold() == "smtp:" else text


def _escape_rdn(value: str) -> str:
    """An RDN value escaped as RFC 4514 (and ldap3's escape_rdn, which the panel uses)."""
    escaped = "".join("\\" + ch if ch in '\\,+"<>;=' else ch for ch in value)
    if escaped.startswith(("#", " ")):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def _snake(noun: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", noun).lower()
