"""An organization's own Exchange objects: its accepted domains, address lists, global
address list, offline address book and address book policy, made and removed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .values import _norm, _norm_set


class OrganizationMixin:
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
