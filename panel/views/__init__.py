"""The browser panel, one module per concern; `healthz` serves the load balancers."""

from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """For load balancers and the compose health check: the web process and its database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
