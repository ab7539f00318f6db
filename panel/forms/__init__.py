"""Forms of the panel, one module per concern. They parse and present; the rules they enforce
are the services' (provisioning.services, provisioning.accounts)."""

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError


def apply_errors(form, exc):
    """Put a service's ValidationError on the form: on the field it names when the form has
    that field, otherwise above the form."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class PasswordField(forms.CharField):
    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})

    def __init__(self, **kwargs):
        kwargs.setdefault("strip", False)
        kwargs.setdefault("help_text",
                          password_validation.password_validators_help_text_html())
        super().__init__(**kwargs)


class NewPasswordForm(forms.Form):
    password = PasswordField(label="New password")
    confirm = forms.CharField(label="Repeat the password", strip=False,
                              widget=forms.PasswordInput(attrs={"autocomplete":
                                                                "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("confirm"):
            raise ValidationError({"confirm": "The two passwords differ."})
        return data
