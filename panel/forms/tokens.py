from datetime import UTC, datetime, time

from django import forms


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “Billing system”.")
    expires = forms.DateField(required=False, label="Expires on",
                              widget=forms.DateInput(attrs={"type": "date"}),
                              help_text="Leave empty for a token that does not expire. It "
                                        "stops working at the start of that day (UTC).")

    def service_arguments(self):
        day = self.cleaned_data.get("expires")
        return {"name": self.cleaned_data["name"],
                "expires": datetime.combine(day, time.min, tzinfo=UTC) if day else None}
