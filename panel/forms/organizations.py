from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from provisioning import constants as c
from provisioning import names, scoping
from provisioning.services import hosting_plans_for, sellable_hosting_plans
from servicplans.models import ServicePlan

from . import NameField, PasswordField


class SignUpForm(forms.Form):
    reseller = forms.ModelChoiceField(queryset=None, label=_("Reseller"),
                                      help_text=_("The reseller it is sold by."))
    name = NameField(names.ORGANIZATION_NAME, label=_("Organization name"))
    primary_domain = NameField(names.DOMAIN, label=_("Primary domain"))
    admin_username = NameField(names.LOGIN, label=_("Administrator login"))
    admin_email = NameField(names.EMAIL, label=_("Administrator e-mail"),
                            widget=forms.EmailInput,
                            help_text=format_lazy("{} {}", _("For password resets."),
                                                  names.EMAIL.help_text))
    admin_password = PasswordField(label=_("Administrator password"))
    hosting_plan = forms.ModelChoiceField(queryset=None, empty_label=None,
                                          label=_("Hosting plan"))
    service_plans = forms.ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple,
        label=_("Available service plans"),
        help_text=_("The plans the organization may give its users."))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        account = scoping.account_of(user)
        resellers = scoping.visible_customers(user).filter(
            customer_type_id=c.RESELLER_ORGANIZATION).exclude(status_id=c.DELETED)
        self.fields["reseller"].queryset = resellers
        if account.customer_id:
            # A reseller signs up under itself; only the provider chooses.
            self.fields["reseller"].widget = forms.HiddenInput()
            self.fields["reseller"].initial = account.customer_id
        self.fields["hosting_plan"].queryset = hosting_plans_for(user)
        self.fields["service_plans"].queryset = ServicePlan.objects.filter(is_active=True)


class DomainForm(forms.Form):
    name = NameField(names.DOMAIN, label=_("Domain name"),
                     help_text=names.DOMAIN.help_text.replace("fabrikam.com", "sales.contoso.com"))
    asset_type = forms.ChoiceField(label=_("Kind"), choices=[
        (c.SECONDARY_DOMAIN, _("Secondary domain")), (c.VANITY_DOMAIN, _("Vanity domain"))])


class HostingPlanForm(forms.Form):
    hosting_plan = forms.ModelChoiceField(queryset=None, empty_label=None,
                                          help_text=_("Its quotas must hold what the "
                                                      "organization already uses."))

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["hosting_plan"].queryset = sellable_hosting_plans(organization.parent)
