"""Signing in and out, and TOTP two-factor enrolment and verification (django-otp)."""

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.generic import FormView, RedirectView
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from panel.forms.auth import SignInForm, TokenForm
from provisioning import scoping

from .base import PanelMixin


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True


class HomeView(RedirectView):
    """The front page: the sign-in form for visitors, the right start page for everyone else."""

    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return SignInView.as_view()(request, *args, **kwargs)
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        return SignInView.as_view()(request, *args, **kwargs)

    def get_redirect_url(self, *args, **kwargs):
        user = self.request.user
        if scoping.can(user, "reseller.view"):
            return resolve_url("organizations")
        organization = scoping.home_organization(user)
        if organization is not None:
            return resolve_url("organization", organization.pk)
        if user.is_staff:
            return resolve_url("admin:index")
        return resolve_url("no_account")


def _next_url(request, default="home"):
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return resolve_url(default)


class TwoFactorSetupView(PanelMixin, FormView):
    """Enrol an authenticator app: a QR code of a new, unconfirmed TOTP device, confirmed by
    the first code it shows."""

    template_name = "registration/two_factor_setup.html"
    form_class = TokenForm
    two_factor_exempt = True
    title = "Two-factor authentication"

    def device(self):
        user = self.request.user
        device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
        return device or TOTPDevice.objects.create(user=user, name="Authenticator app",
                                                   confirmed=False)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        device = self.device()
        image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage,
                            box_size=8)
        context.update(
            qr_svg=mark_safe(image.to_string(encoding="unicode")),  # noqa: S308 - our own SVG
            secret=device.config_url.split("secret=")[1].split("&")[0],
            enrolled=TOTPDevice.objects.filter(user=self.request.user, confirmed=True).exists(),
            next=self.request.GET.get("next", ""))
        return context

    def form_valid(self, form):
        device = self.device()
        if not device.verify_token(form.cleaned_data["token"]):
            form.add_error("token", "That code is not right. Check your device's clock and "
                                    "try the current code.")
            return self.form_invalid(form)
        TOTPDevice.objects.filter(user=self.request.user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        otp_login(self.request, device)
        messages.success(self.request, "Two-factor authentication is on. You will be asked "
                                       "for a code at each sign-in.")
        return redirect(_next_url(self.request))


class TwoFactorVerifyView(PanelMixin, FormView):
    template_name = "registration/two_factor_verify.html"
    form_class = TokenForm
    two_factor_exempt = True
    title = "Enter your code"

    def form_valid(self, form):
        for device in devices_for_user(self.request.user, confirmed=True):
            if device.verify_token(form.cleaned_data["token"]):
                otp_login(self.request, device)
                return redirect(_next_url(self.request))
        form.add_error("token", "That code is not right. Try the current one.")
        return self.form_invalid(form)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["next"] = self.request.GET.get("next", "")
        return context
