from django import forms
from django.utils.translation import gettext_lazy as _

from provisioning import names, scoping
from provisioning.models import Role

from . import NameField, PasswordField


class PeerEditForm(forms.Form):
    first_name = NameField(names.PERSONAL_NAME, label=_("First name"))
    last_name = NameField(names.PERSONAL_NAME, label=_("Last name"))
    email = NameField(names.EMAIL, label=_("E-mail"), widget=forms.EmailInput)
    role = forms.ChoiceField(label=_("Role"),
                             help_text=_("What this account may do in the organization."))

    def __init__(self, *args, actor, account=None, **kwargs):
        super().__init__(*args, **kwargs)
        if account is not None and account.role == Role.PRIMARY_ADMIN:
            # Shown, never changed: whatever is posted, the primary administrator stays so.
            field = self.fields["role"]
            field.choices = [(Role.PRIMARY_ADMIN.value, Role.PRIMARY_ADMIN.label)]
            field.disabled, field.initial = True, Role.PRIMARY_ADMIN.value
            field.help_text = _("The primary administrator's role does not change.")
            return
        self.fields["role"].choices = [(r.value, r.label)
                                       for r in scoping.assignable_roles(actor)]


class PeerCreateForm(PeerEditForm):
    username = NameField(names.LOGIN, label=_("Login"))
    password = PasswordField(label=_("Password"))
    field_order = ["username", "first_name", "last_name", "email", "role", "password"]
