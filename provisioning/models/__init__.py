from .accounts import Account, Role
from .contacts import ContactStatus, MailContact
from .customers import (
    AssetType,
    Customer,
    CustomerAsset,
    CustomerType,
    HostingSpace,
    HostingSpaceQuota,
    StatusType,
)
from .events import Event, EventSequence, EventType
from .logins import LoginName
from .mail import MailAddress, MailForwarding
from .operations import (
    FINISHED_STATES,
    AlertKind,
    Operation,
    OperationAlert,
    OperationSecret,
    OperationState,
    ProviderSummary,
)
from .tokens import ApiToken
from .usage import UserCount

__all__ = [
    "Account",
    "AlertKind",
    "ApiToken",
    "UserCount",
    "ContactStatus",
    "AssetType",
    "Customer",
    "CustomerAsset",
    "CustomerType",
    "Event",
    "EventSequence",
    "EventType",
    "FINISHED_STATES",
    "Operation",
    "OperationAlert",
    "ProviderSummary",
    "OperationSecret",
    "OperationState",
    "HostingSpace",
    "HostingSpaceQuota",
    "LoginName",
    "MailAddress",
    "MailForwarding",
    "MailContact",
    "Role",
    "StatusType",
]
