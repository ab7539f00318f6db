"""How a feature type's native attribute becomes a setting, by its parent node:

- ``mail``: an Exchange mailbox setting (Set-Mailbox or Set-CASMailbox parameters);
- ``properties``: a directory attribute written over LDAP;
- ``options``: a panel action (showInAddressLists hides or shows the mailbox in the lists).

The seed's attribute names (size, disablePOP, ...) are translated here. A feature type the
provider adds works without code when its native attribute is a known cmdlet parameter or
directory attribute; anything else is refused when it is saved."""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

TRUE = {"true", "1", "yes", "on", "enabled"}
FALSE = {"false", "0", "no", "off", "disabled"}


def as_bool(value):
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValidationError(_("'%(value)s' is not a yes/no value (use true or false).")
                          % {"value": value})


def as_int(value):
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValidationError(_("'%(value)s' is not a whole number.") % {"value": value}) \
            from None


def as_megabytes(value):
    number = as_int(value)
    if number <= 0:
        raise ValidationError(_("A mailbox size is a positive number of megabytes."))
    return number


def as_text(value):
    text = str(value)
    if not text or any(ord(ch) < 32 for ch in text):
        raise ValidationError(_("Enter a value without control characters."))
    return text


def mailbox_quota(megabytes):
    # Warn at 90 %, stop sending at 95 %, stop receiving at the plan's size.
    return {"ProhibitSendReceiveQuota": f"{megabytes}MB",
            "ProhibitSendQuota": f"{megabytes * 95 // 100}MB",
            "IssueWarningQuota": f"{megabytes * 90 // 100}MB",
            "UseDatabaseQuotaDefaults": False}


@dataclass(frozen=True)
class Mapping:
    """One native attribute: how to read its value, and what it sets where."""

    convert: object
    mailbox: object = None     # value -> Set-Mailbox parameters
    cas: object = None         # value -> Set-CASMailbox parameters
    directory: object = None   # value -> directory attributes


def _param(cmdlet_field, name):
    return Mapping(convert=None, **{cmdlet_field: lambda v, n=name: {n: v}})


MAIL = {
    "size": Mapping(as_megabytes, mailbox=mailbox_quota),
    "disablePOP": Mapping(as_bool, cas=lambda v: {"PopEnabled": not v}),
    "disableIMAP": Mapping(as_bool, cas=lambda v: {"ImapEnabled": not v}),
    "disableMAPI": Mapping(as_bool, cas=lambda v: {"MAPIEnabled": not v}),
    "disableHTTP": Mapping(as_bool, cas=lambda v: {"OWAEnabled": not v}),
}
# Cmdlet parameters a new "mail" feature type may name directly, with their value type.
MAILBOX_PARAMETERS = {"ProhibitSendQuota": as_text, "ProhibitSendReceiveQuota": as_text,
                      "IssueWarningQuota": as_text, "UseDatabaseQuotaDefaults": as_bool,
                      "HiddenFromAddressListsEnabled": as_bool}
CAS_PARAMETERS = {"OWAEnabled": as_bool, "PopEnabled": as_bool, "ImapEnabled": as_bool,
                  "MAPIEnabled": as_bool, "ActiveSyncEnabled": as_bool, "EwsEnabled": as_bool,
                  "OwaMailboxPolicy": as_text}
for _name, _convert in MAILBOX_PARAMETERS.items():
    MAIL.setdefault(_name, Mapping(_convert, mailbox=lambda v, n=_name: {n: v}))
for _name, _convert in CAS_PARAMETERS.items():
    MAIL.setdefault(_name, Mapping(_convert, cas=lambda v, n=_name: {n: v}))

# msExchOmaAdminWirelessEnable is a bit mask: 4 turns ActiveSync off.
PROPERTIES = {
    "msExchOmaAdminWirelessEnable": Mapping(
        as_int, directory=lambda v: {"msExchOmaAdminWirelessEnable": v},
        cas=lambda v: {"ActiveSyncEnabled": not v & 4}),
    "msExchMailboxFolderSet": Mapping(as_int,
                                      directory=lambda v: {"msExchMailboxFolderSet": v}),
    "company": Mapping(as_text, directory=lambda v: {"company": v}),
    "department": Mapping(as_text, directory=lambda v: {"department": v}),
    "title": Mapping(as_text, directory=lambda v: {"title": v}),
}

OPTIONS = {
    "showInAddressLists": Mapping(
        as_bool, mailbox=lambda v: {"HiddenFromAddressListsEnabled": not v}),
}

REGISTRY = {"mail": MAIL, "properties": PROPERTIES, "options": OPTIONS}


def mapping_for(parent_node, native_attribute):
    mapping = REGISTRY.get(parent_node, {}).get(native_attribute)
    if mapping is None:
        known = ", ".join(sorted(REGISTRY.get(parent_node, {}))) or _("none")
        raise ValidationError(
            {"native_attribute": _("'%(attribute)s' is not a known %(node)s attribute. Known "
                                   "ones: %(known)s.") % {"attribute": native_attribute,
                                                          "node": parent_node,
                                                          "known": known}})
    return mapping


def validate_value(feature_type, value):
    return mapping_for(feature_type.parent_node, feature_type.native_attribute).convert(value)


@dataclass
class Settings:
    """What a plan sets on a mailbox: Set-Mailbox, Set-CASMailbox and LDAP attributes."""

    mailbox: dict = field(default_factory=dict)
    cas: dict = field(default_factory=dict)
    directory: dict = field(default_factory=dict)

    def diff(self, old):
        """Only what changes from `old` to self; an attribute the new plan drops is cleared
        in the directory, while mailbox settings the new plan drops are left alone."""
        changed = Settings()
        for name in ("mailbox", "cas", "directory"):
            new_values, old_values = getattr(self, name), getattr(old, name)
            target = getattr(changed, name)
            for key, value in new_values.items():
                if old_values.get(key) != value:
                    target[key] = value
            if name == "directory":
                for key in set(old_values) - set(new_values):
                    target[key] = None
        return changed

    def __bool__(self):
        return bool(self.mailbox or self.cas or self.directory)


def mailbox_megabytes(plan_ids):
    """{plan id: mailbox size in MB}, read from the feature whose native attribute is the
    mail node's `size` — whatever the provider named its feature type."""
    from .models import PlanFeature

    rows = PlanFeature.objects.filter(
        service_plan_id__in=plan_ids, feature_type__parent_node="mail",
        feature_type__native_attribute="size").values_list("service_plan_id", "value")
    return {plan_id: as_megabytes(value) for plan_id, value in rows}


def plan_settings(plan):
    settings = Settings()
    if plan is None:
        return settings
    for feature in plan.features.select_related("feature_type"):
        kind = feature.feature_type
        mapping = mapping_for(kind.parent_node, kind.native_attribute)
        value = mapping.convert(feature.value)
        for name in ("mailbox", "cas", "directory"):
            produce = getattr(mapping, name)
            if produce is not None:
                getattr(settings, name).update(produce(value))
    return settings
