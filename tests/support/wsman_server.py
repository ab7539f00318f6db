"""A WS-Management endpoint that answers like Exchange remote PowerShell, for tests.

It speaks the subset of WS-Man that pywinrm uses (shell Create, Command, Send, Receive,
Signal, Delete), answers an authenticated Identify (the admin's connection test), and is
as strict as Windows where Windows is strict:

* a command line (command and arguments) longer than cmd.exe's 8,191 characters never
  starts: the command ends with "The command line is too long." on stderr, exit code 1;
* the only command line accepted is the panel's fixed bootstrap, which reads its script
  from stdin; the cmdlet runs when the Send action closes stdin, never before;
* that script must be exactly the panel's template from ``provisioning.exchange`` with an
  allow-listed cmdlet and a base64 JSON literal;
* parameters bind as PowerShell binds them to the Exchange 2016/2019 cmdlets (`CMDLETS`):
  an unknown name or a value of the wrong type fails with PowerShell's own error.

It parses the script and never executes anything; any other command line or script is
recorded in ``violations`` (it would have run on a real server) and answered with an
error.

Exchange itself is emulated in memory (accepted domains, address lists, GALs, OABs,
address book policies, users and mailboxes) with Exchange's own error messages, so
the client's idempotency and error classification are tested against realistic
answers. ``fail_next`` injects timeouts, dropped connections and Exchange errors.

Run standalone for development::

    python -m tests.support.wsman_server --port 5985 --user admin --password secret

and look at the emulated organization with ``curl http://127.0.0.1:5985/state``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import hmac
import json
import os
import re
import socket
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from provisioning.exchange import (
    BOOTSTRAP_COMMAND_LINE,
    CMDLET_PLACEHOLDER,
    COMMAND_PREFIX,
    ERROR_MARKER,
    MAX_COMMAND_LINE,
    PARAMS_PLACEHOLDER,
    RESULT_MARKER,
    SCRIPT_TEMPLATE,
    command_line_length,
    mask_secrets,
    parse_quota_bytes,
)

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wsmid": "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd",
}
ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACTION_COMMAND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
ACTION_RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
ACTION_SIGNAL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
ACTION_SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
# What cmd.exe writes to stderr (exit code 1) when WinRS hands it a command line over
# 8,191 characters; e.g. Vagrant's WinRM debug log in hashicorp/vagrant#3816:
# {:data=>[{:stderr=>"The command line is too long.\r\n"}], :exitcode=>1}
COMMAND_LINE_TOO_LONG = b"The command line is too long.\r\n"
# What Windows Server 2019 answers an authenticated Identify (an anonymous one is told
# "OS: 0.0.0"); it has no WS-Addressing header at all.
IDENTIFY_RESPONSE = (
    '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
    "<s:Header/><s:Body>"
    f'<wsmid:IdentifyResponse xmlns:wsmid="{NS["wsmid"]}">'
    "<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
    "</wsmid:ProtocolVersion>"
    "<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>"
    "<wsmid:ProductVersion>OS: 10.0.17763 SP: 0.0 Stack: 3.0</wsmid:ProductVersion>"
    "<wsmid:SecurityProfiles><wsmid:SecurityProfileName>"
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos"
    "</wsmid:SecurityProfileName></wsmid:SecurityProfiles>"
    "</wsmid:IdentifyResponse></s:Body></s:Envelope>"
).encode()
WSMAN_TIMEOUT_CODE = 2150858793
WSMAN_SHELL_NOT_FOUND_CODE = 2150858843

FAULT_KINDS = frozenset(
    {"timeout", "timeout_after", "wsman_timeout", "error", "busy", "unavailable", "drop"}
)


def _template_pattern() -> re.Pattern[str]:
    # The expected script is the template itself; only the two placeholders may vary,
    # and only within alphabets that cannot close the single quotes around them.
    assert SCRIPT_TEMPLATE.count(CMDLET_PLACEHOLDER) == 1
    assert SCRIPT_TEMPLATE.count(PARAMS_PLACEHOLDER) == 1
    head, rest = SCRIPT_TEMPLATE.split(CMDLET_PLACEHOLDER)
    middle, tail = rest.split(PARAMS_PLACEHOLDER)
    return re.compile(
        re.escape(head)
        + r"(?P<cmdlet>[A-Z][a-z]+-[A-Za-z]+)"
        + re.escape(middle)
        + r"(?P<params>[A-Za-z0-9+/]*={0,2})"
        + re.escape(tail)
    )


TEMPLATE_PATTERN = _template_pattern()


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


# ------------------------------------------------------------------ fault injection


@dataclass
class Fault:
    kind: str
    count: int
    cmdlet: str | None
    message: str | None
    seconds: float | None
    exception: str | None


# ------------------------------------------------------------------------ WS-Man


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
        "<s:Header>"
        f"<a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>"
        "</s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault(relates_to: str, code: int, reason: str, subcode: str = "w:InternalError") -> bytes:
    body = (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value>"
        f"<s:Subcode><s:Value>{subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(reason)}</s:Text></s:Reason>'
        "<s:Detail>"
        '<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
        f'Code="{code}" Machine="exch01"><f:Message>{escape(reason)}</f:Message></f:WSManFault>'
        "</s:Detail></s:Fault>"
    )
    return _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


def _clixml_error(message: str) -> bytes:
    text = escape(message).replace("\n", "_x000D__x000A_")
    return (
        "#< CLIXML\r\n"
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        f'<S S="Error">{text}_x000D__x000A_</S></Objs>'
    ).encode()


def _marked(marker: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return (marker + base64.b64encode(data).decode("ascii") + "\r\n").encode("ascii")


@dataclass
class _Result:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0


@dataclass
class _Command:
    """A started command: its stdin so far, and its result once it has finished."""

    console_stdin: bool = True
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: bool = False
    result: _Result | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def finish(self, result: _Result) -> None:
        self.result = result
        self.finished.set()


@dataclass
class _Shell:
    commands: dict[str, _Command] = field(default_factory=dict)


def _operation_timeout(root: ET.Element) -> float:
    """The request's w:OperationTimeout (``PT20.000S``) in seconds; WinRM's default 60."""
    text = root.findtext(".//w:OperationTimeout", default="", namespaces=NS)
    match = re.fullmatch(r"\s*PT([0-9]+(?:\.[0-9]*)?)S\s*", text)
    return float(match.group(1)) if match else 60.0


class _Drop(Exception):
    """Close the connection without an answer."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm and delayed
    # ACKs every WS-Man round trip would wait ~40 ms.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.endpoint.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/state":
            self._send(404, b"not found", "text/plain")
            return
        data = json.dumps(self.server.endpoint.snapshot(), indent=2, ensure_ascii=False)
        self._send(200, data.encode("utf-8"), "application/json")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?", 1)[0] != "/wsman":
            self._send(404, b"", "text/plain")
            return
        if not self._authenticated():
            return
        try:
            status, reply = self.server.endpoint.dispatch(body)
        except _Drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(status, reply, "application/soap+xml;charset=UTF-8")

    def _send(self, status: int, body: bytes, content_type: str, headers=()) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _challenge(self, ntlm_token: str | None = None) -> None:
        endpoint = self.server.endpoint
        headers = []
        if ntlm_token:
            headers.append(("WWW-Authenticate", f"NTLM {ntlm_token}"))
        else:
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
            if endpoint.ntlm:
                headers.append(("WWW-Authenticate", "NTLM"))
        self._send(401, b"", "text/plain", headers)

    def _authenticated(self) -> bool:
        endpoint = self.server.endpoint
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            if hmac.compare_digest(user.encode(), endpoint.username.encode()) and (
                hmac.compare_digest(password.encode(), endpoint.password.encode())
            ):
                return True
        elif scheme.lower() == "ntlm" and endpoint.ntlm:
            return self._ntlm_step(value)
        self._challenge()
        return False

    def _ntlm_step(self, value: str) -> bool:
        import spnego
        from spnego.exceptions import SpnegoError

        # NTLM authenticates the connection, and this handler instance lives exactly as
        # long as one connection, so the half-finished context is kept on it.
        try:
            token = base64.b64decode(value)
            if getattr(self, "_ntlm_context", None) is None or token[8:12] == b"\x01\0\0\0":
                self._ntlm_context = spnego.server(protocol="ntlm")
            answer = self._ntlm_context.step(token)
        except (SpnegoError, binascii.Error, ValueError):
            self._ntlm_context = None
            self._challenge()
            return False
        if not self._ntlm_context.complete:
            self._challenge(base64.b64encode(answer or b"").decode("ascii"))
            return False
        self._ntlm_context = None
        return True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    endpoint: WSManServer


class WSManServer:
    """An in-process WinRM endpoint emulating Exchange; see the module docstring."""

    def __init__(
        self,
        username: str = "admin",
        password: str = "secret",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ntlm: bool = False,
        databases: tuple[str, ...] = ("DB01", "DB02"),
        domain: str = "hosting.test",
        timeout_seconds: float = 5.0,
        verbose: bool = False,
    ) -> None:
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.ntlm = ntlm
        self.timeout_seconds = timeout_seconds
        self.verbose = verbose
        self.exchange = FakeExchange(domain=domain, dc=f"dc01.{domain}", databases=databases)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._calls: list[tuple[str, dict[str, Any]]] = []
        self._violations: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._identify_count = 0
        self._shells: dict[str, _Shell] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ntlm_file: str | None = None
        self._saved_ntlm_env: str | None = None

    # -- lifecycle ----------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the endpoint is not running")
        return f"http://{self.host}:{self._httpd.server_address[1]}/wsman"

    def start(self) -> str:
        """Listen and serve in a background thread; returns the /wsman URL."""
        if self.ntlm:
            self._install_ntlm_credentials()
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), _Handler)
        self._httpd.endpoint = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="wsman-endpoint",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None
        if self._ntlm_file:
            os.unlink(self._ntlm_file)
            if self._saved_ntlm_env is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = self._saved_ntlm_env
            self._ntlm_file = None

    def __enter__(self) -> WSManServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _install_ntlm_credentials(self) -> None:
        # pyspnego's NTLM acceptor only reads credentials from the file named by
        # NTLM_USER_FILE, so the variable is set for this process while we run.
        domain, _, user = self.username.rpartition("\\")
        fd, path = tempfile.mkstemp(prefix="wsman-ntlm-")
        with os.fdopen(fd, "w") as handle:
            handle.write(f":{user}:{self.password}\n")
            if domain:
                handle.write(f"{domain}:{user}:{self.password}\n")
        self._ntlm_file = path
        self._saved_ntlm_env = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = path

    # -- what tests look at --------------------------------------------------------

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """Every cmdlet that reached Exchange, with its parameters as received."""
        with self._lock:
            return copy.deepcopy(self._calls)

    @property
    def violations(self) -> list[dict[str, Any]]:
        """Scripts that did not match the template: each would have run on a real server."""
        with self._lock:
            return copy.deepcopy(self._violations)

    def calls_to(self, cmdlet: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == cmdlet]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "exchange": self.exchange.snapshot(),
                "calls": [{"cmdlet": c, "params": p} for c, p in self._calls],
                "violations": copy.deepcopy(self._violations),
                "open_shells": len(self._shells),
            }

    @property
    def identify_count(self) -> int:
        """Authenticated Identify requests answered (they reach no shell and no cmdlet)."""
        with self._lock:
            return self._identify_count

    @property
    def open_shells(self) -> int:
        with self._lock:
            return len(self._shells)

    @property
    def pending_faults(self) -> int:
        """How many injected faults no command has met yet."""
        with self._lock:
            return sum(fault.count for fault in self._faults)

    def fail_next(
        self,
        kind: str,
        count: int = 1,
        cmdlet: str | None = None,
        *,
        message: str | None = None,
        seconds: float | None = None,
        exception: str | None = None,
    ) -> None:
        """Make the next ``count`` commands (of ``cmdlet``, if given) fail.

        timeout        sleep before running anything, past the client's read timeout
        timeout_after  run the cmdlet, then sleep: the change happened, the reply is lost
        wsman_timeout  answer the WS-Man OperationTimeout fault to the Command request
        error          a permanent Exchange error (``message``, ``exception``)
        busy           a transient Exchange error (AD server busy)
        unavailable    HTTP 503 without a body
        drop           close the connection without any answer
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._faults.append(Fault(kind, count, cmdlet, message, seconds, exception))

    def _take_fault(self, cmdlet: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.cmdlet is None or fault.cmdlet == cmdlet:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- WS-Man ------------------------------------------------------------------------

    def dispatch(self, body: bytes) -> tuple[int, bytes]:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            # Encrypted NTLM messages (message_encryption != 'never') end up here too.
            return 400, _fault("", 2150858817, "The request is not a SOAP envelope.")
        action = root.findtext(".//a:Action", default="", namespaces=NS).strip()
        message_id = root.findtext(".//a:MessageID", default="", namespaces=NS).strip()
        selector = root.find(".//w:Selector[@Name='ShellId']", NS)
        shell_id = selector.text.strip() if selector is not None and selector.text else None

        if not action and root.find("env:Body/wsmid:Identify", NS) is not None:
            with self._lock:
                self._identify_count += 1
            return 200, IDENTIFY_RESPONSE

        if action == ACTION_CREATE:
            shell_id = str(uuid.uuid4()).upper()
            with self._lock:
                self._shells[shell_id] = _Shell()
            body_xml = (
                "<x:ResourceCreated><a:Address>http://exch01:5985/wsman</a:Address>"
                "<a:ReferenceParameters><w:ResourceURI>"
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"
                f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector>'
                "</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
                f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId></rsp:Shell>"
            )
            return 200, _envelope(ACTION_CREATE + "Response", message_id, body_xml)

        with self._lock:
            shell = self._shells.get(shell_id or "")
        if shell is None:
            return 500, _fault(
                message_id,
                WSMAN_SHELL_NOT_FOUND_CODE,
                f"The request for the Windows Remote Shell with ShellId {shell_id} failed "
                "because the shell was not found on the server.",
            )

        if action == ACTION_COMMAND:
            return self._command(root, message_id, shell)
        if action == ACTION_SEND:
            return self._send_input(root, message_id, shell)
        if action == ACTION_RECEIVE:
            desired = root.find(".//rsp:DesiredStream", NS)
            command_id = desired.get("CommandId", "") if desired is not None else ""
            command = shell.commands.get(command_id)
            if command is None:
                return 500, _fault(message_id, 2150858843, "The command was not found.")
            # Like WinRM, a Receive waits for output until the operation timeout; the
            # bootstrap writes nothing before its stdin is closed.
            if not command.finished.wait(_operation_timeout(root)):
                return self._network_fault(Fault("wsman_timeout", 1, None, None, None, None),
                                           message_id)
            result = command.result
            assert result is not None
            streams = "".join(
                f'<rsp:Stream Name="{name}" CommandId="{command_id}">'
                f"{base64.b64encode(data).decode()}</rsp:Stream>"
                for name, data in (("stdout", result.stdout), ("stderr", result.stderr))
                if data
            ) + "".join(
                f'<rsp:Stream Name="{name}" CommandId="{command_id}" End="true"></rsp:Stream>'
                for name in ("stdout", "stderr")
            )
            state = (
                f'<rsp:CommandState CommandId="{command_id}" State="http://schemas.microsoft.com'
                '/wbem/wsman/1/windows/shell/CommandState/Done">'
                f"<rsp:ExitCode>{result.exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
            body_xml = f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"
            return 200, _envelope(ACTION_RECEIVE + "Response", message_id, body_xml)
        if action == ACTION_SIGNAL:
            signal = root.find(".//rsp:Signal", NS)
            if signal is not None:
                shell.commands.pop(signal.get("CommandId", ""), None)
            return 200, _envelope(ACTION_SIGNAL + "Response", message_id, "<rsp:SignalResponse/>")
        if action == ACTION_DELETE:
            with self._lock:
                self._shells.pop(shell_id or "", None)
            return 200, _envelope(ACTION_DELETE + "Response", message_id, "")
        return 400, _fault(message_id, 2150858817, f"Unsupported action {action}.")

    def _command(self, root: ET.Element, message_id: str, shell: _Shell) -> tuple[int, bytes]:
        command_line = root.findtext(".//rsp:Command", default="", namespaces=NS)
        arguments = [a.text or "" for a in root.findall(".//rsp:Arguments", NS)]
        options = {
            option.get("Name", ""): (option.text or "").strip().upper()
            for option in root.findall(".//w:OptionSet/w:Option", NS)
        }
        command = _Command(console_stdin=options.get("WINRS_CONSOLEMODE_STDIN") != "FALSE")
        # cmd.exe refuses the whole line before anything runs, so this comes first.
        if command_line_length(" ".join([command_line, *arguments])) > MAX_COMMAND_LINE:
            command.finish(_Result(stderr=COMMAND_LINE_TOO_LONG, exit_code=1))
        else:
            refused = self._check_command_line(command_line, arguments)
            if refused is not None:
                command.finish(_Result(stderr=_clixml_error(refused), exit_code=1))
        command_id = str(uuid.uuid4()).upper()
        shell.commands[command_id] = command
        body_xml = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
        body_xml += "</rsp:CommandResponse>"
        return 200, _envelope(ACTION_COMMAND + "Response", message_id, body_xml)

    def _send_input(self, root: ET.Element, message_id: str, shell: _Shell) -> tuple[int, bytes]:
        stream = root.find(".//rsp:Send/rsp:Stream", NS)
        if stream is None or stream.get("Name") != "stdin":
            return 400, _fault(message_id, 2150858817, "Only the stdin stream can be sent.")
        command = shell.commands.get(stream.get("CommandId", ""))
        if command is None:
            return 500, _fault(message_id, 2150858843, "The command was not found.")
        if command.stdin_closed:
            # The endpoint's own wording: the process has exited or its stdin was closed.
            return 500, _fault(message_id, 2150858843, "The stdin of the command is closed.")
        try:
            command.stdin += base64.b64decode((stream.text or "").strip(), validate=True)
        except binascii.Error:
            return 400, _fault(message_id, 2150858817, "The stdin data is not base64.")
        if stream.get("End", "").strip().lower() == "true":
            command.stdin_closed = True
            answer = self._run_stdin(command, message_id)
            if answer is not None:
                return answer
        return 200, _envelope(ACTION_SEND + "Response", message_id, "<rsp:SendResponse/>")

    def _run_stdin(self, command: _Command, message_id: str) -> tuple[int, bytes] | None:
        """The bootstrap read its whole stdin: check the script, then run the cmdlet."""
        if command.finished.is_set():
            return None  # refused at Command time: nothing reads stdin
        parsed = self._parse_script(bytes(command.stdin))
        cmdlet = parsed[0] if isinstance(parsed, tuple) else None

        fault = self._take_fault(cmdlet)
        if fault is not None and fault.kind in ("timeout", "drop", "wsman_timeout", "unavailable"):
            return self._network_fault(fault, message_id)

        if isinstance(parsed, str):
            result = _Result(stderr=_clixml_error(parsed), exit_code=1)
        elif command.console_stdin:
            # Not Windows' text: with a console for stdin the bootstrap would wait forever.
            result = _Result(
                stderr=_clixml_error(
                    "wsman test endpoint: the bootstrap reads its script from a pipe; "
                    "run it with WINRS_CONSOLEMODE_STDIN=FALSE."
                ),
                exit_code=1,
            )
        else:
            result = self._run_cmdlet(*parsed, fault=fault)
        command.finish(result)
        if fault is not None and fault.kind == "timeout_after":
            self._stopping.wait(fault.seconds or self.timeout_seconds)
            raise _Drop
        return None

    def _network_fault(self, fault: Fault, message_id: str) -> tuple[int, bytes]:
        if fault.kind == "timeout":
            self._stopping.wait(fault.seconds or self.timeout_seconds)
            raise _Drop
        if fault.kind == "drop":
            raise _Drop
        if fault.kind == "unavailable":
            return 503, b""
        return 500, _fault(
            message_id,
            WSMAN_TIMEOUT_CODE,
            "The WS-Management service cannot complete the operation within the time "
            "specified in OperationTimeout.",
            subcode="w:TimedOut",
        )

    def _violation(self, reason: str, text: str) -> str:
        with self._lock:
            self._violations.append({"reason": reason, "text": text})
        return (
            f"wsman test endpoint: {reason}. On a real Exchange server this would have been "
            "executed."
        )

    def _check_command_line(self, command_line: str, arguments: list[str]) -> str | None:
        """None for the panel's bootstrap; otherwise the violation's message."""
        if arguments:
            extra = " ".join(arguments)
            return self._violation("the command has arguments", f"{command_line} {extra}")
        if command_line == BOOTSTRAP_COMMAND_LINE:
            return None
        reason = "the command line is not the panel's bootstrap"
        if command_line.startswith(COMMAND_PREFIX):
            try:
                script = base64.b64decode(
                    command_line[len(COMMAND_PREFIX) :], validate=True
                ).decode("utf-16-le")
            except (binascii.Error, UnicodeDecodeError):
                script = ""
            if TEMPLATE_PATTERN.fullmatch(script):
                reason = "the script travels on the command line, not on stdin"
        return self._violation(reason, command_line)

    def _parse_script(self, data: bytes) -> tuple[str, dict[str, Any]] | str:
        """(cmdlet, params) for a template call read from stdin; else the violation's message."""
        try:
            # The console's OEM code page would alter anything but ASCII before PowerShell
            # parsed it; the template and its base64 literals are ASCII.
            script = data.decode("ascii")
        except UnicodeDecodeError:
            return self._violation(
                "the script on stdin is not ASCII", data.decode("latin-1")
            )
        match = TEMPLATE_PATTERN.fullmatch(script)
        if match is None:
            return self._violation("the script does not match the template", script)
        cmdlet = match.group("cmdlet")
        if cmdlet not in CMDLETS:
            return self._violation(f"{cmdlet} is not an Exchange cmdlet the panel uses", script)
        try:
            params = json.loads(base64.b64decode(match.group("params")).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            params = None
        if not isinstance(params, dict):
            # ConvertFrom-Json would fail inside the try block: an error, not a violation.
            return "Invalid JSON primitive in the panel's parameters."
        return cmdlet, params

    def _run_cmdlet(self, cmdlet: str, params: dict[str, Any], fault: Fault | None) -> _Result:
        with self._lock:
            self._calls.append((cmdlet, copy.deepcopy(params)))
            if self.verbose:
                print(cmdlet, json.dumps(mask_secrets(params), ensure_ascii=False), flush=True)
            try:
                if fault is not None and fault.kind == "error":
                    raise CmdletError(
                        fault.message
                        or "The operation couldn't be performed because of an internal error.",
                        fault.exception or "Microsoft.Exchange.Configuration.Tasks.TaskException",
                        "NotSpecified",
                        "[FailureCategory=Cmdlet-TaskException] 7D2A4C11," + _task(cmdlet),
                    )
                if fault is not None and fault.kind == "busy":
                    raise CmdletError(
                        fault.message
                        or f"Active Directory server {self.exchange.dc} is not available. "
                        "The server is busy.",
                        "Microsoft.Exchange.Data.Directory.ADTransientException",
                        "ResourceUnavailable",
                        "[FailureCategory=Cmdlet-ADTransientException] 3C1B9E07," + _task(cmdlet),
                    )
                output, warnings = self.exchange.execute(cmdlet, params)
            except CmdletError as exc:
                return _Result(stderr=_marked(ERROR_MARKER, exc.payload), exit_code=1)
        warning_text = "".join(f"WARNING: {w}\r\n" for w in warnings).encode("utf-8")
        payload = {"output": output, "warnings": warnings}
        return _Result(stdout=warning_text + _marked(RESULT_MARKER, payload), exit_code=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5985)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--ntlm", action="store_true", help="also accept NTLM (no encryption)")
    args = parser.parse_args(argv)
    server = WSManServer(
        args.user, args.password, host=args.host, port=args.port, ntlm=args.ntlm, verbose=True
    )
    url = server.start()
    print(f"WinRM endpoint emulating Exchange at {url}", flush=True)
    print(f"state: http://{args.host}:{args.port}/state  (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
