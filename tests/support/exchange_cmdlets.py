"""The Exchange 2016/2019 cmdlets the test endpoint knows: each one's parameters and their
types, bound as PowerShell binds them, and Exchange's own error texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioning.exchange import (
    parse_quota_bytes,
)

# ----------------------------------------------------------------- Exchange errors


class CmdletError(Exception):
    """An error as the template's catch block would report it."""

    def __init__(self, message: str, exception: str, category: str, error_id: str) -> None:
        super().__init__(message)
        self.payload = {
            "message": message,
            "exception": exception,
            "category": category,
            "reason": exception.rsplit(".", 1)[-1],
            "error_id": error_id,
        }


def _task(cmdlet: str) -> str:
    return "Microsoft.Exchange.Management.Tasks." + cmdlet.replace("-", "")


def not_found(cmdlet: str, identity: str, dc: str) -> CmdletError:
    return CmdletError(
        f"The operation couldn't be performed because object '{identity}' "
        f"couldn't be found on '{dc}'.",
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        "NotSpecified",
        "[FailureCategory=Cmdlet-ManagementObjectNotFoundException] 2A6FBB4E," + _task(cmdlet),
    )


def already_exists(cmdlet: str, dn: str, dc: str) -> CmdletError:
    return CmdletError(
        f"Active Directory operation failed on {dc}. The object '{dn}' already exists.",
        "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
        "NotSpecified",
        "[FailureCategory=Cmdlet-ADObjectAlreadyExistsException] 5BA6E8B1," + _task(cmdlet),
    )


def parameter_not_found(cmdlet: str, name: str) -> CmdletError:
    return CmdletError(
        f"A parameter cannot be found that matches parameter name '{name}'.",
        "System.Management.Automation.ParameterBindingException",
        "InvalidArgument",
        "NamedParameterNotFound," + _task(cmdlet),
    )


def bad_argument(cmdlet: str, name: str, why: str) -> CmdletError:
    """An ArgumentTransformationAttribute refused the value (PowerShell's [bool] and switch
    parameters); observed text: ``Cannot process argument transformation on parameter
    'IsOffline'. Cannot convert value "System.String" to type "System.Boolean". ...``."""
    return CmdletError(
        f"Cannot process argument transformation on parameter '{name}'. {why}",
        "System.Management.Automation.ParameterBindingArgumentTransformationException",
        "InvalidData",
        "ParameterArgumentTransformationError," + _task(cmdlet),
    )


def cannot_bind(cmdlet: str, name: str, why: str) -> CmdletError:
    """The binder could not coerce the value to the parameter's type, e.g. ``Cannot bind
    parameter 'Type'. Cannot convert value "Hex" to type "Microsoft.Win32.RegistryValueKind".
    Error: "Unable to match the identifier name Hex to a valid enumerator name. ..."``."""
    return CmdletError(
        f"Cannot bind parameter '{name}'. {why}",
        "System.Management.Automation.ParameterBindingException",
        "InvalidArgument",
        "CannotConvertArgumentNoMessage," + _task(cmdlet),
    )


def cannot_convert_collection(cmdlet: str, name: str, type_name: str) -> CmdletError:
    """An array given to a parameter that takes one value."""
    return CmdletError(
        f"Cannot convert 'System.Object[]' to the type '{type_name}' required by parameter "
        f"'{name}'. Specified method is not supported.",
        "System.Management.Automation.ParameterBindingException",
        "InvalidArgument",
        "CannotConvertArgument," + _task(cmdlet),
    )


def null_argument(cmdlet: str, name: str) -> CmdletError:
    return CmdletError(
        f"Cannot bind argument to parameter '{name}' because it is null.",
        "System.Management.Automation.ParameterBindingValidationException",
        "InvalidData",
        "ParameterArgumentValidationErrorNullNotAllowed," + _task(cmdlet),
    )


def missing_mandatory(cmdlet: str, names: list[str]) -> CmdletError:
    return CmdletError(
        "Cannot process command because of one or more missing mandatory parameters: "
        + " ".join(names)
        + ".",
        "System.Management.Automation.ParameterBindingException",
        "InvalidArgument",
        "MissingMandatoryParameter," + _task(cmdlet),
    )


# ------------------------------------------------------------ parameter binding


@dataclass(frozen=True)
class Kind:
    """How PowerShell binds a value to one parameter type of an Exchange cmdlet.

    kind: string, bool, switch, id (an identity or other single value that Exchange
    parses from a string), ids (an array of those), multi (MultiValuedProperty), quota
    (Unlimited<ByteQuantifiedSize>), enum, flags (a [Flags] enum: a comma list).
    """

    kind: str
    type_name: str
    values: tuple[str, ...] = ()


_TASKS = "Microsoft.Exchange.Configuration.Tasks."
STR = Kind("string", "System.String")
BOOL = Kind("bool", "System.Boolean")
SWITCH = Kind("switch", "System.Management.Automation.SwitchParameter")
MULTI = Kind("multi", "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]")
QUOTA = Kind(
    "quota", "Microsoft.Exchange.Data.Unlimited`1[Microsoft.Exchange.Data.ByteQuantifiedSize]"
)
FQDN = Kind("id", "Microsoft.Exchange.Data.Fqdn")
SMTP_ADDRESS = Kind("id", "Microsoft.Exchange.Data.SmtpAddress")
SMTP_DOMAIN = Kind("id", "Microsoft.Exchange.Data.SmtpDomainWithSubdomains")
PROXY_ADDRESSES = Kind("multi", "Microsoft.Exchange.Data.ProxyAddressCollection")
PROXY_ADDRESS = Kind("id", "Microsoft.Exchange.Data.ProxyAddress")
ACCEPTED_DOMAIN_TYPE = Kind(
    "enum",
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.AcceptedDomainType",
    ("Authoritative", "ExternalRelay", "InternalRelay"),
)
WELL_KNOWN_RECIPIENT_TYPE = Kind(
    "flags",
    "System.Nullable`1[Microsoft.Exchange.Data.Directory.Recipient.WellKnownRecipientType]",
    ("None", "MailboxUsers", "Resources", "MailContacts", "MailGroups", "MailUsers",
     "AllRecipients"),
)


def _id(type_name: str) -> Kind:
    return Kind("id", _TASKS + type_name)


def _ids(type_name: str) -> Kind:
    return Kind("ids", _TASKS + type_name + "[]")


_CUSTOM_ATTRIBUTES = {f"CustomAttribute{n}": STR for n in range(1, 16)}
_CONDITIONS = {
    **{f"ConditionalCustomAttribute{n}": MULTI for n in range(1, 16)},
    "ConditionalCompany": MULTI,
    "ConditionalDepartment": MULTI,
    "ConditionalStateOrProvince": MULTI,
}
_LIST_FILTER = {
    "Name": STR,
    "IncludedRecipients": WELL_KNOWN_RECIPIENT_TYPE,
    "RecipientContainer": _id("OrganizationalUnitIdParameter"),
    "RecipientFilter": STR,
    **_CONDITIONS,
}
# Every Exchange cmdlet takes DomainController; those that change something also take the
# risk-mitigation switches (a Get- cmdlet given -Confirm fails like any unknown name).
_READ = {"DomainController": FQDN}
_WRITE = {"DomainController": FQDN, "Confirm": SWITCH, "WhatIf": SWITCH}
MAILBOX_ID = _id("MailboxIdParameter")
MAIL_CONTACT_ID = _id("MailContactIdParameter")
PROXY_ADDRESS = Kind("id", "Microsoft.Exchange.Data.ProxyAddress")
POLICY_ID = _id("MailboxPolicyIdParameter")

# name -> (parameters and their types, mandatory parameters). From the Syntax sections of
# the Exchange Server 2016/2019 cmdlet reference (learn.microsoft.com/powershell/module/
# exchange): every parameter the panel sends, or a provider's feature type may name, with
# its documented type. Parameters of those cmdlets that are not listed here (Set-Mailbox
# has well over a hundred) are refused like unknown ones: stricter than Exchange, never
# more lenient; add them here, with their type, when the panel starts to send them.
CMDLETS: dict[str, tuple[dict[str, Kind], tuple[str, ...]]] = {
    "Get-AcceptedDomain": ({"Identity": _id("AcceptedDomainIdParameter"), **_READ}, ()),
    "New-AcceptedDomain": (
        {
            "Name": STR,
            "DomainName": SMTP_DOMAIN,
            "DomainType": ACCEPTED_DOMAIN_TYPE,
            **_WRITE,
        },
        ("Name", "DomainName"),
    ),
    "Get-AddressList": (
        {
            "Identity": _id("AddressListIdParameter"),
            "Container": _id("AddressListIdParameter"),
            "SearchText": STR,
            **_READ,
        },
        (),
    ),
    "New-AddressList": (
        {
            **_LIST_FILTER,
            "DisplayName": STR,
            "Container": _id("AddressListIdParameter"),
            **_WRITE,
        },
        ("Name",),
    ),
    "Get-GlobalAddressList": (
        {"Identity": _id("GlobalAddressListIdParameter"), "DefaultOnly": SWITCH, **_READ},
        (),
    ),
    "New-GlobalAddressList": ({**_LIST_FILTER, **_WRITE}, ("Name",)),
    "Get-OfflineAddressBook": (
        {"Identity": _id("OfflineAddressBookIdParameter"), **_READ},
        (),
    ),
    "New-OfflineAddressBook": (
        {
            "Name": STR,
            "AddressLists": _ids("AddressBookBaseIdParameter"),
            "ConfiguredAttributes": MULTI,
            "GeneratingMailbox": MAILBOX_ID,
            "GlobalWebDistributionEnabled": BOOL,
            "IsDefault": BOOL,
            "ShadowMailboxDistributionEnabled": BOOL,
            "VirtualDirectories": _ids("VirtualDirectoryIdParameter"),
            **_WRITE,
        },
        ("Name", "AddressLists"),
    ),
    "Get-AddressBookPolicy": ({"Identity": POLICY_ID, **_READ}, ()),
    "New-AddressBookPolicy": (
        {
            "Name": STR,
            "AddressLists": _ids("AddressListIdParameter"),
            "GlobalAddressList": _id("GlobalAddressListIdParameter"),
            "OfflineAddressBook": _id("OfflineAddressBookIdParameter"),
            "RoomList": _id("AddressListIdParameter"),
            **_WRITE,
        },
        ("Name", "GlobalAddressList", "OfflineAddressBook", "RoomList", "AddressLists"),
    ),
    # Removals (an organization's teardown): the identity, and the switches.
    "Remove-AcceptedDomain": (
        {"Identity": _id("AcceptedDomainIdParameter"), **_WRITE},
        ("Identity",),
    ),
    "Remove-AddressList": (
        {"Identity": _id("AddressListIdParameter"), "Recursive": SWITCH, **_WRITE},
        ("Identity",),
    ),
    "Remove-GlobalAddressList": (
        {"Identity": _id("GlobalAddressListIdParameter"), **_WRITE},
        ("Identity",),
    ),
    "Remove-OfflineAddressBook": (
        {"Identity": _id("OfflineAddressBookIdParameter"), "Force": SWITCH, **_WRITE},
        ("Identity",),
    ),
    "Remove-AddressBookPolicy": ({"Identity": POLICY_ID, **_WRITE}, ("Identity",)),
    "Get-Mailbox": (
        {
            "Identity": MAILBOX_ID,
            "Anr": STR,
            "Database": _id("DatabaseIdParameter"),
            "Filter": STR,
            "IgnoreDefaultScope": SWITCH,
            "OrganizationalUnit": _id("OrganizationalUnitIdParameter"),
            **_READ,
        },
        (),
    ),
    "Enable-Mailbox": (
        {
            "Identity": _id("UserIdParameter"),
            "ActiveSyncMailboxPolicy": POLICY_ID,
            "AddressBookPolicy": POLICY_ID,
            "Alias": STR,
            "Archive": SWITCH,
            "Database": _id("DatabaseIdParameter"),
            "DisplayName": STR,
            "Equipment": SWITCH,
            "Force": SWITCH,
            "PrimarySmtpAddress": SMTP_ADDRESS,
            "RetentionPolicy": POLICY_ID,
            "RoleAssignmentPolicy": POLICY_ID,
            "Room": SWITCH,
            "Shared": SWITCH,
            **_WRITE,
        },
        ("Identity",),
    ),
    "Set-Mailbox": (
        {
            "Identity": MAILBOX_ID,
            "AddressBookPolicy": POLICY_ID,
            "Alias": STR,
            "ArchiveQuota": QUOTA,
            "ArchiveWarningQuota": QUOTA,
            "AuditEnabled": BOOL,
            "DeliverToMailboxAndForward": BOOL,
            "DisplayName": STR,
            "EmailAddresses": PROXY_ADDRESSES,
            "EmailAddressPolicyEnabled": BOOL,
            **{f"ExtensionCustomAttribute{n}": MULTI for n in range(1, 6)},
            "Force": SWITCH,
            "ForwardingAddress": _id("RecipientIdParameter"),
            "ForwardingSmtpAddress": PROXY_ADDRESS,
            "GrantSendOnBehalfTo": MULTI,
            "HiddenFromAddressListsEnabled": BOOL,
            "IgnoreDefaultScope": SWITCH,
            "IssueWarningQuota": QUOTA,
            "LitigationHoldEnabled": BOOL,
            "MaxReceiveSize": QUOTA,
            "MaxSendSize": QUOTA,
            "MessageCopyForSendOnBehalfEnabled": BOOL,
            "MessageCopyForSentAsEnabled": BOOL,
            "Name": STR,
            "Office": STR,
            "PrimarySmtpAddress": SMTP_ADDRESS,
            "ProhibitSendQuota": QUOTA,
            "ProhibitSendReceiveQuota": QUOTA,
            "RecoverableItemsQuota": QUOTA,
            "RecoverableItemsWarningQuota": QUOTA,
            "RetentionPolicy": POLICY_ID,
            "RoleAssignmentPolicy": POLICY_ID,
            "SingleItemRecoveryEnabled": BOOL,
            "UseDatabaseQuotaDefaults": BOOL,
            "UseDatabaseRetentionDefaults": BOOL,
            "WindowsEmailAddress": SMTP_ADDRESS,
            **_CUSTOM_ATTRIBUTES,
            **_WRITE,
        },
        ("Identity",),
    ),
    "Connect-Mailbox": (
        {
            "Identity": _id("StoreMailboxIdParameter"),
            "Database": _id("DatabaseIdParameter"),
            "User": _id("UserIdParameter"),
            "Alias": STR,
            "Force": SWITCH,
            **_WRITE,
        },
        ("Identity", "Database"),
    ),
    "Disable-Mailbox": (
        {
            "Identity": MAILBOX_ID,
            "Archive": SWITCH,
            "IgnoreDefaultScope": SWITCH,
            "IgnoreLegalHold": SWITCH,
            "PreserveEmailAddresses": SWITCH,
            **_WRITE,
        },
        ("Identity",),
    ),
    "Get-CASMailbox": (
        {"Identity": MAILBOX_ID, "Filter": STR, "ProtocolSettings": SWITCH, **_READ},
        (),
    ),
    "Set-CASMailbox": (
        {
            "Identity": MAILBOX_ID,
            "ActiveSyncEnabled": BOOL,
            "ActiveSyncMailboxPolicy": POLICY_ID,
            "ActiveSyncSuppressReadReceipt": BOOL,
            "DisplayName": STR,
            "ECPEnabled": BOOL,
            "EmailAddresses": PROXY_ADDRESSES,
            "EwsEnabled": BOOL,
            "IgnoreDefaultScope": SWITCH,
            "ImapEnabled": BOOL,
            "MAPIEnabled": BOOL,
            "MapiHttpEnabled": BOOL,
            "Name": STR,
            "OWAEnabled": BOOL,
            "OWAforDevicesEnabled": BOOL,
            "OwaMailboxPolicy": POLICY_ID,
            "PopEnabled": BOOL,
            "PrimarySmtpAddress": SMTP_ADDRESS,
            "UniversalOutlookEnabled": BOOL,
            **_WRITE,
        },
        ("Identity",),
    ),
    # An organization's mail contacts (issue #12): Exchange 2016/2019 syntax.
    "Get-MailContact": (
        {
            "Identity": MAIL_CONTACT_ID,
            "Anr": STR,
            "Filter": STR,
            "IgnoreDefaultScope": SWITCH,
            "OrganizationalUnit": _id("ExtendedOrganizationalUnitIdParameter"),
            "RecipientTypeDetails": Kind("multi", "Microsoft.Exchange.Data.Directory."
                                         "Recipient.RecipientTypeDetails[]"),
            "ResultSize": Kind("id", "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]"),
            "SortBy": STR,
            **_READ,
        },
        (),
    ),
    "New-MailContact": (
        {
            "Name": STR,
            "ExternalEmailAddress": PROXY_ADDRESS,
            "Alias": STR,
            "ArbitrationMailbox": MAILBOX_ID,
            "DisplayName": STR,
            "FirstName": STR,
            "Initials": STR,
            "LastName": STR,
            "MacAttachmentFormat": Kind(
                "enum", "Microsoft.Exchange.Data.ContentTypeOptions.MacAttachmentFormat",
                ("BinHex", "UuEncode", "AppleSingle", "AppleDouble")),
            "MessageBodyFormat": Kind(
                "enum", "Microsoft.Exchange.Data.ContentTypeOptions.MessageBodyFormat",
                ("Text", "Html", "TextAndHtml")),
            "MessageFormat": Kind(
                "enum", "Microsoft.Exchange.Data.ContentTypeOptions.MessageFormat",
                ("Text", "Mime")),
            "ModeratedBy": MULTI,
            "ModerationEnabled": BOOL,
            "OrganizationalUnit": _id("OrganizationalUnitIdParameter"),
            "PrimarySmtpAddress": SMTP_ADDRESS,
            "UsePreferMessageFormat": BOOL,
            **_WRITE,
        },
        ("Name", "ExternalEmailAddress"),
    ),
    "Set-MailContact": (
        {
            "Identity": MAIL_CONTACT_ID,
            "Alias": STR,
            "DisplayName": STR,
            "EmailAddresses": PROXY_ADDRESSES,
            "EmailAddressPolicyEnabled": BOOL,
            "ExternalEmailAddress": PROXY_ADDRESS,
            "HiddenFromAddressListsEnabled": BOOL,
            "IgnoreDefaultScope": SWITCH,
            "Name": STR,
            "PrimarySmtpAddress": SMTP_ADDRESS,
            "WindowsEmailAddress": SMTP_ADDRESS,
            **_CUSTOM_ATTRIBUTES,
            **{f"ExtensionCustomAttribute{n}": MULTI for n in range(1, 6)},
            **_WRITE,
        },
        ("Identity",),
    ),
    "Remove-MailContact": (
        {"Identity": MAIL_CONTACT_ID, "IgnoreDefaultScope": SWITCH, **_WRITE},
        ("Identity",),
    ),
    "Get-User": (
        {
            "Identity": _id("UserIdParameter"),
            "Filter": STR,
            "OrganizationalUnit": _id("OrganizationalUnitIdParameter"),
            **_READ,
        },
        (),
    ),
    "Set-User": (
        {
            "Identity": _id("UserIdParameter"),
            **{
                name: STR
                for name in (
                    "City", "Company", "Department", "DisplayName", "Fax", "FirstName",
                    "HomePhone", "Initials", "LastName", "MobilePhone", "Name", "Notes",
                    "Office", "Phone", "PostalCode", "StateOrProvince", "StreetAddress",
                    "Title", "WebPage",
                )
            },
            "Manager": _id("UserContactIdParameter"),
            "OtherTelephone": MULTI,
            **_WRITE,
        },
        ("Identity",),
    ),
}


def _net_type(value: Any) -> str:
    """The .NET type ConvertFrom-Json gives a JSON value."""
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return "System.Int32" if -(2**31) <= value < 2**31 else "System.Int64"
    if isinstance(value, float):
        return "System.Double"
    if isinstance(value, list):
        return "System.Object[]"
    return "System.String"


def _ps_text(value: Any) -> str:
    """A scalar as PowerShell writes it into a message ($true -> True)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _bool_error(cmdlet: str, name: str, kind: Kind, value: Any) -> CmdletError:
    shown = "" if value is None else _net_type(value)
    return bad_argument(
        cmdlet,
        name,
        f'Cannot convert value "{shown}" to type "{kind.type_name}". Boolean parameters '
        "accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
    )


def _value_error(cmdlet: str, name: str, kind: Kind, value: Any) -> CmdletError:
    return cannot_bind(
        cmdlet,
        name,
        f'Cannot convert the "{_ps_text(value)}" value of type "{_net_type(value)}" to type '
        f'"{kind.type_name}".',
    )


def _enum_names(cmdlet: str, name: str, kind: Kind, value: Any) -> str:
    parts = value if isinstance(value, list) else str(value).split(",")
    canonical = []
    for part in parts:
        if not isinstance(part, str):
            raise _value_error(cmdlet, name, kind, part)
        found = {v.casefold(): v for v in kind.values}.get(part.strip().casefold())
        if found is None:
            shown = ",".join(str(p) for p in parts) if isinstance(value, list) else value
            raise cannot_bind(
                cmdlet,
                name,
                f'Cannot convert value "{shown}" to type "{kind.type_name}". Error: "Unable to '
                f"match the identifier name {part.strip()} to a valid enumerator name. Specify "
                "one of the following enumerator names and try again:\r\n"
                + ", ".join(kind.values)
                + '"',
            )
        canonical.append(found)
    if kind.kind == "enum" and len(canonical) != 1:
        raise cannot_convert_collection(cmdlet, name, kind.type_name)
    return ", ".join(canonical)


def bind_value(cmdlet: str, name: str, kind: Kind, value: Any, mandatory: bool) -> Any:
    """One value as PowerShell would bind it to a compiled Exchange cmdlet, or its error."""
    if value is None:
        if mandatory:
            raise null_argument(cmdlet, name)
        if kind.kind in ("bool", "switch"):
            raise _bool_error(cmdlet, name, kind, value)
        if kind.kind in ("ids", "multi"):
            return []
        if kind.kind == "quota":
            raise cannot_bind(
                cmdlet, name, f'Cannot convert null to type "{kind.type_name}".'
            )
        return None
    if kind.kind in ("bool", "switch"):
        if isinstance(value, (bool, int, float)):
            return bool(value)
        raise _bool_error(cmdlet, name, kind, value)
    if kind.kind in ("ids", "multi"):
        items = value if isinstance(value, list) else [value]
        bound = []
        for item in items:
            if item is None:
                continue
            if kind.kind == "ids" and not isinstance(item, str):
                raise _value_error(cmdlet, name, kind, item)
            bound.append(_ps_text(item))
        return bound
    if isinstance(value, list):
        if kind.kind == "flags":
            return _enum_names(cmdlet, name, kind, value)
        raise cannot_convert_collection(cmdlet, name, kind.type_name)
    if kind.kind == "string":
        return _ps_text(value)
    if kind.kind in ("enum", "flags"):
        if not isinstance(value, str):
            raise _value_error(cmdlet, name, kind, value)
        return _enum_names(cmdlet, name, kind, value)
    if kind.kind == "quota":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _value_error(cmdlet, name, kind, value)
        try:
            size = parse_quota_bytes(value)
        except ValueError:
            raise cannot_bind(
                cmdlet,
                name,
                f'Cannot convert value "{value}" to type "{kind.type_name}". Error: "The '
                f"string '{value}' isn't correctly formatted.\"",
            ) from None
        return "Unlimited" if size is None else format_size(size)
    # id: Exchange parses identities, addresses and domains from strings only.
    if not isinstance(value, str):
        raise _value_error(cmdlet, name, kind, value)
    return value


def bind_parameters(cmdlet: str, raw: dict[str, Any]) -> dict[str, Any]:
    """PowerShell's parameter binding for these cmdlets: names without regard to case,
    no abbreviations (the template splats full names), the documented value types."""
    spec, mandatory = CMDLETS[cmdlet]
    by_folded = {name.casefold(): name for name in spec}
    bound: dict[str, Any] = {}
    for given, value in raw.items():
        name = by_folded.get(given.casefold())
        if name is None:
            raise parameter_not_found(cmdlet, given)
        bound[name] = bind_value(cmdlet, name, spec[name], value, name in mandatory)
    for switch in ("Confirm", "WhatIf"):
        bound.pop(switch, None)
    missing = [name for name in mandatory if bound.get(name) in (None, "", [])]
    if missing:
        raise missing_mandatory(cmdlet, missing)
    return bound


def format_size(size: int) -> str:
    for unit, factor in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            value = f"{size / factor:.3f}".rstrip("0").rstrip(".")
            return f"{value} {unit} ({size:,} bytes)"
    return f"{size} B ({size:,} bytes)"


def opath_quote(value: str) -> str:
    # Display only: Exchange shows the filter it derives from precanned conditions.
    return "'" + value.replace("'", "''") + "'"


# ------------------------------------------------------------- Exchange emulation
