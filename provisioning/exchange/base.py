"""The transport: one cmdlet, one WinRM shell; and the look-first helpers that make every
create and removal idempotent."""

from __future__ import annotations

import json
import logging
import time
import xml.etree.ElementTree as ET  # noqa: S405 - parses replies of the configured endpoint, never input from users
from collections.abc import Mapping
from typing import Any

from .errors import PermanentExchangeError, TransientExchangeError, _transport_error, classify_error
from .script import (
    BOOTSTRAP_COMMAND_LINE,
    ERROR_MARKER,
    IDENTIFY_ENVELOPE,
    RESULT_MARKER,
    STDIN_CHUNK,
    WSMID,
    _check_cmdlet,
    _check_params,
    _find_marked,
    _render,
    build_stdin,
    clean_clixml,
    mask_secrets,
)
from .settings import ExchangeSettings
from .values import _rows

log = logging.getLogger("provisioning.exchange")


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


class BaseClient:
    """Runs allow-listed Exchange cmdlets over WinRM, one shell per call, and the
    look-before-change helpers every kind of object uses."""

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

    def _set(self, cmdlet: str, identity: str, params: dict[str, Any]) -> None:
        if any(key.casefold() == "identity" for key in params):
            raise ValueError("pass the identity as the first argument")
        if params:
            self.run(cmdlet, {"Identity": identity, **params})
