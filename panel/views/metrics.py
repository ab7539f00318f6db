"""/metrics, for the provider's Prometheus: `Authorization: Bearer <METRICS_TOKEN>`.

With no token configured the page does not exist (404); a request without the right token
is refused (403). The token is compared in constant time and read only from the header,
never from the URL, which proxies and access logs keep."""

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from provisioning import metrics as panel_metrics


def _bearer(request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@never_cache
def metrics(request):
    if not settings.METRICS_TOKEN:
        raise Http404
    if not constant_time_compare(_bearer(request), settings.METRICS_TOKEN):
        return HttpResponseForbidden("A valid bearer token is required.",
                                     content_type="text/plain")
    return HttpResponse(panel_metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
