"""An organization's mail contacts (issue #12)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from provisioning import names

from . import NameField


class ContactCreateForm(forms.Form):
    name = NameField(names.CONTACT_NAME, label=_("Name"))
    email = NameField(names.EXTERNAL_EMAIL, label=_("External e-mail address"),
                      widget=forms.EmailInput)
