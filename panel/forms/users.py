from django import forms
from django.contrib.auth import password_validation
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
