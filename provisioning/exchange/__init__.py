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

One module per concern: `script` (the template), `base` (transport, look-first helpers),
`errors`, `values`, `settings`, and one mixin per kind of object (`organization`,
`mailboxes`, `contacts`) assembled into `ExchangeClient` in `client`.
"""

from .base import parse_identify_response
from .client import DryRunExchangeClient, ExchangeClient
from .errors import ExchangeError, PermanentExchangeError, TransientExchangeError, classify_error
from .script import (
    ALLOWED_CMDLETS,
    BOOTSTRAP_COMMAND_LINE,
    BOOTSTRAP_SCRIPT,
    CMDLET_PLACEHOLDER,
    COMMAND_PREFIX,
    ERROR_MARKER,
    MAX_COMMAND_LINE,
    PARAMS_PLACEHOLDER,
    RESULT_MARKER,
    SCRIPT_TEMPLATE,
    build_command_line,
    build_script,
    build_stdin,
    clean_clixml,
    command_line_length,
    mask_secrets,
)
from .settings import ExchangeSettings
from .values import email_address_list, format_quota_mb, parse_quota_bytes

__all__ = [
    "ALLOWED_CMDLETS",
    "BOOTSTRAP_COMMAND_LINE",
    "BOOTSTRAP_SCRIPT",
    "CMDLET_PLACEHOLDER",
    "COMMAND_PREFIX",
    "ERROR_MARKER",
    "MAX_COMMAND_LINE",
    "PARAMS_PLACEHOLDER",
    "RESULT_MARKER",
    "SCRIPT_TEMPLATE",
    "DryRunExchangeClient",
    "ExchangeClient",
    "ExchangeError",
    "ExchangeSettings",
    "PermanentExchangeError",
    "TransientExchangeError",
    "build_command_line",
    "build_script",
    "build_stdin",
    "classify_error",
    "clean_clixml",
    "command_line_length",
    "email_address_list",
    "format_quota_mb",
    "mask_secrets",
    "parse_identify_response",
    "parse_quota_bytes",
]
