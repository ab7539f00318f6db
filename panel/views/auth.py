"""Signing in and out, and the second factor (`provisioning.two_factor`): TOTP enrolment,
the code page, recovery codes."""

from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import FormView, RedirectView, TemplateView
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from panel.forms import apply_errors
from panel.forms.auth import CodeForm, PreferencesForm, SignInForm, TokenForm
from provisioning import languages, scoping, two_factor

from .base import SignedInMixin, two_factor_redirect

# New recovery codes wait here for the one page that shows them.
RECOVERY_CODES_SESSION_KEY = "two_factor_recovery_codes"


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


class TwoFactorSetupView(SignedInMixin, FormView):
    """Enrol an authenticator app: a QR code of a new, unconfirmed TOTP device, confirmed by
    the first code it shows. Replacing an enrolled authenticator needs a session that gave a
    code of it (or of a recovery code) first: a password alone never reaches this page then."""

    template_name = "registration/two_factor_setup.html"
    form_class = TokenForm
    title = gettext_lazy("Two-factor authentication")

    def check(self, request, *args, **kwargs):
        if two_factor.step_due(request.user) == two_factor.VERIFY:
            return two_factor_redirect(request)
        return None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        device = two_factor.pending_authenticator(user)
        image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage,
                            box_size=8)
        enrolled = two_factor.is_enrolled(user)
        context.update(
            qr_svg=mark_safe(image.to_string(encoding="unicode")),  # noqa: S308 - our own SVG
            secret=device.config_url.split("secret=")[1].split("&")[0],
            enrolled=enrolled,
            recovery_codes_left=two_factor.recovery_codes_left(user) if enrolled else None,
            next=self.request.GET.get("next", ""))
        return context

    def form_valid(self, form):
        try:
            device, codes = two_factor.confirm_authenticator(self.request.user,
                                                             form.cleaned_data["token"])
        except ValidationError as exc:
            apply_errors(form, exc)
            return self.form_invalid(form)
        otp_login(self.request, device)
        show_recovery_codes(self.request, codes)
        messages.success(self.request, _("Two-factor authentication is on. You will be asked "
                                         "for a code at each sign-in."))
        return redirect(recovery_codes_url(_next_url(self.request)))


def show_recovery_codes(request, codes):
    """Hand new recovery codes to the next page, which shows them once."""
    request.session[RECOVERY_CODES_SESSION_KEY] = codes


def recovery_codes_url(next_url):
    return f"{reverse('two_factor_recovery_codes')}?{urlencode({'next': next_url})}"


class RecoveryCodesView(SignedInMixin, TemplateView):
    """The recovery codes, shown once right after they are made; POST makes new ones. Both
    need a session that gave a code (the page of a login that owes one sends it there)."""

    template_name = "registration/two_factor_recovery_codes.html"
    title = gettext_lazy("Recovery codes")

    def check(self, request, *args, **kwargs):
        response = two_factor_redirect(request)
        if response is not None:
            return response
        if not request.user.is_verified():
            # Nothing to recover without an authenticator.
            return redirect("two_factor_setup")
        return None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(codes=self.request.session.pop(RECOVERY_CODES_SESSION_KEY, None),
                       left=two_factor.recovery_codes_left(self.request.user),
                       next=_next_url(self.request))
        return context

    def post(self, request, *args, **kwargs):
        show_recovery_codes(request, two_factor.renew_recovery_codes(request.user))
        messages.success(request, _("New recovery codes are ready; the old ones no longer "
                                    "work."))
        return redirect(recovery_codes_url(_next_url(request, default="two_factor_setup")))


class TwoFactorVerifyView(SignedInMixin, FormView):
    """The code page: a code of the authenticator app, or one of the recovery codes."""

    template_name = "registration/two_factor_verify.html"
    form_class = CodeForm
    title = gettext_lazy("Enter your code")

    def form_valid(self, form):
        device = two_factor.verify(self.request.user, form.cleaned_data["token"])
        if device is None:
            form.add_error("token", _("That code is not right. Try the current one, or a "
                                      "recovery code you have not used yet."))
            return self.form_invalid(form)
        otp_login(self.request, device)
        if isinstance(device, StaticDevice):
            left = two_factor.recovery_codes_left(self.request.user)
            messages.warning(self.request, _(
                "You signed in with a recovery code; %(left)s left. Lost your authenticator? "
                "Set up a new one under Two-factor.") % {"left": left})
        return redirect(_next_url(self.request))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["next"] = self.request.GET.get("next", "")
        return context


class PreferencesView(SignedInMixin, FormView):
    """The login's own preferences: the panel's language (provisioning.languages)."""

    template_name = "panel/preferences.html"
    form_class = PreferencesForm
    title = gettext_lazy("Preferences")

    def check(self, request, *args, **kwargs):
        return two_factor_redirect(request)

    def get_initial(self):
        return {"language": getattr(self.account, "language", "")}

    def form_valid(self, form):
        language = form.cleaned_data["language"]
        if self.account is not None and self.account.pk:
            languages.set_language(self.account, language, self.request)
        else:
            # Provider staff without a panel account: this session only.
            languages.remember(self.request, language)
        messages.success(self.request, _("Your preferences are saved."))
        return redirect("preferences")
