from django import forms

from .models import Service

SECRET_FIELDS = ("bind_password", "exchange_password")


class ServiceForm(forms.ModelForm):
    """Secrets are write-only: never rendered back; left empty, the stored one is kept."""

    bind_password = forms.CharField(
        label="bind password", required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the stored password.")
    exchange_password = forms.CharField(
        label="Exchange password", required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the stored password.")

    class Meta:
        model = Service
        fields = ["server", "kind", "name", "enabled", "ldap_host", "ldap_port", "use_ssl",
                  "verify_ca", "ca_certificate", "base_dn", "root_ou", "bind_dn",
                  "bind_password", "winrm_endpoint", "winrm_transport", "winrm_verify_tls",
                  "winrm_allow_insecure",
                  "exchange_username", "exchange_password", "default_database"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in SECRET_FIELDS:
            self.initial[field] = ""

    def _post_clean(self):
        for field in SECRET_FIELDS:
            if not self.cleaned_data.get(field) and self.instance.pk:
                self.cleaned_data[field] = Service.objects.values_list(
                    field, flat=True).get(pk=self.instance.pk)
        super()._post_clean()
