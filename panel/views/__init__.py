"""The browser panel, one module per concern; `healthz` and `readyz` serve the probes of load
balancers and orchestrators (answered by panel.middleware.ProbeMiddleware, before host
validation and the HTTPS redirect)."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from panel import health


@never_cache
def healthz(request):
    """Liveness: the web process answers. Nothing else is asked, so a database or broker
    outage never gets the web containers restarted."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness: 200 when the database, the broker, a worker and beat are all there, else
    503; the body names each check."""
    ready, checks = health.readiness()
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status=200 if ready else 503)
