from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _


class SignInForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocomplete="username",
                                                    placeholder=_("Your login"))
        self.fields["password"].widget.attrs.update(placeholder=_("Password"))


class TokenForm(forms.Form):
    token = forms.CharField(
        label=_("Six-digit code"), max_length=6, min_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "pattern": "[0-9]{6}", "autofocus": True}))


class CodeForm(forms.Form):
    """The code page: six digits from the authenticator app, or a recovery code."""

    token = forms.CharField(
        label=_("Code"), max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True,
                                      "autocapitalize": "off", "spellcheck": "false"}))


class RetryForm(forms.Form):
    """Shown only for an operation that needs a secret the panel never stored."""

    secret = forms.CharField(label=_("New password"), strip=False,
                             widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language"), required=False,
        choices=[("", _("As the browser asks")), *settings.LANGUAGES],
        help_text=_("The panel's language for this login, on every device."))
