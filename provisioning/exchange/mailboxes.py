"""Users' mailboxes: enable, settings, addresses, forwarding, disconnect and connect."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import PermanentExchangeError
from .values import _rows, email_address_list


class MailboxMixin:
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
