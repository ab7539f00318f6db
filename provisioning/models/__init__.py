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
from .operations import FINISHED_STATES, Operation, OperationState

__all__ = [
    "Account",
    "AssetType",
    "Customer",
    "CustomerAsset",
    "CustomerType",
    "Event",
    "EventType",
    "FINISHED_STATES",
    "Operation",
    "OperationState",
    "HostingSpace",
    "HostingSpaceQuota",
    "Role",
    "StatusType",
]
