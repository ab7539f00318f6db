"""The Exchange client, assembled from one part per kind of object, and its dry run."""

from __future__ import annotations

from typing import Any

from .base import BaseClient
from .contacts import ContactMixin
from .errors import PermanentExchangeError
from .mailboxes import MailboxMixin
from .organization import OrganizationMixin
from .script import mask_secrets
from .settings import ExchangeSettings


class ExchangeClient(OrganizationMixin, MailboxMixin, ContactMixin, BaseClient):
    """Runs allow-listed Exchange cmdlets over WinRM, one shell per call."""


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
