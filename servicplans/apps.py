from django.apps import AppConfig


class ServicplansConfig(AppConfig):
    name = "servicplans"
    verbose_name = "Hosting plans and service plans"
