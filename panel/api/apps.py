from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "panel.api"
    label = "api"
    verbose_name = "API"

    def ready(self):
        from . import schema  # noqa: F401 - registers the authentication schemes
