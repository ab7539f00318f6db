"""Forms of the panel, one module per concern. They parse and present; the rules they enforce
are the services' (provisioning.services, provisioning.accounts)."""

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _


def apply_errors(form, exc):
    """Put a service's ValidationError on the form: on the field it names when the form has
    that field, otherwise above the form."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class NameField(forms.CharField):
    """A name checked by its rule in provisioning.names — the rule the service applies
    again before storing it — so the form shows the service's own message inline, cleans
    the value the way the service stores it, and states the rule in its help text."""

    def __init__(self, rule, **kwargs):
        self.rule = rule
        kwargs.setdefault("required", rule.required)
        # Templates show help texts unescaped (Django's own forms do too); a rule's text
        # has & and ' in it. escape() keeps a translated text lazy, so it follows the
        # request's language.
        kwargs["help_text"] = escape(kwargs.get("help_text", rule.help_text))
        # The rule strips, limits the length and refuses NUL with its own messages.
        kwargs.update(strip=False, max_length=None)
        super().__init__(**kwargs)
        self.validators = []

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "maxlength": str(self.rule.max_length)}

    def clean(self, value):
        return self.rule.clean(self.to_python(value))


class PasswordField(forms.CharField):
    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})

    def __init__(self, **kwargs):
        kwargs.setdefault("strip", False)
        kwargs.setdefault("help_text",
                          password_validation.password_validators_help_text_html())
        super().__init__(**kwargs)


class NewPasswordForm(forms.Form):
    password = PasswordField(label=_("New password"))
    confirm = forms.CharField(label=_("Repeat the password"), strip=False,
                              widget=forms.PasswordInput(attrs={"autocomplete":
                                                                "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("confirm"):
            raise ValidationError({"confirm": "The two passwords differ."})
        return data
