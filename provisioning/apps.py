from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Customers and provisioning"

    def ready(self):
        from . import changelog  # noqa: F401  registers the change log
