"""The provider's admin behind the same door as the panel: the panel's sign-in (django-axes
included) and its second factor. A staff login whose session still owes a code — or an
authenticator, when the provider requires two-factor — is not staff to the admin until it
gives one."""

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from panel.views.base import two_factor_redirect
from provisioning import two_factor


class PanelAdminSite(admin.AdminSite):
    site_header = "Hosted Organizations — provider administration"
    site_title = "Hosted Organizations"

    def has_permission(self, request):
        return super().has_permission(request) and two_factor.step_due(request.user) is None

    def login(self, request, extra_context=None):
        """No password form of its own: visitors go to the panel's sign-in, staff that owe the
        second factor to the code (or enrolment) page, then back to where they were going."""
        next_url = self._next_url(request)
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(next_url, reverse("login"))
        if self.has_permission(request):
            return HttpResponseRedirect(next_url)
        owed = two_factor_redirect(request, next_url) if user.is_active and user.is_staff else None
        # Signed in without staff rights: Django's page says so and offers another login,
        # whose session then goes through the same checks.
        return owed or super().login(request, extra_context)

    def _next_url(self, request):
        target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
        if target and url_has_allowed_host_and_scheme(target, {request.get_host()},
                                                      require_https=request.is_secure()):
            return target
        return reverse("admin:index", current_app=self.name)
