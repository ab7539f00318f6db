import os

from celery import Celery

from . import celery_fixes  # noqa: F401 - applies the kombu/celery work-around on import

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "panel.settings")

app = Celery("panel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker records a heartbeat for /readyz and the provider's status page.
app.steps["consumer"].add("panel.health:WorkerHeartbeat")
