"""Exchange's ways of writing values (sizes, names, addresses) and the panel's ways of
comparing them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_QUOTA_PATTERN = re.compile(
    r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB)?\s*(?:\(([0-9,]+) bytes\))?\s*$", re.I
)


def format_quota_mb(megabytes: int | None) -> str:
    """The value Set-Mailbox expects for a quota given in MB; None means unlimited."""
    if megabytes is None:
        return "Unlimited"
    if megabytes < 0:
        raise ValueError("a quota cannot be negative")
    return f"{int(megabytes)}MB"


def parse_quota_bytes(text: str | int | None) -> int | None:
    """Bytes in an Exchange size such as ``2 GB (2,147,483,648 bytes)``; None = unlimited.

    Exchange reports quotas in that display form, so comparing a plan's quota with a
    mailbox's current one needs the byte count, not the string.
    """
    if text is None:
        return None
    if isinstance(text, int):
        return text
    if text.strip().casefold() == "unlimited":
        return None
    match = _QUOTA_PATTERN.match(text)
    if not match:
        raise ValueError(f"not an Exchange size: {text!r}")
    if match.group(3):
        return int(match.group(3).replace(",", ""))
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "B").upper()])


def _rows(result: list | dict | None) -> list[dict[str, Any]]:
    if result is None:
        return []
    return result if isinstance(result, list) else [result]


def _norm(value: Any) -> str:
    # Exchange shows address-book objects as "\Name" paths and compares names without
    # regard to case, as Active Directory does.
    return str(value or "").lstrip("\\").casefold()


def _smtp(value: Any) -> str:
    """An address as Exchange shows it ("SMTP:pat@fabrikam.com" for a ProxyAddress), bare
    and case-folded, for comparing."""
    text = str(value or "").strip()
    if text[:5].casefold() == "smtp:":
        text = text[5:]
    return text.casefold()


def _norm_set(values: Any) -> frozenset[str]:
    if values is None:
        return frozenset()
    if isinstance(values, str):
        values = [part for part in values.split(",") if part.strip()]
    return frozenset(_norm(str(v).strip()) for v in values)


def email_address_list(primary: str, secondary: Iterable[str] = ()) -> list[str]:
    """A mailbox's EmailAddresses as Exchange writes them: ``SMTP:`` marks the primary
    address, ``smtp:`` the others; an address is listed once (compared without regard to
    case), the primary first."""
    if not primary or ":" in primary:
        raise ValueError("the primary address is a plain SMTP address")
    listed = [f"SMTP:{primary}"]
    seen = {primary.casefold()}
    for address in secondary:
        if not address or ":" in address:
            raise ValueError("an SMTP address is given without a prefix")
        if address.casefold() not in seen:
            seen.add(address.casefold())
            listed.append(f"smtp:{address}")
    return listed
