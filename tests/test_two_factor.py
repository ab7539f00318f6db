"""The second factor on every way in: the panel and the provider's admin ask for the code
once an authenticator is enrolled; replacing it needs the current one (or a provider's
reset, which the change log records); recovery codes are shown once and work once; a
password reset signs nobody in past the code."""

import base64
import re

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.support.views import FULL, PASSWORD, PRIMARY, PROVIDER

User = get_user_model()


@pytest.fixture(autouse=True)
def no_throttling(settings):
    # django-otp slows down guessing after a wrong code; these tests type some on purpose.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def code_for(device):
    """The authenticator's current code, accepted even if this time step was used before."""
    device.refresh_from_db()
    device.last_t = -1
    device.save(update_fields=["last_t"])
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def enrolled(username):
    return TOTPDevice.objects.create(user=User.objects.get(username=username),
                                     name="Authenticator app", confirmed=True)


def sign_in(username, password=PASSWORD):
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": password})
    assert response.status_code == 302, "the password sign-in itself must succeed"
    return client


def verify(client, code):
    return client.post(reverse("two_factor_verify"), {"token": code})


def is_code_page(response):
    return response.status_code == 302 and response.url.startswith(reverse("two_factor_verify"))


def is_enrolment_page(response):
    return response.status_code == 302 and response.url.startswith(reverse("two_factor_setup"))


def recovery_codes_of(page):
    return re.findall(r'<code class="recovery-code">([a-z2-7]{8})</code>', page.content.decode())


# --- Finding 1: enrolling a new authenticator is no way around the old one -------------------

def test_a_password_only_session_cannot_enrol_a_new_authenticator(demo, contoso_peers):
    device = enrolled(FULL)
    client = sign_in(FULL)
    assert is_code_page(client.get(reverse("organization", args=[demo.pk])))

    page = client.get(reverse("two_factor_setup"))
    assert is_code_page(page), "the enrolment page must ask for the current code first"
    # Where it leads shows no new authenticator's QR code or secret either.
    page = client.get(reverse("two_factor_setup"), follow=True)
    assert page.redirect_chain[-1][0].startswith(reverse("two_factor_verify"))
    assert b"<svg" not in page.content and b"secret" not in page.content
    assert not TOTPDevice.objects.filter(user=device.user, confirmed=False).exists()

    # A new device's code, however it was obtained, does not replace the enrolled one.
    other = TOTPDevice.objects.create(user=device.user, name="Attacker", confirmed=False)
    assert is_code_page(client.post(reverse("two_factor_setup"), {"token": code_for(other)}))
    assert TOTPDevice.objects.filter(pk=device.pk, confirmed=True).exists()
    other.refresh_from_db()
    assert not other.confirmed
    assert is_code_page(client.get(reverse("organization", args=[demo.pk])))


def test_a_verified_session_may_replace_the_authenticator(demo, contoso_peers):
    device = enrolled(FULL)
    client = sign_in(FULL)
    next_url = reverse("two_factor_setup")
    response = client.post(f"{reverse('two_factor_verify')}?next={next_url}",
                           {"token": code_for(device)})
    assert response.status_code == 302 and response.url == next_url
    assert b"<svg" in client.get(next_url).content
    new = TOTPDevice.objects.get(user=device.user, confirmed=False)
    assert client.post(next_url, {"token": code_for(new)}).status_code == 302
    assert list(TOTPDevice.objects.filter(user=device.user)) == [new]
    new.refresh_from_db()
    assert new.confirmed
    assert client.get(reverse("organization", args=[demo.pk])).status_code == 200


# --- Finding 2: the provider's admin asks for the code too ------------------------------------

ADMIN_PAGES = ("admin:index", "admin:auth_user_changelist",
               "admin:provisioning_customer_changelist", "admin:password_change")


def test_the_admin_asks_a_superuser_for_the_code(demo):
    device = enrolled(PROVIDER)
    # The admin's own sign-in form signs nobody in: it sends visitors to the panel's page.
    admin_form = Client()
    admin_form.post(reverse("admin:login"), {"username": PROVIDER, "password": PASSWORD,
                                             "next": reverse("admin:index")})
    assert "_auth_user_id" not in admin_form.session
    assert admin_form.get(reverse("admin:index")).status_code != 200
    # The panel's sign-in gives a half-signed-in session that reaches no admin page.
    client = Client()
    client.post(reverse("login"), {"username": PROVIDER, "password": PASSWORD})
    for name in ADMIN_PAGES:
        response = client.get(reverse(name), follow=True)
        assert response.redirect_chain, name
        assert response.redirect_chain[-1][0].startswith(reverse("two_factor_verify")), name
        assert b"Two-factor check" in response.content, name
    response = client.post(response.redirect_chain[-1][0], {"token": code_for(device)})
    assert response.status_code == 302 and response.url == reverse("admin:password_change")
    for name in ADMIN_PAGES:
        assert client.get(reverse(name)).status_code == 200, name


def test_the_admin_sign_in_form_is_the_panels(demo):
    response = Client().get(reverse("admin:login") + "?next=/admin/servers/")
    assert response.status_code == 302
    assert response.url == reverse("login") + "?next=/admin/servers/"


def test_staff_without_a_device_must_enrol_when_the_provider_requires_it(demo, settings):
    settings.REQUIRE_TWO_FACTOR = True
    # Staff without a panel account reach the enrolment page all the same.
    User.objects.create_user("operator", password=PASSWORD, is_staff=True)
    for login in (PROVIDER, "operator"):
        client = sign_in(login)
        response = client.get(reverse("admin:index"), follow=True)
        assert response.redirect_chain[-1][0].startswith(reverse("two_factor_setup")), login
        assert response.status_code == 200 and b"<svg" in response.content, login
        device = TOTPDevice.objects.get(user__username=login, confirmed=False)
        enrolment = client.post(response.redirect_chain[-1][0], {"token": code_for(device)})
        assert enrolment.status_code == 302
        assert client.get(reverse("admin:index")).status_code == 200, login


def test_staff_without_a_device_use_the_admin_when_it_is_not_required(demo):
    assert sign_in(PROVIDER).get(reverse("admin:index")).status_code == 200


# --- Recovery codes -----------------------------------------------------------------------

def enrol_through_the_page(client):
    client.get(reverse("two_factor_setup"))
    device = TOTPDevice.objects.get(user__username=PRIMARY, confirmed=False)
    return client.post(reverse("two_factor_setup"), {"token": code_for(device)}), device


def test_recovery_codes_are_shown_once_and_work_once(demo):
    client = sign_in(PRIMARY)
    response, device = enrol_through_the_page(client)
    assert response.status_code == 302
    assert response.url.startswith(reverse("two_factor_recovery_codes"))
    page = client.get(response.url)
    codes = recovery_codes_of(page)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert recovery_codes_of(client.get(response.url)) == [], "shown once only"
    assert "10 recovery codes left" in client.get(response.url).content.decode()

    users = reverse("users", args=[demo.pk])
    first = sign_in(PRIMARY)
    assert is_code_page(first.get(users))
    response = first.post(f"{reverse('two_factor_verify')}?next={users}",
                          {"token": codes[0].upper()})
    assert response.status_code == 302 and response.url == users
    assert first.get(users).status_code == 200

    second = sign_in(PRIMARY)
    refused = verify(second, codes[0])
    assert refused.status_code == 200 and b"not right" in refused.content
    assert is_code_page(second.get(users))
    assert verify(second, codes[1]).status_code == 302
    assert second.get(users).status_code == 200


def test_regenerating_recovery_codes_needs_a_verified_session(demo):
    client = sign_in(PRIMARY)
    response, device = enrol_through_the_page(client)
    codes = recovery_codes_of(client.get(response.url))

    half = sign_in(PRIMARY)
    assert is_code_page(half.post(reverse("two_factor_recovery_codes")))
    assert is_code_page(half.get(reverse("two_factor_recovery_codes")))
    assert verify(half, codes[0]).status_code == 302, "the old codes still work"

    response = half.post(reverse("two_factor_recovery_codes"))
    assert response.status_code == 302
    new_codes = recovery_codes_of(half.get(response.url))
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    assert verify(sign_in(PRIMARY), codes[1]).status_code == 200, "the old codes are gone"
    assert verify(sign_in(PRIMARY), new_codes[0]).status_code == 302


# --- The provider's reset ---------------------------------------------------------------

def test_the_provider_resets_a_second_factor_and_the_change_log_says_so(demo, settings):
    client = sign_in(PRIMARY)
    enrol_through_the_page(client)
    admin_login = User.objects.get(username=PRIMARY)
    assert client.get(reverse("organization", args=[demo.pk])).status_code == 200

    provider = sign_in(PROVIDER)
    response = provider.post(reverse("admin:auth_user_changelist"),
                             {"action": "reset_two_factor",
                              "_selected_action": [admin_login.pk]}, follow=True)
    assert response.status_code == 200
    assert "Two-factor authentication reset for 1 login" in " ".join(
        str(m) for m in response.context["messages"])
    assert not admin_login.totpdevice_set.exists()
    assert not admin_login.staticdevice_set.exists()

    entry = LogEntry.objects.get(content_type=ContentType.objects.get_for_model(User),
                                 object_id=admin_login.pk, actor__username=PROVIDER,
                                 changes__has_key="two-factor authentication")
    assert entry.changes_dict["two-factor authentication"] == ["on", "reset by the provider"]
    changes = provider.get(reverse("changelog", args=[demo.pk])).content.decode()
    assert "Two-factor authentication" in changes and "reset by the provider" in changes
    device_entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(TOTPDevice))
    assert device_entries.filter(action=LogEntry.Action.DELETE,
                                 actor__username=PROVIDER).exists()
    # Enrolment is there too, without the key or the counters of each code given.
    assert device_entries.filter(action=LogEntry.Action.CREATE).exists()
    for entry in device_entries:
        assert set(entry.changes_dict) <= {"user", "name", "confirmed"}, entry.changes_dict

    settings.REQUIRE_TWO_FACTOR = True
    # The session verified by the removed device counts for nothing now.
    assert is_enrolment_page(client.get(reverse("organization", args=[demo.pk])))
    fresh = sign_in(PRIMARY)
    assert is_enrolment_page(fresh.get(reverse("organization", args=[demo.pk])))
    page = fresh.get(reverse("two_factor_setup"))
    assert page.status_code == 200 and b"<svg" in page.content


def test_deleting_the_authenticator_in_the_admin_takes_the_recovery_codes_along(demo):
    client = sign_in(PRIMARY)
    _, device = enrol_through_the_page(client)
    device.refresh_from_db()
    assert device.user.staticdevice_set.exists()
    provider = sign_in(PROVIDER)
    response = provider.post(reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]),
                             {"post": "yes"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert not device.user.staticdevice_set.exists()


# --- Password reset -----------------------------------------------------------------------

def test_a_password_reset_does_not_skip_the_code(demo, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    device = enrolled(PRIMARY)
    client = Client()
    client.post(reverse("password_reset"), {"email": "admin@contoso.example"})
    link = re.search(r"https?://[^/]+(/account/password-reset/\S+/)", mail.outbox[0].body)[1]
    form = client.get(link, follow=True)
    response = client.post(form.redirect_chain[-1][0], {"new_password1": "Brand-New-Pass-99",
                                                        "new_password2": "Brand-New-Pass-99"})
    assert response.status_code == 302
    organization = reverse("organization", args=[demo.pk])
    response = client.get(organization)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))

    fresh = sign_in(PRIMARY, "Brand-New-Pass-99")
    assert is_code_page(fresh.get(organization))
    assert is_code_page(fresh.get(reverse("two_factor_setup")))
    assert verify(fresh, code_for(device)).status_code == 302
    assert fresh.get(organization).status_code == 200


def test_the_admin_never_shows_a_second_factors_secrets(demo):
    client = sign_in(PRIMARY)
    _, device = enrol_through_the_page(client)
    device.refresh_from_db()
    codes = list(device.user.staticdevice_set.get().token_set.values_list("token", flat=True))
    provider = sign_in(PROVIDER)
    page = provider.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))
    assert page.status_code == 200 and device.key not in page.content.decode()
    base32 = base64.b32encode(device.bin_key).decode().rstrip("=")
    assert base32 not in page.content.decode() and "otpauth://" not in page.content.decode()
    assert provider.get(reverse("admin:otp_totp_totpdevice_config",
                                args=[device.pk])).status_code == 403
    static = device.user.staticdevice_set.get()
    page = provider.get(reverse("admin:otp_static_staticdevice_change", args=[static.pk]))
    assert page.status_code == 200
    assert not any(code in page.content.decode() for code in codes)
