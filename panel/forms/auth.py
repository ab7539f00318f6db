from django import forms
from django.contrib.auth.forms import AuthenticationForm


class SignInForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocomplete="username",
                                                    placeholder="Your login")
        self.fields["password"].widget.attrs.update(placeholder="Password")


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Six-digit code", max_length=6, min_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "pattern": "[0-9]{6}", "autofocus": True}))


class RetryForm(forms.Form):
    """Shown only for an operation that needs a secret the panel never stored."""

    secret = forms.CharField(label="New password", strip=False,
                             widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
