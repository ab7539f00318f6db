from django import forms
from django.contrib.auth import password_validation
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

from provisioning import constants as c
from provisioning import names

from . import NameField, PasswordField


def domain_choices(organization):
    # Primary first: it is what most users get.
    assets = organization.assets.exclude(status_id=c.DELETED).order_by(
        "-asset_type_id", "name").values_list("name", flat=True)
    return [(name, name) for name in assets]


def plan_queryset(organization):
    return organization.available_service_plans.filter(is_active=True).order_by("name")


class UserCreateForm(forms.Form):
    display_name = NameField(names.DISPLAY_NAME, label=_("Display name"))
    given_name = NameField(names.PERSONAL_NAME, label=_("First name"))
    surname = NameField(names.PERSONAL_NAME, label=_("Last name"))
    local_part = NameField(names.UPN_LOCAL_PART, label=_("Logon name"))
    domain = forms.ChoiceField(label=_("Domain"))
    service_plan = forms.ModelChoiceField(queryset=None, required=False, label=_("Service plan"),
                                          empty_label=_("No mailbox"),
                                          help_text=_("The mailbox features this user gets."))
    password = PasswordField(label=_("Initial password"))

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["domain"].choices = domain_choices(organization)
        self.fields["service_plan"].queryset = plan_queryset(organization)

    def clean_password(self):
        # Checked here too, so a CSV import reports a weak password with the line's other
        # mistakes; the service checks it again before creating.
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password

    def service_arguments(self):
        return {name: self.cleaned_data[name] for name in
                ("display_name", "given_name", "surname", "local_part", "domain", "password",
                 "service_plan")}


class UserEditForm(forms.Form):
    display_name = NameField(names.DISPLAY_NAME, label=_("Display name"))
    given_name = NameField(names.PERSONAL_NAME, label=_("First name"))
    surname = NameField(names.PERSONAL_NAME, label=_("Last name"))


class ChangePlanForm(forms.Form):
    service_plan = forms.ModelChoiceField(queryset=None, required=False, label=_("Service plan"),
                                          empty_label=_("No mailbox"))

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service_plan"].queryset = plan_queryset(organization)


# --- Mail flow (issue #12) -----------------------------------------------------------------


class AddressListField(forms.CharField):
    """Addresses, one per line: each is cleaned by the service with
    provisioning.names.MAILBOX_ADDRESS, which reports the first one it refuses."""

    widget = forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"})

    def __init__(self, **kwargs):
        kwargs.update(required=False, strip=False)
        super().__init__(**kwargs)

    def clean(self, value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class EmailAddressesForm(forms.Form):
    addresses = AddressListField(label=_("Additional addresses"))
    primary = NameField(names.MAILBOX_ADDRESS, label=_("Primary address"),
                        help_text=_("The address the mailbox sends from: its logon name or "
                                    "one of the additional addresses."))

    def __init__(self, *args, domains=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["addresses"].help_text = escape(
            _("One per line, on the organization's domains: %(domains)s. The logon name is "
              "always one of the mailbox's addresses.") % {"domains": ", ".join(domains)})


class OptionalAddressField(NameField):
    def __init__(self, **kwargs):
        super().__init__(names.MAILBOX_ADDRESS, required=False, **kwargs)

    def clean(self, value):
        value = self.to_python(value)
        return super().clean(value) if value.strip() else ""


class ForwardingForm(forms.Form):
    forward_to = OptionalAddressField(
        label=_("Forward to"),
        help_text=_("The address of another user of this organization, or an external "
                    "address. Leave it empty to stop forwarding."))
    keep_copy = forms.BooleanField(required=False, label=_("Keep a copy in the mailbox"))
