"""Signing in: the front page, sign-out by POST, password reset, brute-force lockout and
TOTP two-factor (enrolment, verification, and the provider's REQUIRE_TWO_FACTOR)."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.support.views import PASSWORD


def code_for(device):
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_the_front_page_is_the_sign_in_form(client, demo):
    response = client.get("/")
    assert response.status_code == 200 and b"Sign in" in response.content
    response = client.post(reverse("login"), {"username": "contoso-admin",
                                              "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").url == reverse("organization", args=[demo.pk])


def test_a_reseller_lands_on_its_organizations(client, demo):
    client.post(reverse("login"), {"username": "reseller", "password": PASSWORD})
    assert client.get("/").url == reverse("organizations")


def test_panel_pages_need_a_sign_in(client, demo):
    response = client.get(reverse("users", args=[demo.pk]))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_sign_out_is_a_post(client, demo):
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("users", args=[demo.pk])).status_code == 302


def test_password_reset_sends_a_working_link(client, demo, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.post(reverse("password_reset"), {"email": "admin@contoso.example"})
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/account/password-reset/\S+/)", mail.outbox[0].body)[1]
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    response = client.post(form.redirect_chain[-1][0], {"new_password1": "Brand-New-Pass-99",
                                                        "new_password2": "Brand-New-Pass-99"})
    assert response.status_code == 302
    assert get_user_model().objects.get(username="contoso-admin").check_password(
        "Brand-New-Pass-99")


def test_brute_force_is_locked_out(client, demo, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "contoso-admin", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "contoso-admin",
                                              "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content


def test_two_factor_enrolment_then_a_code_at_each_sign_in(client, demo, settings):
    # django-otp slows down guessing after a wrong code; this test types one on purpose.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    client.post(reverse("login"), {"username": "contoso-admin", "password": PASSWORD})
    page = client.get(reverse("two_factor_setup"))
    assert b"<svg" in page.content
    device = TOTPDevice.objects.get(user__username="contoso-admin", confirmed=False)
    assert client.post(reverse("two_factor_setup"), {"token": "000000"}).status_code == 200
    response = client.post(reverse("two_factor_setup"), {"token": code_for(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed

    fresh = Client()
    fresh.post(reverse("login"), {"username": "contoso-admin", "password": PASSWORD})
    response = fresh.get(reverse("users", args=[demo.pk]))
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_verify"))
    assert fresh.post(reverse("two_factor_verify"), {"token": "000000"}).status_code == 200
    device.refresh_from_db()
    # A code is accepted once: step past the one used at enrolment.
    device.last_t = -1
    device.save()
    response = fresh.post(reverse("two_factor_verify") + f"?next=/organizations/{demo.pk}/users/",
                          {"token": code_for(device)})
    assert response.status_code == 302 and response.url == f"/organizations/{demo.pk}/users/"
    assert fresh.get(reverse("users", args=[demo.pk])).status_code == 200


@pytest.mark.parametrize("login", ["reseller", "contoso-admin", "contoso-helpdesk"])
def test_the_provider_can_require_two_factor(client, demo, settings, login):
    settings.REQUIRE_TWO_FACTOR = True
    client.post(reverse("login"), {"username": login, "password": PASSWORD})
    response = client.get(reverse("organization", args=[demo.pk]))
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_setup"))


def test_a_login_without_a_panel_account_is_refused(client, demo):
    get_user_model().objects.create_user("stranger", password=PASSWORD)
    client.post(reverse("login"), {"username": "stranger", "password": PASSWORD})
    assert client.get("/").url == reverse("no_account")
    assert client.get(reverse("organizations")).status_code == 403
