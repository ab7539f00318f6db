"""Active Directory client for provisioning hosted organizations (ldap3, no Django).

Layout in the directory::

    <base_dn>
      OU=<root_ou>                      ("Microsoft Exchange Hosted Organizations")
        OU=<org>                        uPNSuffixes = the organization's domains
          CN=<org>                      universal security group of the organization
          CN=<user>                     users, members of that group

Every write is idempotent, so a Celery task can repeat an operation whose reply
was lost: "already exists and matches" is success, "missing" is success for a
delete. Objects are addressed by objectGUID (``<GUID=...>``), which survives
renames and moves made outside the panel.

Errors are ``TransientDirectoryError`` (retry later: server down, timeout, busy)
or ``PermanentDirectoryError`` (retrying cannot help; ``user_message`` is meant
for a customer administrator).

``DryRunDirectoryClient`` runs the same logic against an in-memory directory
and journals the writes it would send.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

logger = logging.getLogger(__name__)

#: userAccountControl bits
UAC_ACCOUNTDISABLE = 0x2
UAC_NORMAL_ACCOUNT = 0x200
#: groupType of a universal security group (GROUP_TYPE_SECURITY_ENABLED | UNIVERSAL)
GROUP_TYPE_UNIVERSAL_SECURITY = -2147483640
#: Windows limits sAMAccountName to 20 characters for users (pre-Windows 2000 name).
SAM_MAX_LENGTH = 20
SAM_FORBIDDEN = set('"/\\[]:;|=,+*?<>@\'')

TREE_DELETE_CONTROL = "1.2.840.113556.1.4.805"
PAGED_RESULTS_CONTROL = "1.2.840.113556.1.4.319"
PAGE_SIZE = 500

#: Attributes that set_attributes() must never touch: they carry credentials or
#: security state and have their own, checked methods.
PROTECTED_ATTRIBUTES = frozenset(
    name.lower()
    for name in (
        "unicodePwd", "userPassword", "userAccountControl", "objectClass", "objectGUID",
        "objectSid", "sIDHistory", "nTSecurityDescriptor", "member", "memberOf",
        "primaryGroupID", "sAMAccountName", "userPrincipalName", "servicePrincipalName",
        "adminCount", "msDS-AllowedToDelegateTo",
    )
)
SECRET_ATTRIBUTES = frozenset({"unicodepwd", "userpassword"})
MASK = "********"

ENTRY_ATTRIBUTES = (
    "objectGUID", "objectClass", "cn", "name", "ou", "sAMAccountName", "userPrincipalName",
    "displayName", "givenName", "sn", "userAccountControl", "memberOf", "uPNSuffixes",
    "groupType", "pwdLastSet", "adminDescription",
)
MULTI_VALUED = frozenset(
    name.lower() for name in ("objectClass", "memberOf", "member", "uPNSuffixes")
)
INTEGER_ATTRIBUTES = frozenset(
    name.lower()
    for name in (
        "userAccountControl", "groupType", "pwdLastSet", "msExchOmaAdminWirelessEnable",
        "msExchMailboxFolderSet",
    )
)
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")

# ASCII spellings of letters that NFKD does not decompose.
ASCII_FOLD = str.maketrans({
    "ß": "ss", "Æ": "AE", "æ": "ae", "Ø": "O", "ø": "o", "Œ": "OE", "œ": "oe", "Þ": "Th",
    "þ": "th", "Ð": "D", "ð": "d", "Đ": "D", "đ": "d", "Ł": "L", "ł": "l", "ı": "i",
})


# -- settings and errors -------------------------------------------------------


@dataclass(frozen=True)
class DirectorySettings:
    host: str
    port: int = 636
    use_ssl: bool = True
    start_tls: bool = False
    verify_ca: bool = True
    ca_file: str | None = None
    base_dn: str = ""
    root_ou: str = "Microsoft Exchange Hosted Organizations"
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)
    connect_timeout: float = 5
    receive_timeout: float = 15

    @property
    def encrypted(self) -> bool:
        return self.use_ssl or self.start_tls


class DirectoryError(Exception):
    """A directory operation failed.

    ``user_message`` is plain language for the panel's users; ``detail`` is the
    server's own text for operators and logs. Neither ever holds a password.
    """

    def __init__(self, user_message: str, *, detail: str = "") -> None:
        super().__init__(f"{user_message} ({detail})" if detail else user_message)
        self.user_message = user_message
        self.detail = detail


class TransientDirectoryError(DirectoryError):
    """The directory could not be reached or was busy: retrying later may succeed."""


class PermanentDirectoryError(DirectoryError):
    """The directory refused the operation: retrying the same request cannot help."""


class ObjectExistsError(PermanentDirectoryError):
    """An object with this name already exists (entryAlreadyExists)."""


class NoSuchObjectError(PermanentDirectoryError):
    """The object, or the parent it should be created in, does not exist."""


class ForeignObjectError(PermanentDirectoryError):
    """An object of that name exists, but nothing proves it was made for this customer."""


@dataclass
class TenantMark:
    """Who an object is made for, written to ``adminDescription`` when it is created.

    ``owner`` names the customer, ``operation`` the journaled operation that made
    it. An existing object may be adopted only when it carries the same owner, or
    when its GUID is one the caller already recorded for the customer
    (``known_guids``); anything else is someone else's and is refused. Every object
    made (or found made by this very operation, after a lost reply) is appended to
    ``created``, which is what compensation may delete.
    """

    owner: str
    operation: str
    known_guids: frozenset[str] = frozenset()
    created: list[str] = field(default_factory=list)

    SEPARATOR = " op="

    @property
    def value(self) -> str:
        return f"{self.owner}{self.SEPARATOR}{self.operation}"

    @staticmethod
    def owner_of(entry: Mapping[str, Any]) -> str:
        return (entry.get("adminDescription") or "").split(TenantMark.SEPARATOR, 1)[0]

    def adopt(self, entry: Mapping[str, Any], what: str) -> str:
        """The entry's GUID if it is this customer's; ForeignObjectError otherwise."""
        guid = entry["objectGUID"]
        if guid not in self.known_guids and self.owner_of(entry) != self.owner:
            raise ForeignObjectError(
                f"{what} already exists in the directory and was not created by this "
                "panel for this customer. Rename it, or remove it from the directory, "
                "then retry.",
                detail=entry["dn"],
            )
        if entry.get("adminDescription") == self.value and guid not in self.created:
            # Made by this very operation on an attempt whose reply was lost.
            self.created.append(guid)
        return guid

    def made(self, guid: str) -> str:
        self.created.append(guid)
        return guid


UNREACHABLE = "The directory server cannot be reached at the moment; the panel will try again."

TRANSIENT_RESULTS = {
    1: "operationsError",  # AD answers this when the session lost its bind
    3: "timeLimitExceeded",
    51: "busy",
    52: "unavailable",
}
PERMANENT_MESSAGES = {
    8: "The directory requires an encrypted connection: use LDAPS or StartTLS.",
    16: "The directory does not know attribute '{attribute}'.",
    17: "The directory does not know attribute '{attribute}'.",
    19: "The directory refused the change because it breaks one of its rules.",
    21: "A value is not valid for the directory.",
    34: "The name is not valid for the directory.",
    49: "The panel could not sign in to the directory: check its service account.",
    50: "The panel's directory account is not allowed to do this.",
    53: "The directory refused the change.",
    64: "The name is not valid for the directory.",
    65: "The directory does not allow this attribute on this kind of object.",
    66: "The object still contains other objects.",
}


# -- helpers -------------------------------------------------------------------


def canonical_guid(value: str | uuid.UUID) -> str:
    """A GUID as lowercase "xxxxxxxx-xxxx-..." text; anything else is refused.

    Validation matters: the GUID is put into a ``<GUID=...>`` DN.
    """
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        raise PermanentDirectoryError(
            "The directory object reference is not valid.", detail=repr(value)
        ) from None


def guid_dn(guid: str) -> str:
    return f"<GUID={canonical_guid(guid)}>"


def rdn(attribute: str, value: str) -> str:
    if not value:
        raise PermanentDirectoryError("A name in the directory must not be empty.")
    return f"{attribute}={escape_rdn(value)}"


def equality_filter(attribute: str, value: str) -> str:
    return f"({attribute}={escape_filter_chars(value)})"


def password_value(password: str) -> bytes:
    """unicodePwd wants the password in double quotes, encoded as UTF-16LE."""
    return f'"{password}"'.encode("utf-16-le")


def fold_sam_account_name(base: str) -> str:
    """The ASCII stem of a sAMAccountName, before uniqueness is considered."""
    text = unicodedata.normalize("NFKD", base.translate(ASCII_FOLD))
    text = "".join(
        ch for ch in text
        if ch.isascii() and ch.isprintable() and not ch.isspace() and ch not in SAM_FORBIDDEN
    )
    # Windows refuses a logon name ending in a period.
    text = text.strip(".")[:SAM_MAX_LENGTH].rstrip(".")
    return text or "user"


def _kind(object_classes: Iterable[str]) -> str:
    classes = {value.lower() for value in object_classes}
    if "organizationalunit" in classes:
        return "ou"
    if "computer" in classes:
        return "computer"
    if "user" in classes:
        return "user"
    if "group" in classes:
        return "group"
    return "other"


def _decode_entry(dn: str, raw: Mapping[str, list[bytes]]) -> dict[str, Any]:
    entry: dict[str, Any] = {"dn": dn}
    for name in ENTRY_ATTRIBUTES:
        entry[name] = [] if name.lower() in MULTI_VALUED else None
    for name, values in raw.items():
        canonical = next((known for known in ENTRY_ATTRIBUTES if known.lower() == name.lower()),
                         name)
        lowered = canonical.lower()
        if lowered == "objectguid":
            decoded: list[Any] = [str(uuid.UUID(bytes_le=value)) for value in values]
        elif lowered in INTEGER_ATTRIBUTES:
            decoded = [int(value) for value in values]
        else:
            decoded = [value.decode("utf-8", "replace") for value in values]
        if lowered in MULTI_VALUED:
            entry[canonical] = decoded
        else:
            entry[canonical] = decoded[0] if decoded else None
    entry["kind"] = _kind(entry["objectClass"])
    return entry


# -- the client ----------------------------------------------------------------


class DirectoryClient:
    """Provision organizations and users in Active Directory over one LDAP connection.

    The connection is opened on first use and reused; after a network fault it is
    dropped and the operation is sent once more on a fresh connection (every
    operation here is safe to repeat). Thread-safe: ldap3's SAFE_SYNC strategy
    serialises requests on the shared connection.
    """

    def __init__(self, settings: DirectorySettings) -> None:
        self.settings = settings
        self._connection: ldap3.Connection | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.settings.host}:{self.settings.port}>"

    def __enter__(self) -> DirectoryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- names --------------------------------------------------------------

    @property
    def root_dn(self) -> str:
        return f"{rdn('OU', self.settings.root_ou)},{self.settings.base_dn}"

    def org_dn(self, org_name: str) -> str:
        return f"{rdn('OU', org_name)},{self.root_dn}"

    def org_group_dn(self, org_name: str) -> str:
        return f"{rdn('CN', org_name)},{self.org_dn(org_name)}"

    # -- organization ---------------------------------------------------------

    def ensure_root_ou(self) -> str:
        return self._ensure_ou(self.root_dn)

    def ensure_org_ou(self, org_name: str, mark: TenantMark | None = None) -> str:
        try:
            return self._ensure_ou(self.org_dn(org_name), mark,
                                   f"An organizational unit named '{org_name}'")
        except NoSuchObjectError:
            self.ensure_root_ou()
            return self._ensure_ou(self.org_dn(org_name), mark,
                                   f"An organizational unit named '{org_name}'")

    def add_upn_suffix(self, org_name: str, domain: str) -> None:
        try:
            self._modify(
                self.org_dn(org_name),
                {"uPNSuffixes": [("add", [_domain(domain)])]},
                tolerate={20},  # attributeOrValueExists: it is already there
            )
        except NoSuchObjectError:
            raise _org_missing(org_name) from None

    def remove_upn_suffix(self, org_name: str, domain: str) -> None:
        try:
            self._modify(
                self.org_dn(org_name),
                {"uPNSuffixes": [("delete", [_domain(domain)])]},
                tolerate={16},  # noSuchAttribute: it is already gone
            )
        except NoSuchObjectError:
            pass

    def ensure_org_group(self, org_name: str, mark: TenantMark | None = None) -> str:
        dn = self.org_group_dn(org_name)
        what = f"A group named '{org_name}'"
        existing = self._read(dn)
        if existing is not None:
            return _adopt(mark, existing, what, _group_guid(existing, org_name))
        for _attempt in range(3):
            sam = self.make_sam_account_name(org_name)
            try:
                self._add(
                    dn,
                    ["top", "group"],
                    {"sAMAccountName": sam, "groupType": str(GROUP_TYPE_UNIVERSAL_SECURITY),
                     **_mark_attribute(mark)},
                )
            except NoSuchObjectError:
                raise _org_missing(org_name) from None
            except ObjectExistsError:
                # Either our own earlier create (its reply was lost) or another
                # writer took the sAMAccountName between our check and the add.
                existing = self._read(dn)
                if existing is not None:
                    return _adopt(mark, existing, what, _group_guid(existing, org_name))
                continue
            return _made(mark, self._read_required(dn)["objectGUID"])
        raise PermanentDirectoryError(
            f"Could not find a free group name for organization '{org_name}'."
        )

    # -- users ----------------------------------------------------------------

    def ensure_user(
        self,
        org_name: str,
        *,
        sam_account_name: str,
        upn: str,
        display_name: str,
        given_name: str,
        surname: str,
        password: str,
        cn: str | None = None,
        mark: TenantMark | None = None,
    ) -> str:
        """Make sure the user exists in the organization, enabled and in its group.

        A user with this UPN in the organization's OU counts as this user (it is
        what a retried create finds), whatever its sAMAccountName, provided the
        ``mark`` proves it was made for this customer; its names are brought up to
        date, its password is set only if it never had one, and it ends enabled.
        Disabling is set_enabled's job.
        """
        cn = display_name if cn is None else cn
        self._require_encryption()
        if not sam_account_name or not upn:
            raise PermanentDirectoryError("A user needs a logon name and a user name.")
        if cn.casefold() == org_name.casefold():
            # That name belongs to the organization's group, in the same OU.
            raise ObjectExistsError(
                f"A user cannot be named '{cn}': that is the organization's own name."
            )
        org_dn = self.org_dn(org_name)
        entry = self._find_own_user(org_dn, upn=upn, sam_account_name=sam_account_name)
        names = {"displayName": display_name, "givenName": given_name, "sn": surname}
        if entry is None:
            dn = f"{rdn('CN', cn)},{org_dn}"
            attributes = {
                "sAMAccountName": sam_account_name,
                "userPrincipalName": upn,
                "userAccountControl": str(UAC_NORMAL_ACCOUNT | UAC_ACCOUNTDISABLE),
                **{name: value for name, value in names.items() if value},
                **_mark_attribute(mark),
            }
            try:
                self._add(dn, ["top", "person", "organizationalPerson", "user"], attributes,
                          messages={19: f"The user name '{upn}' is already in use."})
            except ObjectExistsError:
                entry = self._find_own_user(org_dn, upn=upn, sam_account_name=sam_account_name)
                if entry is None:
                    raise ObjectExistsError(
                        f"An object named '{cn}' already exists in organization '{org_name}'."
                    ) from None
            except NoSuchObjectError:
                raise _org_missing(org_name) from None
            else:
                # Recorded before the next writes: if they fail, compensation knows
                # this operation made the (still disabled) account.
                guid = _made(mark, self._read_required(dn)["objectGUID"])
                self._set_password_and_enable(dn, password)
                self._add_member(org_name, dn)
                return guid

        _adopt(mark, entry, f"A user named '{upn}'", entry["objectGUID"])
        target = guid_dn(entry["objectGUID"])
        changes: dict[str, list[tuple[str, list[Any]]]] = {
            name: [("replace", [value] if value else [])]
            for name, value in names.items()
            if (entry.get(name) or "") != (value or "")
        }
        if changes:
            self._modify(target, changes)
        if not entry.get("pwdLastSet"):
            self._set_password_and_enable(target, password, entry["userAccountControl"])
        elif entry["userAccountControl"] & UAC_ACCOUNTDISABLE:
            self._write_uac(target, entry["userAccountControl"] & ~UAC_ACCOUNTDISABLE)
        self._add_member(org_name, entry["dn"])
        return entry["objectGUID"]

    def set_password(self, guid: str, password: str) -> None:
        self._require_encryption()
        self._modify(
            guid_dn(guid),
            {"unicodePwd": [("replace", [password_value(password)])]},
            messages=_password_messages(),
        )

    def set_enabled(self, guid: str, enabled: bool) -> None:
        target = guid_dn(guid)
        current = self._read_required(target)["userAccountControl"] or 0
        wanted = current & ~UAC_ACCOUNTDISABLE if enabled else current | UAC_ACCOUNTDISABLE
        if wanted != current:
            self._write_uac(target, wanted)

    def rename(
        self,
        guid: str,
        *,
        cn: str | None = None,
        upn: str | None = None,
        display_name: str | None = None,
        given_name: str | None = None,
        surname: str | None = None,
    ) -> dict[str, Any]:
        """Change names; ``None`` leaves a value alone, ``""`` clears it. Returns the entry."""
        target = guid_dn(guid)
        entry = self._read_required(target)
        changes: dict[str, list[tuple[str, list[Any]]]] = {}
        for name, value in (
            ("userPrincipalName", upn), ("displayName", display_name),
            ("givenName", given_name), ("sn", surname),
        ):
            if value is not None and (entry.get(name) or "") != value:
                changes[name] = [("replace", [value] if value else [])]
        if upn and "userPrincipalName" in changes:
            owner = self.find_by_upn(upn)
            if owner is not None and owner["objectGUID"] != entry["objectGUID"]:
                raise ObjectExistsError(f"The user name '{upn}' is already in use.")
        if changes:
            self._modify(target, changes,
                         messages={19: f"The user name '{upn}' is already in use."})
        if cn is not None and cn != entry["cn"]:
            # Samba cannot rename through a <GUID=...> DN (noSuchObject); the real DN works.
            self._modify_dn(entry["dn"], rdn("CN", cn),
                            messages={68: f"An object named '{cn}' already exists there."})
        return self._read_required(target)

    def move(self, guid: str, new_parent_dn: str) -> None:
        entry = self._read_required(guid_dn(guid))
        attribute = entry["dn"].split("=", 1)[0]
        self._modify_dn(entry["dn"], rdn(attribute, entry["name"]), new_superior=new_parent_dn)

    def delete(self, guid: str, *, recursive: bool = False) -> None:
        """Delete an object; an OU with content only when ``recursive``. Missing is success."""
        try:
            self._delete(guid_dn(guid), tree=recursive)
        except NoSuchObjectError:
            pass

    def set_attributes(self, guid: str, attributes: Mapping[str, Any]) -> None:
        """Write plain directory attributes (feature types with parent_node "properties").

        ``None`` clears an attribute; booleans become TRUE/FALSE, numbers text.
        """
        changes: dict[str, list[tuple[str, list[Any]]]] = {}
        for name, value in attributes.items():
            if not ATTRIBUTE_NAME.match(name) or name.lower() in PROTECTED_ATTRIBUTES:
                raise PermanentDirectoryError(
                    f"The panel may not write directory attribute '{name}'."
                )
            changes[name] = [("replace", _attribute_values(value))]
        if changes:
            self._modify(guid_dn(guid), changes)

    # -- lookups --------------------------------------------------------------

    def get_by_guid(self, guid: str, extra_attributes: Iterable[str] = ()) -> dict[str, Any] | None:
        return self._read(guid_dn(guid), extra_attributes)

    def verify_bind(self) -> str:
        """Bind and read the base DN (the admin's connection test); returns the bind DN."""
        if self._read(self.settings.base_dn) is None:
            raise NoSuchObjectError(f"The base DN '{self.settings.base_dn}' does not exist.")
        return self.settings.bind_dn

    def get_by_dn(self, dn: str, extra_attributes: Iterable[str] = ()) -> dict[str, Any] | None:
        """For DNs built by org_dn()/org_group_dn(); stored objects are found by GUID."""
        return self._read(dn, extra_attributes)

    def find_in_org(self, org_name: str, upn: str) -> dict[str, Any] | None:
        """The object with this UPN inside the organization's OU.

        Use this rather than comparing DN strings: the server's escaping of a DN
        (``\\3B``) need not match escape_rdn's (``\\;``).
        """
        try:
            found = self._find(equality_filter("userPrincipalName", upn),
                               base=self.org_dn(org_name))
        except NoSuchObjectError:
            return None
        return found[0] if found else None

    def find_by_upn(self, upn: str) -> dict[str, Any] | None:
        found = self._find(equality_filter("userPrincipalName", upn))
        return found[0] if found else None

    def find_by_sam(self, sam_account_name: str) -> dict[str, Any] | None:
        found = self._find(equality_filter("sAMAccountName", sam_account_name))
        return found[0] if found else None

    def list_under_root(self) -> list[dict[str, Any]]:
        """Every OU, user and group below the root OU (not the root OU itself)."""
        try:
            entries = self._find(
                "(|(objectClass=organizationalUnit)(objectClass=user)(objectClass=group))",
                base=self.root_dn,
                paged=True,
            )
        except NoSuchObjectError:
            return []
        root = self.root_dn.lower()
        return [entry for entry in entries if entry["dn"].lower() != root]

    def list_under(self, guid: str) -> list[dict[str, Any]]:
        """Every OU, user, group and contact below this object (not the object itself):
        what an organization's OU still holds. Empty when the object is gone."""
        entry = self._read(guid_dn(guid))
        if entry is None:
            return []
        found = self._find(
            "(|(objectClass=organizationalUnit)(objectClass=user)(objectClass=group)"
            "(objectClass=contact))",
            base=entry["dn"],
            paged=True,
        )
        return [e for e in found if e["objectGUID"] != entry["objectGUID"]]

    def make_sam_account_name(self, base: str) -> str:
        stem = fold_sam_account_name(base)
        for number in range(1, 10_000):
            suffix = "" if number == 1 else str(number)
            candidate = stem[: SAM_MAX_LENGTH - len(suffix)].rstrip(".") + suffix
            if self.find_by_sam(candidate) is None:
                return candidate
        raise PermanentDirectoryError(f"Could not find a free logon name for '{base}'.")

    # -- composed steps -------------------------------------------------------

    def _ensure_ou(self, dn: str, mark: TenantMark | None = None, what: str = "") -> str:
        existing = self._read(dn)
        if existing is not None:
            return _adopt(mark, existing, what, existing["objectGUID"])
        try:
            self._add(dn, ["top", "organizationalUnit"], _mark_attribute(mark))
        except ObjectExistsError:
            # A retried create whose first reply was lost, or a concurrent one.
            existing = self._read_required(dn)
            return _adopt(mark, existing, what, existing["objectGUID"])
        return _made(mark, self._read_required(dn)["objectGUID"])

    def _find_own_user(
        self, org_dn: str, *, upn: str, sam_account_name: str
    ) -> dict[str, Any] | None:
        """The user with this UPN in the organization, or None if both names are free.

        One domain-wide search covers the common case (neither name is taken).
        """
        taken = self._find(
            f"(|{equality_filter('userPrincipalName', upn)}"
            f"{equality_filter('sAMAccountName', sam_account_name)})"
        )
        if not taken:
            return None
        own = self._find(equality_filter("userPrincipalName", upn), base=org_dn)
        if own and own[0]["kind"] == "user":
            return own[0]
        for entry in taken:
            if (entry.get("userPrincipalName") or "").lower() == upn.lower():
                raise ObjectExistsError(f"The user name '{upn}' is already in use.")
        raise ObjectExistsError(f"The logon name '{sam_account_name}' is already in use.")

    def _set_password_and_enable(
        self, target: str, password: str, uac: int = UAC_NORMAL_ACCOUNT
    ) -> None:
        self._require_encryption()
        # One modify request is applied atomically: a password the policy refuses
        # leaves the account disabled, and there is never an enabled account
        # without its password. Half the cost of a user is this request (Samba
        # derives all the Kerberos keys here), so saving a round trip is welcome.
        self._modify(
            target,
            {
                "unicodePwd": [("replace", [password_value(password)])],
                "userAccountControl": [("replace", [str(uac & ~UAC_ACCOUNTDISABLE)])],
            },
            messages=_password_messages(),
        )

    def _require_encryption(self) -> None:
        if not self.settings.encrypted:
            raise PermanentDirectoryError(
                "Passwords are only sent to the directory over LDAPS or StartTLS."
            )

    def _write_uac(self, target: str, value: int) -> None:
        # A replace, not delete-old/add-new: Samba accepts the delete of a value
        # that is not there, so it would not detect a concurrent change anyway.
        self._modify(target, {"userAccountControl": [("replace", [str(value)])]})

    def _add_member(self, org_name: str, member_dn: str) -> None:
        try:
            # entryAlreadyExists / attributeOrValueExists: it is already a member.
            self._modify(self.org_group_dn(org_name), {"member": [("add", [member_dn])]},
                         tolerate={20, 68})
        except NoSuchObjectError:
            raise NoSuchObjectError(
                f"The group of organization '{org_name}' does not exist in the directory."
            ) from None

    def _read_required(self, base: str) -> dict[str, Any]:
        entry = self._read(base)
        if entry is None:
            raise NoSuchObjectError("The object no longer exists in the directory.", detail=base)
        return entry

    # -- LDAP primitives (DryRunDirectoryClient replaces these) -----------------

    def _read(self, base: str, extra_attributes: Iterable[str] = ()) -> dict[str, Any] | None:
        try:
            found = self._search(base, "(objectClass=*)", ldap3.BASE,
                                 (*ENTRY_ATTRIBUTES, *extra_attributes))
        except NoSuchObjectError:
            return None
        return found[0] if found else None

    def _find(self, search_filter: str, *, base: str | None = None,
              paged: bool = False) -> list[dict[str, Any]]:
        return self._search(base or self.settings.base_dn, search_filter, ldap3.SUBTREE,
                            ENTRY_ATTRIBUTES, paged=paged)

    def _search(self, base: str, search_filter: str, scope: str, attributes: Iterable[str],
                *, paged: bool = False) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        cookie: bytes | None = None
        while True:
            options: dict[str, Any] = {}
            if paged:
                options = {"paged_size": PAGE_SIZE, "paged_cookie": cookie}
            _status, result, response, _request = self._call(
                "search", lambda conn, options=options: conn.search(
                    base, search_filter, scope, attributes=list(attributes), **options
                ),
            )
            entries.extend(
                _decode_entry(item["dn"], item["raw_attributes"])
                for item in response or ()
                if item.get("type") == "searchResEntry"
            )
            if not paged:
                return entries
            control = (result.get("controls") or {}).get(PAGED_RESULTS_CONTROL) or {}
            cookie = (control.get("value") or {}).get("cookie")
            if not cookie:
                return entries

    def _add(self, dn: str, object_class: list[str], attributes: Mapping[str, Any],
             *, messages: Mapping[int, str] | None = None) -> None:
        self._call("add", lambda conn: conn.add(dn, object_class, dict(attributes)),
                   messages=messages)

    def _modify(self, dn: str, changes: Mapping[str, list[tuple[str, list[Any]]]], *,
                tolerate: Iterable[int] = (), messages: Mapping[int, str] | None = None) -> None:
        operations = {"add": ldap3.MODIFY_ADD, "delete": ldap3.MODIFY_DELETE,
                      "replace": ldap3.MODIFY_REPLACE}
        ldap_changes = {
            name: [(operations[op], values) for op, values in steps]
            for name, steps in changes.items()
        }
        self._call("modify", lambda conn: conn.modify(dn, ldap_changes),
                   tolerate=tolerate, messages=messages)

    def _modify_dn(self, dn: str, relative_dn: str, *, new_superior: str | None = None,
                   messages: Mapping[int, str] | None = None) -> None:
        self._call(
            "modify_dn",
            lambda conn: conn.modify_dn(dn, relative_dn, new_superior=new_superior),
            messages=messages,
        )

    def _delete(self, dn: str, *, tree: bool = False) -> None:
        controls = [(TREE_DELETE_CONTROL, True, None)] if tree else None
        self._call("delete", lambda conn: conn.delete(dn, controls=controls))

    # -- connection -------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.unbind()
            except Exception:  # noqa: BLE001, S110 - the socket may already be dead
                pass

    def _connect(self) -> ldap3.Connection:
        s = self.settings
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if s.verify_ca else ssl.CERT_NONE,
            ca_certs_file=s.ca_file,
            version=None,
        )
        # A new Server each time: ldap3 remembers an address that failed and would
        # refuse it on the next attempt.
        server = ldap3.Server(
            s.host, port=s.port, use_ssl=s.use_ssl, tls=tls, get_info=ldap3.NONE,
            connect_timeout=s.connect_timeout,
        )
        connection = ldap3.Connection(
            server,
            user=s.bind_dn or None,
            password=s.bind_password or None,
            client_strategy=ldap3.SAFE_SYNC,
            raise_exceptions=True,
            # Names are escaped here; ldap3's own DN "normalisation" would
            # re-escape them and it mistakes DNs containing '@' for UPNs.
            check_names=False,
            auto_referrals=False,
            receive_timeout=s.receive_timeout,
            auto_bind=ldap3.AUTO_BIND_NONE,
        )
        connection.open()
        if s.start_tls and not s.use_ssl:
            connection.start_tls()
        connection.bind()
        return connection

    def _connection_for_use(self) -> tuple[ldap3.Connection, bool]:
        with self._lock:
            if self._connection is not None and not self._connection.closed:
                return self._connection, False
            self._connection = self._connect()
            return self._connection, True

    def _call(
        self,
        operation: str,
        request: Callable[[ldap3.Connection], Any],
        *,
        tolerate: Iterable[int] = (),
        messages: Mapping[int, str] | None = None,
    ) -> Any:
        tolerate = set(tolerate)
        for attempt in (1, 2):
            fresh = True  # if opening fails, it was a fresh connection that failed
            try:
                connection, fresh = self._connection_for_use()
                return request(connection)
            except ldap_exc.LDAPOperationResult as exc:
                if exc.result in tolerate:
                    return None, {"result": exc.result}, [], None
                if exc.result in TRANSIENT_RESULTS:
                    self.close()
                    if attempt == 1 and exc.result == 1:
                        continue
                    raise TransientDirectoryError(
                        UNREACHABLE, detail=_detail(operation, exc)
                    ) from None
                raise _permanent(operation, exc, messages) from None
            except ldap_exc.LDAPBindError as exc:
                raise PermanentDirectoryError(PERMANENT_MESSAGES[49],
                                              detail=_detail(operation, exc)) from None
            except (ldap_exc.LDAPCertificateError, ldap_exc.LDAPSSLConfigurationError) as exc:
                self.close()
                raise _certificate_error(operation, exc) from None
            except (ldap_exc.LDAPCommunicationError, ldap_exc.LDAPResponseTimeoutError,
                    ldap_exc.LDAPStartTLSError, ldap_exc.LDAPMaximumRetriesError,
                    OSError) as exc:
                self.close()
                if _is_certificate_failure(exc):
                    raise _certificate_error(operation, exc) from None
                # A connection that sat idle may have been closed by a restarted
                # server; one more try on a fresh connection tells that apart from
                # a server that is really down.
                if attempt == 1 and not fresh:
                    logger.info("directory connection lost during %s; reconnecting", operation)
                    continue
                raise TransientDirectoryError(
                    UNREACHABLE, detail=_detail(operation, exc)
                ) from None
        raise AssertionError("unreachable")


# -- dry run ---------------------------------------------------------------------


class DryRunDirectoryClient(DirectoryClient):
    """Runs the client's logic against an empty in-memory directory, without network.

    Every write it would send is appended to ``journal`` as a dict
    (``{"op": "add", "dn": ..., "attributes": {...}}``, ``"modify"`` with
    ``"changes"``, ``"modify_dn"``, ``"delete"``); passwords appear as ``********``.
    Like Active Directory, it gives every new object a fresh random GUID: an object
    deleted and made again under the same name is another object.
    """

    def __init__(self, settings: DirectorySettings) -> None:
        super().__init__(settings)
        self.journal: list[dict[str, Any]] = []
        self._entries: dict[str, dict[str, Any]] = {}
        self._by_guid: dict[str, dict[str, Any]] = {}
        # (attribute, value) -> keys of the entries that had it: a superset, checked again
        # on every search, so that finding a name costs the same among 10 or 100,000 users.
        self._by_value: dict[tuple[str, str], set[str]] = {}
        base = settings.base_dn
        self._entries[base.lower()] = {
            "dn": base, "objectGUID": str(uuid.uuid4()),
            "objectClass": ["top", "domainDNS"],
        }
        self._index(self._entries[base.lower()])

    def _connect(self) -> ldap3.Connection:
        raise AssertionError("a dry run never connects")

    def close(self) -> None:
        pass

    INDEXED = frozenset({"userprincipalname", "samaccountname"})

    def _index(self, entry: dict[str, Any]) -> None:
        self._by_guid[entry["objectGUID"]] = entry
        key = entry["dn"].lower()
        for name, value in entry.items():
            if name.lower() in self.INDEXED and value:
                self._by_value.setdefault((name.lower(), str(value).lower()), set()).add(key)

    def _candidates(self, search_filter: str) -> Iterable[str] | None:
        """The keys an indexed equality term narrows the search to, or None (scan all)."""
        terms = [(attribute.lower(), re.sub(r"\\([0-9a-fA-F]{2})",
                                            lambda m: chr(int(m.group(1), 16)), escaped).lower())
                 for attribute, escaped in _FILTER_TERM.findall(search_filter)]
        indexed = [term for term in terms if term[0] in self.INDEXED]
        if not indexed:
            return None
        if search_filter.startswith("(|"):
            if len(indexed) < len(terms):
                return None
            return set().union(*(self._by_value.get(term, ()) for term in indexed))
        return set(self._by_value.get(indexed[0], ()))

    def _lookup(self, base: str) -> dict[str, Any] | None:
        if base.startswith("<GUID="):
            return self._by_guid.get(base[len("<GUID="):-1])
        return self._entries.get(base.lower())

    def _public(self, entry: dict[str, Any]) -> dict[str, Any]:
        public = _decode_entry(entry["dn"], {})
        public.update({k: v for k, v in entry.items() if k.lower() not in SECRET_ATTRIBUTES})
        public["kind"] = _kind(public["objectClass"])
        return public

    def _read(self, base: str, extra_attributes: Iterable[str] = ()) -> dict[str, Any] | None:
        entry = self._lookup(base)
        return None if entry is None else self._public(entry)

    def _find(self, search_filter: str, *, base: str | None = None,
              paged: bool = False) -> list[dict[str, Any]]:
        suffix = (base or self.settings.base_dn).lower()
        candidates = self._candidates(search_filter)
        if candidates is None:
            scanned = self._entries.items()
        else:
            scanned = [(key, self._entries[key]) for key in sorted(candidates)
                       if key in self._entries]
        return [
            self._public(entry) for key, entry in scanned
            if (key == suffix or key.endswith("," + suffix)) and _matches(search_filter, entry)
        ]

    def _add(self, dn: str, object_class: list[str], attributes: Mapping[str, Any],
             *, messages: Mapping[int, str] | None = None) -> None:
        key = dn.lower()
        if key in self._entries:
            raise ObjectExistsError("The object already exists.", detail=dn)
        if _split_dn(dn)[2].lower() not in self._entries:
            raise NoSuchObjectError("The parent object does not exist.", detail=dn)
        self.journal.append({"op": "add", "dn": dn,
                             "attributes": {"objectClass": list(object_class),
                                            **_masked(attributes)}})
        attribute, value, _parent = _naming(dn)
        entry: dict[str, Any] = {
            "dn": dn, "objectGUID": str(uuid.uuid4()),
            "objectClass": list(object_class), attribute: value, "name": value,
        }
        for name, raw in attributes.items():
            if name.lower() not in SECRET_ATTRIBUTES:
                entry[name] = int(raw) if name.lower() in INTEGER_ATTRIBUTES else raw
        if "user" in object_class:
            entry.setdefault("pwdLastSet", 0)
            entry.setdefault("memberOf", [])
        self._entries[key] = entry
        self._index(entry)

    def restore(self, dn: str, object_class: list[str], attributes: Mapping[str, Any],
                guid: str) -> None:
        """Put back an object the panel made earlier, with its recorded GUID, without
        journaling it: the in-memory directory is rebuilt after a restart."""
        attribute, value, _parent = _naming(dn)
        entry: dict[str, Any] = {"dn": dn, "objectGUID": canonical_guid(guid),
                                 "objectClass": list(object_class), attribute: value,
                                 "name": value, **attributes}
        if "user" in object_class:
            entry.setdefault("pwdLastSet", 1)
            entry.setdefault("memberOf", [])
        self._entries[dn.lower()] = entry
        self._index(entry)

    def _modify(self, dn: str, changes: Mapping[str, list[tuple[str, list[Any]]]], *,
                tolerate: Iterable[int] = (), messages: Mapping[int, str] | None = None) -> None:
        entry = self._lookup(dn)
        if entry is None:
            raise NoSuchObjectError("The object does not exist.", detail=dn)
        self.journal.append({
            "op": "modify", "dn": entry["dn"],
            "changes": {name: [(op, _masked_values(name, values)) for op, values in steps]
                        for name, steps in changes.items()},
        })
        for name, steps in changes.items():
            if name.lower() in SECRET_ATTRIBUTES:
                entry["pwdLastSet"] = 1
                continue
            multi = name.lower() in MULTI_VALUED
            for op, values in steps:
                values = [int(v) if name.lower() in INTEGER_ATTRIBUTES else v for v in values]
                current = entry.get(name) if multi else None
                if op == "replace":
                    entry[name] = values if multi else (values[0] if values else None)
                elif op == "add" and multi:
                    entry[name] = (current or []) + [v for v in values if v not in (current or [])]
                elif op == "delete" and multi:
                    entry[name] = [v for v in (current or []) if v not in values]
                if name.lower() == "member" and op == "add":
                    for member_dn in values:
                        member = self._lookup(member_dn)
                        if member is not None and entry["dn"] not in member["memberOf"]:
                            member["memberOf"].append(entry["dn"])
        self._index(entry)

    def _modify_dn(self, dn: str, relative_dn: str, *, new_superior: str | None = None,
                   messages: Mapping[int, str] | None = None) -> None:
        entry = self._lookup(dn)
        if entry is None:
            raise NoSuchObjectError("The object does not exist.", detail=dn)
        parent = new_superior or _split_dn(entry["dn"])[2]
        new_dn = f"{relative_dn},{parent}"
        self.journal.append({"op": "modify_dn", "dn": entry["dn"], "relative_dn": relative_dn,
                             "new_superior": new_superior})
        del self._entries[entry["dn"].lower()]
        attribute, value, _parent = _naming(new_dn)
        entry.update({"dn": new_dn, attribute: value, "name": value})
        self._entries[new_dn.lower()] = entry
        self._index(entry)

    def _delete(self, dn: str, *, tree: bool = False) -> None:
        entry = self._lookup(dn)
        if entry is None:
            raise NoSuchObjectError("The object does not exist.", detail=dn)
        key = entry["dn"].lower()
        if not tree and any(other.endswith("," + key) for other in self._entries):
            # As AD answers notAllowedOnNonLeaf (66).
            raise PermanentDirectoryError(PERMANENT_MESSAGES[66], detail=dn)
        self.journal.append({"op": "delete", "dn": entry["dn"], "tree": tree})
        for other in list(self._entries):
            if other == key or (tree and other.endswith("," + key)):
                self._by_guid.pop(self._entries.pop(other)["objectGUID"], None)


# -- module helpers ----------------------------------------------------------------


def _naming(dn: str) -> tuple[str, str, str]:
    """_split_dn with the naming attribute spelled as a read returns it ("cn", "ou"), so
    the dry run's entries answer like the server's."""
    attribute, value, parent = _split_dn(dn)
    canonical = next((known for known in ENTRY_ATTRIBUTES if known.lower() == attribute.lower()),
                     attribute)
    return canonical, value, parent


def _mark_attribute(mark: TenantMark | None) -> dict[str, str]:
    return {"adminDescription": mark.value} if mark is not None else {}


def _adopt(mark: TenantMark | None, entry: Mapping[str, Any], what: str, guid: str) -> str:
    return guid if mark is None else mark.adopt(entry, what)


def _made(mark: TenantMark | None, guid: str) -> str:
    return guid if mark is None else mark.made(guid)


def _group_guid(entry: Mapping[str, Any], org_name: str) -> str:
    if entry["kind"] != "group":
        raise ObjectExistsError(
            f"The name '{org_name}' is already used by another object in the organization, "
            "so its group cannot be created."
        )
    return entry["objectGUID"]


def _org_missing(org_name: str) -> NoSuchObjectError:
    return NoSuchObjectError(
        f"Organization '{org_name}' has not been set up in the directory yet."
    )


def _domain(domain: str) -> str:
    value = domain.strip().lower()
    if not value:
        raise PermanentDirectoryError("A domain name must not be empty.")
    return value


def _attribute_values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, bool):
        return ["TRUE" if value else "FALSE"]
    if isinstance(value, list | tuple | set | frozenset):
        return [v for item in value for v in _attribute_values(item)]
    return [value if isinstance(value, bytes) else str(value)]


def _password_messages() -> dict[int, str]:
    text = ("The password does not meet the directory's password policy "
            "(length, complexity or history).")
    return {19: text, 53: text}


def _detail(operation: str, exc: BaseException) -> str:
    # Built from the server's reply only: ldap3's exceptions do not carry the
    # request, so a password sent in it cannot end up here.
    if isinstance(exc, ldap_exc.LDAPOperationResult):
        text = f"{operation}: {exc.description} ({exc.result}) {exc.message or ''}".strip()
    else:
        text = f"{operation}: {type(exc).__name__}: {exc}"
    return text


def _permanent(operation: str, exc: ldap_exc.LDAPOperationResult,
               messages: Mapping[int, str] | None) -> PermanentDirectoryError:
    detail = _detail(operation, exc)
    if messages and exc.result in messages:
        message = messages[exc.result]
    elif exc.result == 68:
        return ObjectExistsError("An object with this name already exists.", detail=detail)
    elif exc.result == 32:
        return NoSuchObjectError("The object does not exist in the directory.", detail=detail)
    else:
        attribute = _attribute_in(exc.message or "")
        message = PERMANENT_MESSAGES.get(
            exc.result, "The directory refused the change."
        ).format(attribute=attribute)
    cls = {68: ObjectExistsError, 32: NoSuchObjectError}.get(exc.result, PermanentDirectoryError)
    return cls(message, detail=detail)


def _attribute_in(message: str) -> str:
    match = re.search(r"attribute '([^']+)'", message)
    return match.group(1) if match else "?"


def _is_certificate_failure(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "certificate" in text or isinstance(exc, ssl.SSLCertVerificationError)


def _certificate_error(operation: str, exc: BaseException) -> PermanentDirectoryError:
    return PermanentDirectoryError(
        "The directory server's TLS certificate could not be verified: check the CA file "
        "and the server name in the panel's directory settings.",
        detail=_detail(operation, exc),
    )


def _masked_values(name: str, values: Iterable[Any]) -> list[Any]:
    if name.lower() in SECRET_ATTRIBUTES:
        return [MASK for _ in values]
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]


def _masked(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: MASK if name.lower() in SECRET_ATTRIBUTES else value
        for name, value in attributes.items()
    }


def _split_dn(dn: str) -> tuple[str, str, str]:
    """(attribute, unescaped value, parent DN) of a DN escaped by escape_rdn (dry run only).

    The dry run only ever sees DNs built in this module, so parent DNs can be
    compared as text.
    """
    attribute, rest = dn.split("=", 1)
    value: list[str] = []
    escaped = False
    for index, ch in enumerate(rest):
        if escaped:
            value.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            return attribute, "".join(value), rest[index + 1:]
        else:
            value.append(ch)
    return attribute, "".join(value), ""


_FILTER_TERM = re.compile(r"\(([A-Za-z][A-Za-z0-9-]*)=((?:[^()\\]|\\[0-9a-fA-F]{2})*)\)")


def _matches(search_filter: str, entry: Mapping[str, Any]) -> bool:
    """Evaluate the small filters this module sends: equality terms joined by | or &."""
    terms = _FILTER_TERM.findall(search_filter)
    results = []
    for attribute, escaped in terms:
        wanted = re.sub(r"\\([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), escaped)
        value = next((v for k, v in entry.items() if k.lower() == attribute.lower()), None)
        values = value if isinstance(value, list) else [value]
        results.append(any(str(v).lower() == wanted.lower() for v in values if v is not None))
    if search_filter.startswith("(|"):
        return any(results)
    return all(results)
