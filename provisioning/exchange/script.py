"""The one PowerShell template every cmdlet runs through, and the short command line
that feeds it to powershell.exe over stdin (see the package's docstring)."""

from __future__ import annotations

import base64
import json
import math
import re
import xml.etree.ElementTree as ET  # noqa: S405 - parses replies of the configured endpoint, never input from users
from collections.abc import Mapping
from typing import Any

from .errors import PermanentExchangeError

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
