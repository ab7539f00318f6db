"""What each journaled operation does, as ordered, idempotent steps.

Like django-orchestra's backends, an action is a small class: its steps run in order, each
is safe to run again ("exists and matches" is success), and a step recorded as done by an
earlier attempt is skipped. An action whose failure would leave a half-made object behind
says how to undo what it did (compensate).

One module per kind of object (`organization`, `users`, `mail`, `contacts`); `base` holds
the run's context and the helpers they share; `ACTIONS` names each one for the journal.
"""

from .base import (
    OWNER_MARK,
    Action,
    Context,
    apply_mailbox_settings,
    dry_run_lock,
    exchange_of,
    link,
    organization_names,
    organization_ou,
    owner_mark,
    prime_dry_run,
    record_once,
    result_guid,
    undo_created,
)
from .contacts import DeleteContact, ProvisionContact, contact_identity, remove_contacts
from .mail import (
    DisconnectMailbox,
    ReconnectMailbox,
    SetEmailAddresses,
    SetForwarding,
    _mailbox_identity,
    disconnected_identity,
)
from .organization import (
    AddDomain,
    DeleteOrganization,
    ProvisionOrganization,
    SetOrganizationEnabled,
)
from .users import ChangePlan, DeleteUser, ProvisionUser, RenameUser, ResetPassword, SetUserEnabled

ACTIONS = {
    "provision_organization": ProvisionOrganization(),
    "provision_user": ProvisionUser(),
    "rename_user": RenameUser(),
    "set_user_enabled": SetUserEnabled(),
    "set_organization_enabled": SetOrganizationEnabled(),
    "reset_password": ResetPassword(),
    "delete_user": DeleteUser(),
    "change_plan": ChangePlan(),
    "add_domain": AddDomain(),
    "delete_organization": DeleteOrganization(),
    "disconnect_mailbox": DisconnectMailbox(),
    "reconnect_mailbox": ReconnectMailbox(),
    # Mail flow (issue #12).
    "set_email_addresses": SetEmailAddresses(),
    "set_forwarding": SetForwarding(),
    "provision_contact": ProvisionContact(),
    "delete_contact": DeleteContact(),
}

__all__ = [
    "ACTIONS",
    "OWNER_MARK",
    "owner_mark",
    "Context",
    "result_guid",
    "undo_created",
    "prime_dry_run",
    "link",
    "organization_names",
    "record_once",
    "apply_mailbox_settings",
    "Action",
    "organization_ou",
    "exchange_of",
    "dry_run_lock",
    "ProvisionUser",
    "RenameUser",
    "SetUserEnabled",
    "ResetPassword",
    "DeleteUser",
    "ChangePlan",
    "_mailbox_identity",
    "SetEmailAddresses",
    "SetForwarding",
    "DisconnectMailbox",
    "disconnected_identity",
    "ReconnectMailbox",
    "contact_identity",
    "ProvisionContact",
    "DeleteContact",
    "remove_contacts",
    "ProvisionOrganization",
    "SetOrganizationEnabled",
    "AddDomain",
    "DeleteOrganization",
]
