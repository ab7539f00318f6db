from django import forms
from django.db.models import Q

from provisioning import constants as c
from provisioning import scoping
from provisioning.models import HostingSpace
from servicplans.models import HostingPlan, HostingPlanQuota, QuotaName, ServicePlan

from . import PasswordField


def hosting_plans_for(user):
    """Plans a reseller may sell to an organization: active ones on the virtual servers of
    its own hosting spaces, never a reseller plan (one that grants organizations)."""
    reseller_plans = HostingPlanQuota.objects.filter(
        Q(unlimited=True) | Q(limit__gt=0), quota=QuotaName.ORGANIZATIONS)
    plans = HostingPlan.objects.filter(is_active=True).exclude(
        pk__in=reseller_plans.values("hosting_plan"))
    account = scoping.account_of(user)
    if account is not None and account.customer_id:
        own_spaces = HostingSpace.objects.filter(customer_id=account.customer_id).exclude(
            status_id=c.DELETED)
        plans = plans.filter(virtual_server__in=own_spaces.values("hosting_plan__virtual_server"))
    return plans.order_by("name")


class SignUpForm(forms.Form):
    reseller = forms.ModelChoiceField(queryset=None, help_text="The reseller it is sold by.")
    name = forms.CharField(max_length=64, label="Organization name",
                           help_text="Also its OU in the directory; it cannot be reused.")
    primary_domain = forms.CharField(max_length=253, help_text="e.g. fabrikam.com")
    admin_username = forms.CharField(max_length=150, label="Administrator login")
    admin_email = forms.EmailField(required=False, label="Administrator e-mail",
                                   help_text="For password resets.")
    admin_password = PasswordField(label="Administrator password")
    hosting_plan = forms.ModelChoiceField(queryset=None, empty_label=None)
    service_plans = forms.ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple,
        label="Available service plans",
        help_text="The plans the organization may give its users.")

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
    name = forms.CharField(max_length=253, label="Domain name", help_text="e.g. sales.contoso.com")
    asset_type = forms.ChoiceField(label="Kind", choices=[
        (c.SECONDARY_DOMAIN, "Secondary domain"), (c.VANITY_DOMAIN, "Vanity domain")])
