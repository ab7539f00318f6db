"""What can go wrong running a cmdlet, and how Exchange's own errors are sorted into
those that a retry may cure and those it cannot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import ExchangeSettings


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
