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

Exchange itself is emulated in memory by ``fake_exchange.FakeExchange`` (accepted domains,
address lists, GALs, OABs, address book policies, users, mailboxes and contacts) with
Exchange's own error messages, so the client's idempotency and error classification are
tested against realistic answers; ``exchange_cmdlets`` holds each cmdlet's parameters.
``fail_next`` injects timeouts, dropped connections and Exchange errors.

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
)
from tests.support.exchange_cmdlets import CMDLETS, CmdletError, _task
from tests.support.fake_exchange import FakeExchange

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
