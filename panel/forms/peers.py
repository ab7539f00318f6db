from django import forms

from provisioning import scoping

from . import PasswordField


class PeerEditForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(help_text="What this account may do in the organization.")

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r.value, r.label)
                                       for r in scoping.assignable_roles(actor)]


class PeerCreateForm(PeerEditForm):
    username = forms.CharField(max_length=150, label="Login")
    password = PasswordField()
    field_order = ["username", "first_name", "last_name", "email", "role", "password"]
