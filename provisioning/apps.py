from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Customers and provisioning"

    def ready(self):
        # The change log's registrations, the account's language at sign-in, recovery codes
        # deleted with their authenticator, and the metrics' deployment check.
        from . import changelog, languages, metrics, two_factor  # noqa: F401
