"""Mail contacts in an organization's OU."""

from __future__ import annotations

from typing import Any

from .values import _norm, _smtp


class ContactMixin:
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
