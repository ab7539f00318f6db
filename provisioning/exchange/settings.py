"""How to reach one Exchange server: endpoint, credentials, timeouts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field


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
