"""Exchange management over WinRM: data goes to PowerShell, never code.

Every cmdlet runs through one fixed PowerShell template (`SCRIPT_TEMPLATE`). Only two
things vary between calls, and both are confined to single-quoted PowerShell literals
whose alphabet cannot contain a quote:

* the cmdlet name, which must match ``^[A-Z][a-z]+-[A-Za-z]+$`` and be in
  `ALLOWED_CMDLETS`;
* the parameters, serialised as JSON, UTF-8 encoded and base64 encoded.

The script decodes the parameters with ``ConvertFrom-Json``, copies them into a
hashtable and splats them onto the cmdlet, so a value such as ``'; Remove-Mailbox x``
reaches Exchange as a string and is never parsed by PowerShell.

The script never travels on the command line. WinRS starts a command through cmd.exe,
whose command line is limited to 8,191 characters, and the template alone, UTF-16LE and
base64 encoded, already takes ~6,400 of them. So the command line is always the same short
`BOOTSTRAP_COMMAND_LINE`, which reads the script from stdin and runs it; the script goes
over the WS-Management Send action. Neither the parameters nor any password ever appear
in the command line (which Windows records in process-creation audit events).

This module must stay importable without Django: the Celery tasks wrap it, and the test
WS-Management endpoint (``tests/support/wsman_server.py``) imports the template from it.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import time
import xml.etree.ElementTree as ET  # noqa: S405 - parses replies of the configured endpoint, never input from users
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

CMDLET_PATTERN = re.compile(r"^[A-Z][a-z]+-[A-Za-z]+$")
PARAMETER_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")

ALLOWED_CMDLETS = frozenset(
    {
        "Get-AcceptedDomain",
        "New-AcceptedDomain",
        "Get-AddressList",
        "New-AddressList",
        "Get-GlobalAddressList",
        "New-GlobalAddressList",
        "Get-OfflineAddressBook",
        "New-OfflineAddressBook",
        "Get-AddressBookPolicy",
        "New-AddressBookPolicy",
        "Get-Mailbox",
        "Enable-Mailbox",
        "Set-Mailbox",
        "Disable-Mailbox",
        "Connect-Mailbox",
        "Get-CASMailbox",
        "Set-CASMailbox",
        "Get-User",
        "Set-User",
        # An organization's teardown (DeleteOrganization in provisioning/actions.py).
        "Remove-AddressBookPolicy",
        "Remove-OfflineAddressBook",
        "Remove-AddressList",
        "Remove-GlobalAddressList",
        "Remove-AcceptedDomain",
        # An organization's mail contacts (issue #12).
        "Get-MailContact",
        "New-MailContact",
        "Set-MailContact",
        "Remove-MailContact",
    }
)

# Common parameters change how PowerShell itself behaves (where errors go, which
# variables get written) rather than what Exchange does; the template relies on its own
# error and warning handling, so data may not override them.
FORBIDDEN_PARAMETERS = frozenset(
    name.casefold()
    for name in (
        "Debug",
        "ErrorAction",
        "ErrorVariable",
        "InformationAction",
        "InformationVariable",
        "OutBuffer",
        "OutVariable",
        "PipelineVariable",
        "Verbose",
        "WarningAction",
        "WarningVariable",
        "WhatIf",
    )
)

CMDLET_PLACEHOLDER = "__PANEL_CMDLET__"
PARAMS_PLACEHOLDER = "__PANEL_PARAMS_B64__"
RESULT_MARKER = "#panel-result "
ERROR_MARKER = "#panel-error "

# -NonInteractive turns any confirmation prompt into an error instead of a shell that
# hangs until the WinRM idle timeout; -NoProfile keeps a server's profile scripts out.
COMMAND_PREFIX = "powershell -NoProfile -NonInteractive -EncodedCommand "

# cmd.exe's limit, which WinRS inherits because it starts every command through cmd.exe
# (WINRS_SKIP_CMD_SHELL=FALSE, pywinrm's default): a longer command never starts and the
# caller reads "The command line is too long." on stderr with exit code 1.
MAX_COMMAND_LINE = 8191

# The only command line the client sends. It reads the whole script from stdin (sent as
# ASCII, so the console's OEM code page cannot alter it) and runs it as a script block.
# The template's own `exit` ends powershell.exe with its exit code; the last line only
# covers a script that ends without one.
BOOTSTRAP_SCRIPT = (
    "$panelScript = [Console]::In.ReadToEnd()\n"
    "& ([ScriptBlock]::Create($panelScript))\n"
    "exit $LASTEXITCODE\n"
)

# One Send per chunk keeps each envelope well below WinRM's MaxEnvelopeSizekb (150 KB on
# old servers, 500 KB by default since Windows Server 2012), base64 included.
STDIN_CHUNK = 64 * 1024

# Output and errors travel base64-encoded because powershell.exe writes its streams in
# the shell's OEM code page (437 over WinRM), which would mangle non-ASCII names, and
# because Exchange warnings and progress records share the same streams.
SCRIPT_TEMPLATE = r"""$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$WarningPreference = 'Continue'
function ConvertTo-PanelValue($Value) {
    if ($null -eq $Value) { return $null }
    if ($Value -is [string] -or $Value -is [bool] -or $Value -is [int] -or $Value -is [long]) {
        return $Value
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        return ,@($Value | ForEach-Object { if ($null -eq $_) { $null } else { [string]$_ } })
    }
    return [string]$Value
}
function Write-PanelStream($Writer, $Marker, $Object) {
    $json = ConvertTo-Json -InputObject $Object -Depth 4 -Compress
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($json)
    $Writer.WriteLine($Marker + [Convert]::ToBase64String($bytes))
}
try {
    if (-not (Get-Command -Name 'Get-Mailbox' -ErrorAction SilentlyContinue)) {
        Add-PSSnapin -Name 'Microsoft.Exchange.Management.PowerShell.SnapIn'
    }
    $panelCmdlet = '__PANEL_CMDLET__'
    $panelBytes = [Convert]::FromBase64String('__PANEL_PARAMS_B64__')
    $panelJson = [System.Text.Encoding]::UTF8.GetString($panelBytes)
    $panelParams = @{}
    foreach ($property in ($panelJson | ConvertFrom-Json).PSObject.Properties) {
        $panelParams[$property.Name] = $property.Value
    }
    $panelOutput = New-Object System.Collections.ArrayList
    $panelWarnings = New-Object System.Collections.ArrayList
    & $panelCmdlet @panelParams 3>&1 | ForEach-Object {
        $item = $_
        if ($item -is [System.Management.Automation.WarningRecord]) {
            [void]$panelWarnings.Add($item.Message)
        } else {
            $row = [ordered]@{}
            foreach ($property in $item.PSObject.Properties) {
                try { $row[$property.Name] = ConvertTo-PanelValue $property.Value }
                catch { $row[$property.Name] = $null }
            }
            [void]$panelOutput.Add($row)
        }
    }
    $panelResult = [ordered]@{ output = $panelOutput; warnings = $panelWarnings }
    Write-PanelStream ([Console]::Out) '#panel-result ' $panelResult
    exit 0
} catch {
    Write-PanelStream ([Console]::Error) '#panel-error ' ([ordered]@{
        message = $_.Exception.Message
        exception = $_.Exception.GetType().FullName
        category = [string]$_.CategoryInfo.Category
        reason = [string]$_.CategoryInfo.Reason
        error_id = [string]$_.FullyQualifiedErrorId
    })
    exit 1
}
"""

SECRET_MASK = "********"

WSMID = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
IDENTIFY_ENVELOPE = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    f'xmlns:wsmid="{WSMID}"><s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>'
)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ExchangeSettings:
    endpoint: str
    transport: str = "ntlm"
    username: str = ""
    password: str = field(default="", repr=False)
    verify_tls: bool = True
    ca_file: str | None = None
    read_timeout: float = 30
    operation_timeout: float = 20
    default_database: str = ""
    message_encryption: str = "auto"
    # Plain-http Basic auth, or NTLM without message encryption, sends the service
    # account's password or every cmdlet in the clear: only a test endpoint may ask.
    allow_insecure: bool = False
    # pywinrm retries the WS-Man operation-timeout fault forever; this bounds one call.
    command_timeout: float = 300
    proxy: str | None = None

    def __post_init__(self) -> None:
        if not re.match(r"^https?://[^/\s]+", self.endpoint, re.IGNORECASE):
            raise ValueError("Exchange endpoint must be an http:// or https:// URL")
        if self.transport not in ("ntlm", "kerberos", "basic"):
            raise ValueError("Exchange transport must be ntlm, kerberos or basic")
        if self.message_encryption not in ("auto", "always", "never"):
            raise ValueError("message_encryption must be auto, always or never")
        if self.transport != "kerberos" and not (self.username and self.password):
            raise ValueError(f"transport {self.transport} needs a username and a password")
        if self.operation_timeout < 1 or self.read_timeout_sec <= self.operation_timeout_sec:
            raise ValueError("operation_timeout must be at least 1 s and below read_timeout")
        if self.command_timeout <= 0:
            raise ValueError("command_timeout must be positive")
        https = self.endpoint.lower().startswith("https://")
        cleartext = (self.transport == "basic" and not https) or (
            self.transport == "ntlm" and not https and self.message_encryption == "never"
        )
        if cleartext and not self.allow_insecure:
            raise ValueError(
                "this transport would send credentials or data in clear text over http; "
                "use https or set allow_insecure for a test endpoint"
            )

    # pywinrm parses both timeouts as whole seconds.
    @property
    def read_timeout_sec(self) -> int:
        return math.ceil(self.read_timeout)

    @property
    def operation_timeout_sec(self) -> int:
        return math.ceil(self.operation_timeout)


# ----------------------------------------------------------------------------- errors


class ExchangeError(Exception):
    """A cmdlet did not do what was asked.

    ``user_message`` is fit for the panel's UI and the operation journal;
    ``exchange_message`` is what Exchange (or the transport) said, verbatim.
    """

    transient = False

    def __init__(
        self,
        user_message: str,
        *,
        exchange_message: str = "",
        kind: str = "failed",
        cmdlet: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.exchange_message = exchange_message
        self.kind = kind
        self.cmdlet = cmdlet
        self.details = dict(details or {})

    def __str__(self) -> str:
        if self.exchange_message and self.exchange_message not in self.user_message:
            return f"{self.user_message} ({self.exchange_message})"
        return self.user_message


class TransientExchangeError(ExchangeError):
    """Retry later: the server was unreachable, slow or busy.

    After a timeout the cmdlet may or may not have run, which is why every helper looks
    before it changes anything.
    """

    transient = True


class PermanentExchangeError(ExchangeError):
    """Retrying the same call will fail the same way."""


# ------------------------------------------------------------------ quota helpers

_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_QUOTA_PATTERN = re.compile(
    r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB)?\s*(?:\(([0-9,]+) bytes\))?\s*$", re.I
)


def format_quota_mb(megabytes: int | None) -> str:
    """The value Set-Mailbox expects for a quota given in MB; None means unlimited."""
    if megabytes is None:
        return "Unlimited"
    if megabytes < 0:
        raise ValueError("a quota cannot be negative")
    return f"{int(megabytes)}MB"


def parse_quota_bytes(text: str | int | None) -> int | None:
    """Bytes in an Exchange size such as ``2 GB (2,147,483,648 bytes)``; None = unlimited.

    Exchange reports quotas in that display form, so comparing a plan's quota with a
    mailbox's current one needs the byte count, not the string.
    """
    if text is None:
        return None
    if isinstance(text, int):
        return text
    if text.strip().casefold() == "unlimited":
        return None
    match = _QUOTA_PATTERN.match(text)
    if not match:
        raise ValueError(f"not an Exchange size: {text!r}")
    if match.group(3):
        return int(match.group(3).replace(",", ""))
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "B").upper()])


# --------------------------------------------------------------------- the script


def _check_cmdlet(cmdlet: str) -> None:
    if not isinstance(cmdlet, str) or not CMDLET_PATTERN.match(cmdlet):
        raise PermanentExchangeError(
            "refused to run a malformed cmdlet name", kind="invalid_cmdlet", cmdlet=str(cmdlet)
        )
    if cmdlet not in ALLOWED_CMDLETS:
        raise PermanentExchangeError(
            f"the panel does not run {cmdlet}", kind="invalid_cmdlet", cmdlet=cmdlet
        )


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, bool, int))


def _check_value(name: str, value: Any) -> None:
    if _is_scalar(value):
        return
    if isinstance(value, (list, tuple)) and all(_is_scalar(v) for v in value):
        return
    # Nested objects would reach the cmdlet as a PSCustomObject rather than a hashtable,
    # which Exchange binds unpredictably; no cmdlet the panel runs needs them.
    raise PermanentExchangeError(
        f"parameter {name} has an unsupported type {type(value).__name__}",
        kind="invalid_parameter",
    )


def _check_params(cmdlet: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    params = dict(params or {})
    seen: set[str] = set()
    for name, value in params.items():
        if not isinstance(name, str) or not PARAMETER_PATTERN.match(name):
            raise PermanentExchangeError(
                f"refused a malformed parameter name {name!r}",
                kind="invalid_parameter",
                cmdlet=cmdlet,
            )
        # PowerShell binds parameter names without regard to case, so two spellings of
        # one name would make the outcome depend on ConvertFrom-Json's handling.
        if name.casefold() in seen:
            raise PermanentExchangeError(
                f"parameter {name} is given twice", kind="invalid_parameter", cmdlet=cmdlet
            )
        seen.add(name.casefold())
        if name.casefold() in FORBIDDEN_PARAMETERS:
            raise PermanentExchangeError(
                f"parameter {name} is reserved for the panel's own script",
                kind="invalid_parameter",
                cmdlet=cmdlet,
            )
        _check_value(name, value)
    return params


def build_script(cmdlet: str, params: Mapping[str, Any] | None = None) -> str:
    """The PowerShell the endpoint receives for one cmdlet call."""
    _check_cmdlet(cmdlet)
    return _render(cmdlet, _check_params(cmdlet, params))


def _render(cmdlet: str, checked: dict[str, Any]) -> str:
    payload = json.dumps(checked, ensure_ascii=False, allow_nan=False).encode("utf-8")
    encoded = base64.b64encode(payload).decode("ascii")
    return SCRIPT_TEMPLATE.replace(CMDLET_PLACEHOLDER, cmdlet).replace(PARAMS_PLACEHOLDER, encoded)


def build_command_line(script: str) -> str:
    """``powershell ... -EncodedCommand <script>``: only ever used for the bootstrap."""
    return COMMAND_PREFIX + base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def command_line_length(command_line: str) -> int:
    """Length as Windows counts it: UTF-16 code units."""
    return len(command_line.encode("utf-16-le")) // 2


BOOTSTRAP_COMMAND_LINE = build_command_line(BOOTSTRAP_SCRIPT)
assert command_line_length(BOOTSTRAP_COMMAND_LINE) <= MAX_COMMAND_LINE


def build_stdin(script: str) -> bytes:
    """The bytes the bootstrap reads: the script, which is ASCII by construction."""
    return script.encode("ascii")


def mask_secrets(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (SECRET_MASK if "password" in k.casefold() else v) for k, v in params.items()}


def _find_marked(text: str, marker: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        position = line.find(marker)
        if position < 0:
            continue
        encoded = line[position + len(marker) :].strip()
        try:
            decoded = json.loads(base64.b64decode(encoded, validate=True).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        return decoded if isinstance(decoded, dict) else None
    return None


def clean_clixml(text: str) -> str:
    """The error lines of a ``#< CLIXML`` stream as plain text (other text unchanged)."""
    start = text.find("#< CLIXML")
    if start < 0:
        return text.strip()
    body = text[start + len("#< CLIXML") :].strip()
    end = body.rfind("</Objs>")
    if end < 0:
        return text.strip()
    xml_text, rest = body[: end + len("</Objs>")], body[end + len("</Objs>") :]
    try:
        root = ET.fromstring(xml_text)  # noqa: S314 - the shell's own error stream
    except ET.ParseError:
        return text.strip()
    lines = [
        node.text
        for node in root.iter()
        if node.tag.rsplit("}", 1)[-1] == "S" and node.get("S") == "Error" and node.text
    ]

    def unescape(match: re.Match[str]) -> str:
        return chr(int(match.group(1), 16))

    message = re.sub(r"_x([0-9A-Fa-f]{4})_", unescape, "".join(lines)).strip()
    return "\n".join(part for part in (text[:start].strip(), message, rest.strip()) if part)


# ----------------------------------------------------------------- classification

# Decided on the exception type, category and error id first: those come from Exchange's
# code, whereas the message may quote an object name that a customer chose (an identity
# called "server is busy" must not make a not-found error retry forever).
_STRUCTURAL_RULES: tuple[tuple[str, str, bool], ...] = (
    ("managementobjectnotfound", "not_found", False),
    ("objectnotfound", "not_found", False),
    ("managementobjectambiguous", "ambiguous", False),
    ("alreadyexists", "already_exists", False),
    ("resourceexists", "already_exists", False),
    ("proxyaddressexists", "already_exists", False),
    ("notaccepteddomain", "not_accepted_domain", False),
    ("parameterbinding", "invalid_parameter", False),
    ("namedparameternotfound", "invalid_parameter", False),
    ("invalidargument", "invalid_parameter", False),
    ("unauthorizedaccess", "access_denied", False),
    ("permissiondenied", "access_denied", False),
    ("transient", "busy", True),
    ("serverbusy", "busy", True),
    ("resourcebusy", "busy", True),
    ("resourceunavailable", "busy", True),
    ("operationtimeout", "timeout", True),
    ("timeoutexception", "timeout", True),
    ("connectionerror", "unreachable", True),
)

_MESSAGE_RULES: tuple[tuple[str, str, bool], ...] = (
    ("couldn't be found", "not_found", False),
    ("could not be found", "not_found", False),
    ("matches multiple entries", "ambiguous", False),
    ("already exists", "already_exists", False),
    ("the command line is too long", "command_too_long", False),
    ("a parameter cannot be found", "invalid_parameter", False),
    ("cannot bind parameter", "invalid_parameter", False),
    ("cannot process argument", "invalid_parameter", False),
    ("invalid parameter", "invalid_parameter", False),
    ("access is denied", "access_denied", False),
    ("access denied", "access_denied", False),
    ("server is busy", "busy", True),
    ("try again later", "busy", True),
    ("temporarily unavailable", "busy", True),
    ("is not available", "busy", True),
    ("timed out", "timeout", True),
    ("timeout", "timeout", True),
)


def _match_rules(text: str, rules: Iterable[tuple[str, str, bool]]) -> tuple[str, bool] | None:
    folded = text.casefold()
    for needle, kind, transient in rules:
        if needle in folded:
            return kind, transient
    return None


def classify_error(cmdlet: str, error: Mapping[str, Any]) -> ExchangeError:
    """Turn the template's JSON error object into the matching exception."""
    message = str(error.get("message") or "").strip() or "Exchange reported an error"
    structural = " ".join(
        str(error.get(key) or "") for key in ("exception", "reason", "error_id", "category")
    )
    verdict = _match_rules(structural, _STRUCTURAL_RULES) or _match_rules(message, _MESSAGE_RULES)
    kind, transient = verdict or ("failed", False)
    details = {k: error.get(k) for k in ("exception", "category", "reason", "error_id")}
    if transient:
        return TransientExchangeError(
            f"Exchange is busy or unavailable for {cmdlet}; it will be retried",
            exchange_message=message,
            kind=kind,
            cmdlet=cmdlet,
            details=details,
        )
    return PermanentExchangeError(
        f"{cmdlet} failed: {message}",
        exchange_message=message,
        kind=kind,
        cmdlet=cmdlet,
        details=details,
    )


def _transport_error(
    cmdlet: str | None, exc: BaseException, settings: ExchangeSettings
) -> ExchangeError:
    # Imported here so that building scripts and the dry-run client need no network stack.
    import requests
    from winrm.exceptions import (
        AuthenticationError,
        WinRMError,
        WinRMOperationTimeoutError,
        WinRMTransportError,
        WSManFaultError,
    )

    text = str(exc)
    if isinstance(exc, AuthenticationError):
        return PermanentExchangeError(
            "Exchange rejected the service account's credentials; "
            "check the user name and password of the Exchange service",
            exchange_message=text,
            kind="credentials",
            cmdlet=cmdlet,
        )
    if isinstance(exc, WSManFaultError):
        if exc.wsman_fault_code == 5 or "access is denied" in (exc.reason or "").casefold():
            return PermanentExchangeError(
                "Exchange denied the service account access to remote PowerShell",
                exchange_message=exc.reason or text,
                kind="access_denied",
                cmdlet=cmdlet,
            )
        if exc.code < 500:
            return PermanentExchangeError(
                f"the Exchange server's WinRM service rejected the request (HTTP {exc.code})",
                exchange_message=exc.reason or text,
                kind="transport",
                cmdlet=cmdlet,
            )
        return TransientExchangeError(
            "the Exchange server's WinRM service reported a fault; it will be retried",
            exchange_message=exc.reason or text,
            kind="busy",
            cmdlet=cmdlet,
        )
    if isinstance(exc, WinRMTransportError):
        if exc.code >= 500:
            return TransientExchangeError(
                f"the Exchange server answered HTTP {exc.code}; it will be retried",
                exchange_message=exc.response_text or text,
                kind="busy",
                cmdlet=cmdlet,
            )
        return PermanentExchangeError(
            f"the Exchange server refused the request with HTTP {exc.code}",
            exchange_message=exc.response_text or text,
            kind="transport",
            cmdlet=cmdlet,
        )
    if isinstance(exc, WinRMOperationTimeoutError):
        return TransientExchangeError(
            "Exchange did not finish in time; it will be retried",
            exchange_message="WS-Management operation timeout",
            kind="timeout",
            cmdlet=cmdlet,
        )
    if isinstance(exc, WinRMError):
        return PermanentExchangeError(
            "the Exchange connection settings are not usable",
            exchange_message=text,
            kind="configuration",
            cmdlet=cmdlet,
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return PermanentExchangeError(
            "the Exchange server's TLS certificate is not trusted; "
            "check the CA file of the Exchange service",
            exchange_message=text,
            kind="tls",
            cmdlet=cmdlet,
        )
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return TransientExchangeError(
            f"Exchange did not answer within {settings.read_timeout_sec} s; "
            "the command may have run, the retry checks before it changes anything",
            exchange_message=text,
            kind="timeout",
            cmdlet=cmdlet,
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return TransientExchangeError(
            "the Exchange server could not be reached; it will be retried",
            exchange_message=text,
            kind="unreachable",
            cmdlet=cmdlet,
        )
    raise exc


# ------------------------------------------------------------------------ identify


def parse_identify_response(reply: bytes) -> str:
    """``Vendor, ProductVersion (WS-Management ProtocolVersion)`` from an IdentifyResponse."""
    try:
        root = ET.fromstring(reply)  # noqa: S314 - expat fetches no external entities
    except ET.ParseError:
        root = None
    found = root.find(f".//{{{WSMID}}}IdentifyResponse") if root is not None else None
    if found is None:
        raise PermanentExchangeError(
            "the endpoint did not answer like a WS-Management service; "
            "check the URL of the Exchange service",
            exchange_message=reply[:500].decode("utf-8", "replace").strip(),
            kind="protocol",
        )

    def text(name: str) -> str:
        return (found.findtext(f"{{{WSMID}}}{name}") or "").strip()

    product = ", ".join(part for part in (text("ProductVendor"), text("ProductVersion")) if part)
    protocol = text("ProtocolVersion")
    product = product or "an unnamed WS-Management service"
    return f"{product} (WS-Management {protocol})" if protocol else product


# ------------------------------------------------------------------------ clients


def _rows(result: list | dict | None) -> list[dict[str, Any]]:
    if result is None:
        return []
    return result if isinstance(result, list) else [result]


def _norm(value: Any) -> str:
    # Exchange shows address-book objects as "\Name" paths and compares names without
    # regard to case, as Active Directory does.
    return str(value or "").lstrip("\\").casefold()


def _smtp(value: Any) -> str:
    """An address as Exchange shows it ("SMTP:pat@fabrikam.com" for a ProxyAddress), bare
    and case-folded, for comparing."""
    text = str(value or "").strip()
    if text[:5].casefold() == "smtp:":
        text = text[5:]
    return text.casefold()


def _norm_set(values: Any) -> frozenset[str]:
    if values is None:
        return frozenset()
    if isinstance(values, str):
        values = [part for part in values.split(",") if part.strip()]
    return frozenset(_norm(str(v).strip()) for v in values)


def email_address_list(primary: str, secondary: Iterable[str] = ()) -> list[str]:
    """A mailbox's EmailAddresses as Exchange writes them: ``SMTP:`` marks the primary
    address, ``smtp:`` the others; an address is listed once (compared without regard to
    case), the primary first."""
    if not primary or ":" in primary:
        raise ValueError("the primary address is a plain SMTP address")
    listed = [f"SMTP:{primary}"]
    seen = {primary.casefold()}
    for address in secondary:
        if not address or ":" in address:
            raise ValueError("an SMTP address is given without a prefix")
        if address.casefold() not in seen:
            seen.add(address.casefold())
            listed.append(f"smtp:{address}")
    return listed


class ExchangeClient:
    """Runs allow-listed Exchange cmdlets over WinRM, one shell per call."""

    def __init__(self, settings: ExchangeSettings) -> None:
        self.settings = settings

    # -- the one way in -------------------------------------------------------

    def run(self, cmdlet: str, params: Mapping[str, Any] | None = None) -> list | dict | None:
        """Run one cmdlet; None for no output, a dict for one object, else a list."""
        _check_cmdlet(cmdlet)
        checked = _check_params(cmdlet, params)
        script = _render(cmdlet, checked)
        log.debug("exchange %s %s", cmdlet, mask_secrets(checked))
        output, warnings = self._execute(cmdlet, checked, script)
        for warning in warnings:
            log.info("exchange %s warning: %s", cmdlet, warning)
        if not output:
            return None
        return output[0] if len(output) == 1 else output

    def identify(self) -> str:
        """Who answers at the endpoint, e.g. ``Microsoft Corporation, OS: 10.0.17763 SP: 0.0
        Stack: 3.0 (WS-Management http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd)``.

        Sent with the service account's credentials rather than as an unauthenticated
        Identify: the connection test should also prove the login, and Windows reports
        its real OS version only to an authenticated caller.
        """
        import requests

        try:
            reply = self._protocol().send_message(IDENTIFY_ENVELOPE)
        except requests.exceptions.ReadTimeout as exc:
            # The generic message talks about a command that may have run; Identify runs none.
            raise TransientExchangeError(
                f"Exchange did not answer within {self.settings.read_timeout_sec} s",
                exchange_message=str(exc),
                kind="timeout",
            ) from exc
        except Exception as exc:
            raise _transport_error(None, exc, self.settings) from exc
        return parse_identify_response(reply)

    def _execute(
        self, cmdlet: str, params: dict[str, Any], script: str
    ) -> tuple[list[dict[str, Any]], list[str]]:
        stdout, stderr, status = self._run_remote(cmdlet, script)
        if status == 0:
            result = _find_marked(stdout, RESULT_MARKER)
            if result is None:
                raise PermanentExchangeError(
                    f"{cmdlet} returned no result the panel can read",
                    exchange_message=(stdout + "\n" + stderr).strip()[:2000],
                    kind="protocol",
                    cmdlet=cmdlet,
                )
            output = result.get("output") or []
            return [row for row in output if isinstance(row, dict)], list(
                result.get("warnings") or []
            )
        error = _find_marked(stderr, ERROR_MARKER)
        if error is None:
            # The template did not get to its catch block (PowerShell failed to start,
            # the endpoint refused the script): all we have is the text.
            text = clean_clixml(stderr) or stdout.strip() or f"exit code {status}"
            error = {"message": text[:2000]}
        raise classify_error(cmdlet, error)

    def _protocol(self) -> Any:
        from winrm.protocol import Protocol

        s = self.settings
        return Protocol(
            s.endpoint,
            transport=s.transport,
            username=s.username,
            password=s.password,
            server_cert_validation="validate" if s.verify_tls else "ignore",
            ca_trust_path=s.ca_file,
            read_timeout_sec=s.read_timeout_sec,
            operation_timeout_sec=s.operation_timeout_sec,
            message_encryption=s.message_encryption,
            proxy=s.proxy,
        )

    def _run_remote(self, cmdlet: str, script: str) -> tuple[str, str, int]:
        import requests
        from winrm.exceptions import WinRMOperationTimeoutError

        s = self.settings
        stdin = build_stdin(script)
        shell_id = command_id = None
        cleanup = True
        try:
            protocol = self._protocol()
            shell_id = protocol.open_shell()
            # Console mode would hand powershell.exe a console rather than a pipe, and
            # [Console]::In would then never see the end of the script.
            command_id = protocol.run_command(
                shell_id, BOOTSTRAP_COMMAND_LINE, console_mode_stdin=False
            )
            for start in range(0, len(stdin), STDIN_CHUNK):
                end = start + STDIN_CHUNK >= len(stdin)
                protocol.send_command_input(
                    shell_id, command_id, stdin[start : start + STDIN_CHUNK], end=end
                )
            deadline = time.monotonic() + s.command_timeout
            out: list[bytes] = []
            err: list[bytes] = []
            while True:
                try:
                    o, e, status, done = protocol.get_command_output_raw(shell_id, command_id)
                except WinRMOperationTimeoutError:
                    # Expected while a long cmdlet runs, but not forever.
                    if time.monotonic() > deadline:
                        raise
                    continue
                out.append(o)
                err.append(e)
                if done:
                    break
            return (
                b"".join(out).decode("utf-8", "replace"),
                b"".join(err).decode("utf-8", "replace"),
                status,
            )
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            # A dead or silent server would make the cleanup wait just as long again.
            cleanup = False
            raise _transport_error(cmdlet, exc, s) from exc
        except Exception as exc:
            raise _transport_error(cmdlet, exc, s) from exc
        finally:
            if cleanup and shell_id is not None:
                self._close_quietly(protocol, shell_id, command_id)

    @staticmethod
    def _close_quietly(protocol: Any, shell_id: str, command_id: str | None) -> None:
        # Exchange limits shells per user (MaxShellsPerUser); a leaked shell on every
        # failure would soon lock the service account out.
        try:
            if command_id is not None:
                protocol.cleanup_command(shell_id, command_id)
            protocol.close_shell(shell_id)
        except Exception:  # noqa: BLE001 - cleanup must not hide the real outcome
            log.warning("could not close WinRM shell %s", shell_id, exc_info=True)

    # -- lookups ----------------------------------------------------------------

    def _get(self, cmdlet: str, identity: str) -> dict[str, Any] | None:
        try:
            rows = _rows(self.run(cmdlet, {"Identity": identity}))
        except PermanentExchangeError as exc:
            if exc.kind == "not_found":
                return None
            raise
        return rows[0] if rows else None

    def _ensure(
        self,
        what: str,
        get_cmdlet: str,
        new_cmdlet: str,
        name: str,
        new_params: dict[str, Any],
        matches: Any,
    ) -> dict[str, Any]:
        """Look, create if missing, and accept an existing object only if it matches."""
        return self._ensure_made(what, get_cmdlet, new_cmdlet, name, new_params, matches)[0]

    def _ensure_made(
        self,
        what: str,
        get_cmdlet: str,
        new_cmdlet: str,
        name: str,
        new_params: dict[str, Any],
        matches: Any,
        identity: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """_ensure, and whether this call made the object (what compensation may remove).
        `identity` finds it when its name alone does not (a contact's DN in its OU)."""
        identity = identity or name
        existing = self._get(get_cmdlet, identity)
        if existing is None:
            try:
                created = self.run(new_cmdlet, {"Name": name, **new_params})
            except PermanentExchangeError as exc:
                # Another worker may have created it between our look and our create.
                if exc.kind != "already_exists":
                    raise
                existing = self._get(get_cmdlet, identity)
                if existing is None:
                    raise
            else:
                return (_rows(created)[0] if created else {"Name": name, **new_params}), True
        if not matches(existing):
            raise PermanentExchangeError(
                f"{what} '{name}' already exists in Exchange with different settings",
                exchange_message=json.dumps(existing, ensure_ascii=False, default=str)[:2000],
                kind="conflict",
                cmdlet=new_cmdlet,
            )
        return existing, False

    # -- organization objects --------------------------------------------------

    def ensure_accepted_domain(self, domain: str) -> dict[str, Any]:
        return self._ensure(
            "accepted domain",
            "Get-AcceptedDomain",
            "New-AcceptedDomain",
            domain,
            {"DomainName": domain, "DomainType": "Authoritative"},
            lambda found: _norm(found.get("DomainName")) == _norm(domain),
        )

    # The tenant filter uses Exchange's precanned conditions (ConditionalCustomAttribute1)
    # rather than a RecipientFilter string: the organization name then stays a parameter
    # value and never has to be quoted into an OPATH expression at all.
    def _tenant_list_params(self, tenant: str, included_recipients: str) -> dict[str, Any]:
        if not tenant:
            raise ValueError("a tenant tag is required")
        return {"IncludedRecipients": included_recipients, "ConditionalCustomAttribute1": [tenant]}

    @staticmethod
    def _tenant_list_matches(tenant: str, included_recipients: str) -> Any:
        def matches(found: dict[str, Any]) -> bool:
            return _norm_set(found.get("ConditionalCustomAttribute1")) == _norm_set(
                [tenant]
            ) and _norm_set(found.get("IncludedRecipients")) == _norm_set(included_recipients)

        return matches

    def ensure_address_list(
        self, name: str, tenant: str, included_recipients: str = "AllRecipients"
    ) -> dict[str, Any]:
        return self._ensure(
            "address list",
            "Get-AddressList",
            "New-AddressList",
            name,
            self._tenant_list_params(tenant, included_recipients),
            self._tenant_list_matches(tenant, included_recipients),
        )

    def ensure_global_address_list(self, name: str, tenant: str) -> dict[str, Any]:
        return self._ensure(
            "global address list",
            "Get-GlobalAddressList",
            "New-GlobalAddressList",
            name,
            self._tenant_list_params(tenant, "AllRecipients"),
            self._tenant_list_matches(tenant, "AllRecipients"),
        )

    def ensure_offline_address_book(
        self, name: str, address_lists: Iterable[str]
    ) -> dict[str, Any]:
        lists = list(address_lists)
        return self._ensure(
            "offline address book",
            "Get-OfflineAddressBook",
            "New-OfflineAddressBook",
            name,
            {"AddressLists": lists, "GlobalWebDistributionEnabled": True},
            lambda found: _norm_set(found.get("AddressLists")) == _norm_set(lists),
        )

    def ensure_address_book_policy(
        self,
        name: str,
        *,
        global_address_list: str,
        offline_address_book: str,
        room_list: str,
        address_lists: Iterable[str],
    ) -> dict[str, Any]:
        lists = list(address_lists)
        matches = self._policy_matches(global_address_list, offline_address_book, room_list,
                                       lists)
        return self._ensure(
            "address book policy",
            "Get-AddressBookPolicy",
            "New-AddressBookPolicy",
            name,
            {
                "GlobalAddressList": global_address_list,
                "OfflineAddressBook": offline_address_book,
                "RoomList": room_list,
                "AddressLists": lists,
            },
            matches,
        )

    @staticmethod
    def _policy_matches(
        global_address_list: str, offline_address_book: str, room_list: str, lists: list[str]
    ) -> Any:
        def matches(found: dict[str, Any]) -> bool:
            return (
                _norm(found.get("GlobalAddressList")) == _norm(global_address_list)
                and _norm(found.get("OfflineAddressBook")) == _norm(offline_address_book)
                and _norm(found.get("RoomList")) == _norm(room_list)
                and _norm_set(found.get("AddressLists")) == _norm_set(lists)
            )

        return matches

    # -- an organization's teardown -----------------------------------------------
    # Each removal looks first: gone already is success (False), so a retried teardown
    # goes on where it stopped. An object of that name that does not match what the
    # panel makes for the organization (another tenant's tag, other lists) is refused,
    # never removed.

    def _remove(
        self, what: str, get_cmdlet: str, remove_cmdlet: str, name: str, matches: Any
    ) -> bool:
        existing = self._get(get_cmdlet, name)
        if existing is None:
            return False
        if not matches(existing):
            raise PermanentExchangeError(
                f"{what} '{name}' in Exchange is not the one the panel made for this "
                "organization; it is left in place",
                exchange_message=json.dumps(existing, ensure_ascii=False, default=str)[:2000],
                kind="conflict",
                cmdlet=remove_cmdlet,
            )
        try:
            self.run(remove_cmdlet, {"Identity": name, "Confirm": False})
        except PermanentExchangeError as exc:
            if exc.kind == "not_found":
                return False
            raise
        return True

    def remove_address_book_policy(
        self,
        name: str,
        *,
        global_address_list: str,
        offline_address_book: str,
        room_list: str,
        address_lists: Iterable[str],
    ) -> bool:
        return self._remove(
            "address book policy",
            "Get-AddressBookPolicy",
            "Remove-AddressBookPolicy",
            name,
            self._policy_matches(global_address_list, offline_address_book, room_list,
                                 list(address_lists)),
        )

    def remove_offline_address_book(self, name: str, address_lists: Iterable[str]) -> bool:
        lists = list(address_lists)
        return self._remove(
            "offline address book",
            "Get-OfflineAddressBook",
            "Remove-OfflineAddressBook",
            name,
            lambda found: _norm_set(found.get("AddressLists")) == _norm_set(lists),
        )

    def remove_address_list(
        self, name: str, tenant: str, included_recipients: str = "AllRecipients"
    ) -> bool:
        return self._remove(
            "address list",
            "Get-AddressList",
            "Remove-AddressList",
            name,
            self._tenant_list_matches(tenant, included_recipients),
        )

    def remove_global_address_list(self, name: str, tenant: str) -> bool:
        return self._remove(
            "global address list",
            "Get-GlobalAddressList",
            "Remove-GlobalAddressList",
            name,
            self._tenant_list_matches(tenant, "AllRecipients"),
        )

    def remove_accepted_domain(self, domain: str) -> bool:
        return self._remove(
            "accepted domain",
            "Get-AcceptedDomain",
            "Remove-AcceptedDomain",
            domain,
            lambda found: _norm(found.get("DomainName")) == _norm(domain),
        )

    # -- mailboxes --------------------------------------------------------------

    def get_mailbox(self, identity: str) -> dict[str, Any] | None:
        return self._get("Get-Mailbox", identity)

    def get_cas_mailbox(self, identity: str) -> dict[str, Any] | None:
        return self._get("Get-CASMailbox", identity)

    def enable_mailbox(self, identity: str, database: str | None = None) -> dict[str, Any]:
        """Mailbox-enable an existing directory user; an existing mailbox is success."""
        existing = self.get_mailbox(identity)
        if existing is not None:
            return existing
        params: dict[str, Any] = {"Identity": identity}
        database = database or self.settings.default_database
        if database:
            params["Database"] = database
        try:
            created = self.run("Enable-Mailbox", params)
        except PermanentExchangeError:
            # A timed-out earlier attempt or a parallel worker may have won the race.
            existing = self.get_mailbox(identity)
            if existing is None:
                raise
            return existing
        return _rows(created)[0] if created else {"Identity": identity}

    def set_mailbox(self, identity: str, **params: Any) -> None:
        """Set only the given mailbox settings (quotas, policy, CustomAttribute1...)."""
        self._set("Set-Mailbox", identity, params)

    def set_cas_mailbox(self, identity: str, **params: Any) -> None:
        """Set client access (OWAEnabled, PopEnabled, ImapEnabled, MAPIEnabled...)."""
        self._set("Set-CASMailbox", identity, params)

    def _set(self, cmdlet: str, identity: str, params: dict[str, Any]) -> None:
        if any(key.casefold() == "identity" for key in params):
            raise ValueError("pass the identity as the first argument")
        if params:
            self.run(cmdlet, {"Identity": identity, **params})

    # -- mail flow: a mailbox's addresses and its forwarding ------------------------
    # Each call sends the complete desired state, so repeating it is harmless.

    def set_email_addresses(
        self, identity: str, primary: str, secondary: Iterable[str] = ()
    ) -> list[str]:
        """Give the mailbox exactly these SMTP addresses, `primary` as its primary one.

        The email address policy is turned off for the mailbox in the same call: with it
        on, Exchange would put the policy's primary address back. An address another
        recipient has is refused by Exchange (ProxyAddressExistsException): a permanent
        error of kind ``address_in_use``.
        """
        addresses = email_address_list(primary, secondary)
        try:
            self.run(
                "Set-Mailbox",
                {
                    "Identity": identity,
                    "EmailAddresses": addresses,
                    "EmailAddressPolicyEnabled": False,
                },
            )
        except PermanentExchangeError as exc:
            if "proxyaddressexists" not in str(exc.details.get("exception") or "").casefold():
                raise
            raise PermanentExchangeError(
                "Another recipient in Exchange already has one of these addresses",
                exchange_message=exc.exchange_message,
                kind="address_in_use",
                cmdlet=exc.cmdlet,
                details=exc.details,
            ) from exc
        return addresses

    def set_forwarding(
        self,
        identity: str,
        *,
        recipient: str | None = None,
        smtp_address: str | None = None,
        keep_copy: bool = False,
    ) -> dict[str, Any]:
        """Forward the mailbox's mail to another recipient (its identity, e.g. the
        directory GUID: ForwardingAddress) or to an SMTP address (ForwardingSmtpAddress),
        keeping a copy or not; with neither, forwarding is turned off. The parameter not
        used is cleared, so the mailbox ends with exactly this forwarding."""
        if recipient and smtp_address:
            raise ValueError("forward to a recipient or to an SMTP address, not both")
        params: dict[str, Any] = {
            "ForwardingAddress": recipient or None,
            "ForwardingSmtpAddress": f"smtp:{smtp_address}" if smtp_address else None,
            "DeliverToMailboxAndForward": bool(keep_copy and (recipient or smtp_address)),
        }
        self._set("Set-Mailbox", identity, params)
        return params

    def disable_mailbox(self, identity: str) -> bool:
        """Disconnect the mailbox (Exchange keeps its data for the retention period).

        Returns False when there was no mailbox to disable.
        """
        if self.get_mailbox(identity) is None:
            return False
        try:
            self.run("Disable-Mailbox", {"Identity": identity, "Confirm": False})
        except PermanentExchangeError as exc:
            if exc.kind == "not_found":
                return False
            raise
        return True


    # -- mail contacts (issue #12) ------------------------------------------------------
    # A contact lives in its organization's OU and is looked up there by its DN (names
    # are unique within an OU only), or by its GUID once known. It is the organization's
    # when its external address is the one asked for and its CustomAttribute1 names the
    # organization, or is still empty: New-MailContact cannot set the tag, so an attempt
    # cut off between New-MailContact and Set-MailContact leaves an untagged contact in
    # the organization's own OU, which the retry adopts and tags.

    @staticmethod
    def _contact_matches(external_address: str, tenant: str) -> Any:
        def matches(found: dict[str, Any]) -> bool:
            return _smtp(found.get("ExternalEmailAddress")) == _smtp(external_address) and (
                _norm(found.get("CustomAttribute1")) in ("", _norm(tenant))
            )

        return matches

    def get_mail_contact(self, identity: str) -> dict[str, Any] | None:
        return self._get("Get-MailContact", identity)

    def ensure_mail_contact(
        self,
        name: str,
        external_address: str,
        *,
        organizational_unit: str,
        identity: str,
        tenant: str,
    ) -> tuple[dict[str, Any], bool]:
        """The contact `identity` (its DN in `organizational_unit`), made if missing:
        (the contact, whether this call made it). Another object there is refused."""
        if not tenant:
            raise ValueError("a tenant tag is required")
        return self._ensure_made(
            "mail contact",
            "Get-MailContact",
            "New-MailContact",
            name,
            {"ExternalEmailAddress": external_address, "OrganizationalUnit": organizational_unit},
            self._contact_matches(external_address, tenant),
            identity=identity,
        )

    def tag_mail_contact(self, identity: str, tenant: str) -> None:
        """CustomAttribute1=<tenant>: the organization's address lists include it."""
        if not tenant:
            raise ValueError("a tenant tag is required")
        self.run("Set-MailContact", {"Identity": identity, "CustomAttribute1": tenant})

    def remove_mail_contact(self, identity: str, external_address: str, tenant: str) -> bool:
        """Remove-MailContact; gone already is success (False). A contact of that identity
        that is not the organization's is refused and left in place."""
        return self._remove(
            "mail contact",
            "Get-MailContact",
            "Remove-MailContact",
            identity,
            self._contact_matches(external_address, tenant),
        )

    def mailbox_identity(self, identity: str) -> dict[str, Any] | None:
        """What finds this user's mailbox again once it is disconnected: its ExchangeGuid
        and database. None when the user has no mailbox."""
        mailbox = self.get_mailbox(identity)
        if mailbox is None:
            return None
        return {"ExchangeGuid": mailbox.get("ExchangeGuid"), "Database": mailbox.get("Database")}

    def connect_mailbox(self, exchange_guid: str, database: str, user: str) -> dict[str, Any]:
        """Connect a disconnected mailbox (by its ExchangeGuid, in its database) to the
        directory user it belonged to. A user that has a mailbox already is success: an
        earlier attempt connected it."""
        existing = self.get_mailbox(user)
        if existing is not None:
            return existing
        try:
            self.run("Connect-Mailbox", {"Identity": exchange_guid, "Database": database,
                                         "User": user, "Confirm": False})
        except PermanentExchangeError:
            existing = self.get_mailbox(user)
            if existing is None:
                raise
            return existing
        return self.get_mailbox(user) or {"Identity": user}


class DryRunExchangeClient(ExchangeClient):
    """Journals what it would run and touches no network.

    Every lookup answers "not found", so the journal shows what a run against an empty
    Exchange organization would send.
    """

    def __init__(self, settings: ExchangeSettings | None = None) -> None:
        self.settings = settings or ExchangeSettings(
            endpoint="https://exchange.invalid/wsman", username="dry-run", password="dry-run"
        )
        self.journal: list[dict[str, Any]] = []

    def identify(self) -> str:
        return "dry run, no WS-Management endpoint was contacted"

    def _execute(
        self, cmdlet: str, params: dict[str, Any], script: str
    ) -> tuple[list[dict[str, Any]], list[str]]:
        self.journal.append({"cmdlet": cmdlet, "params": mask_secrets(params)})
        if cmdlet.startswith("Get-"):
            raise PermanentExchangeError(
                f"{cmdlet}: dry run, nothing is looked up", kind="not_found", cmdlet=cmdlet
            )
        return [], []
