"""Middleware of the panel's own."""

from auditlog.middleware import AuditlogMiddleware
from django.middleware.locale import LocaleMiddleware
from django.utils import translation

from provisioning import changelog
from provisioning.languages import LANGUAGE_SESSION_KEY

from .views import healthz, readyz

PROBES = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware:
    """Answers /healthz and /readyz first of all, before SecurityMiddleware and
    CommonMiddleware: a probe reaches a container by its address, over plain HTTP, with
    whatever Host header it likes, which ALLOWED_HOSTS and the HTTPS redirect would refuse.
    Nothing here calls request.get_host()."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)


class ChangeLogMiddleware(AuditlogMiddleware):
    """auditlog's middleware (the actor and address of each entry), with one correlation id
    per request, so the change log shows a request's entries as one group."""

    def __call__(self, request):
        with changelog.correlated():
            return super().__call__(request)


class LanguageMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware (Accept-Language, the language cookie), put second to the
    account's own choice, which sign-in and the Preferences page keep in the session (see
    provisioning.languages): no query of its own."""

    def process_request(self, request):
        chosen = request.session.get(LANGUAGE_SESSION_KEY) if hasattr(request, "session") else None
        if chosen and translation.check_for_language(chosen):
            translation.activate(chosen)
            request.LANGUAGE_CODE = translation.get_language()
            return
        super().process_request(request)
