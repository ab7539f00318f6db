"""The business rules of the panel. Views, admin actions, commands and tasks call these
functions; none of them decides anything on its own.

One module per concern: `common` (suspension, events, shared checks), `organizations`
(sign-up, domains, hosting plans, suspension, deletion, retries), `users`, `mail` (a
mailbox's addresses, forwarding, disconnect and reconnect) and `contacts`.
"""

from .common import (
    SUSPENDED_MESSAGE,
    _check_domain,
    _locked,
    _unique,
    ensure_writable,
    hosting_space_of,
    organization_domains,
    record_event,
    record_events,
)
from .contacts import (
    _has_exchange,
    contact_address_in_use,
    contact_name_in_use,
    create_contact,
    delete_contact,
)
from .mail import (
    MAX_MAIL_ADDRESSES,
    _addresses_in_use,
    _mailbox_of,
    address_in_use,
    disconnect_mailbox,
    mail_addresses_of,
    reconnect_mailbox,
    set_email_addresses,
    set_forwarding,
    stop_forwarding_to,
)
from .organizations import (
    OWN_STATE_ACTIONS,
    add_domain,
    change_hosting_plan,
    delete_customer,
    hosting_plans_for,
    retry_operation,
    sellable_hosting_plans,
    set_enabled,
    sign_up_organization,
    space_name,
)
from .users import (
    change_plan,
    create_user,
    logon_name_in_use,
    not_available,
    reset_password,
    update_user,
)

__all__ = [
    "SUSPENDED_MESSAGE",
    "ensure_writable",
    "record_event",
    "record_events",
    "_unique",
    "_check_domain",
    "_locked",
    "hosting_space_of",
    "organization_domains",
    "sellable_hosting_plans",
    "hosting_plans_for",
    "sign_up_organization",
    "space_name",
    "OWN_STATE_ACTIONS",
    "retry_operation",
    "delete_customer",
    "set_enabled",
    "add_domain",
    "change_hosting_plan",
    "create_user",
    "logon_name_in_use",
    "not_available",
    "update_user",
    "reset_password",
    "change_plan",
    "MAX_MAIL_ADDRESSES",
    "address_in_use",
    "_mailbox_of",
    "disconnect_mailbox",
    "reconnect_mailbox",
    "_addresses_in_use",
    "mail_addresses_of",
    "set_email_addresses",
    "set_forwarding",
    "stop_forwarding_to",
    "contact_address_in_use",
    "contact_name_in_use",
    "_has_exchange",
    "create_contact",
    "delete_contact",
]
