from .accounts import Account, Role
from .customers import (
    AssetType,
    Customer,
    CustomerAsset,
    CustomerType,
    HostingSpace,
    HostingSpaceQuota,
    StatusType,
)
from .events import Event, EventType

__all__ = [
    "Account",
    "AssetType",
    "Customer",
    "CustomerAsset",
    "CustomerType",
    "Event",
    "EventType",
    "HostingSpace",
    "HostingSpaceQuota",
    "Role",
    "StatusType",
]
