"""API tokens: a login makes, lists and revokes its own (in the panel and through the API),
sees each once, and the panel keeps only a digest; a token acts as its login and stands for
its second factor, while a session calling the API must have given its code; staff make one
for a reseller in the admin; making and revoking one is in the change log."""

import hashlib
import re
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from provisioning import services, tokens
from provisioning.models import ApiToken
from tests.support.api import api_client, token_of
from tests.support.views import PRIMARY, PROVIDER, RESELLER, login
from tests.test_two_factor import code_for, sign_in, verify

User = get_user_model()
TOKEN = re.compile(r'<code class="api-token">(ho_[0-9a-f]{8}_[\w-]{43})</code>')


@pytest.fixture(autouse=True)
def no_throttling(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def changes_of(token):
    return list(LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(ApiToken), object_id=token.pk)
        .order_by("pk").values_list("action", "actor__username"))


# --- The panel's page --------------------------------------------------------------------


def test_the_panel_makes_a_token_shows_it_once_and_keeps_only_its_digest(client, demo):
    login(client, PRIMARY)
    response = client.post(reverse("api_tokens"), {"name": "Billing system"})
    assert response.status_code == 200
    shown = TOKEN.findall(response.content.decode())
    assert len(shown) == 1
    token = shown[0]
    record = ApiToken.objects.get(user__username=PRIMARY)
    assert record.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(f"ho_{record.prefix}_")
    assert not any(token in str(value) for value in
                   ApiToken.objects.filter(pk=record.pk).values().get().values())
    # Shown once: the list names it by its prefix only.
    page = client.get(reverse("api_tokens")).content.decode()
    assert token not in page and f"{record.display_prefix}…" in page and "Billing system" in page
    # It works, as its login.
    me = api_client(token=token).get("/api/v1/me/").json()
    assert (me["username"], me["role"], me["customer"]["name"]) == (
        PRIMARY, "primary_admin", "Contoso")
    assert changes_of(record) == [(LogEntry.Action.CREATE, PRIMARY)]


def test_the_panel_refuses_a_past_expiry(client, demo):
    login(client, PRIMARY)
    response = client.post(reverse("api_tokens"), {"name": "Old", "expires": "2001-01-01"})
    assert response.status_code == 200
    assert response.context["form"].errors == {"expires": ["The expiry must be in the future."]}
    assert not ApiToken.objects.exists()


def test_the_panel_revokes_a_token_after_asking(client, demo):
    record, token = tokens.create(User.objects.get(username=PRIMARY), name="CI",
                                  actor=User.objects.get(username=PRIMARY))
    url = reverse("api_token_revoke", args=[record.pk])
    login(client, PRIMARY)
    assert "Revoke the API token" in client.get(url).content.decode()
    assert api_client(token=token).get("/api/v1/me/").status_code == 200
    assert client.post(url).status_code == 302
    record.refresh_from_db()
    assert record.state == "revoked"
    response = api_client(token=token).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid, expired or revoked token."
    # Made outside a request (no actor bound); revoked in the panel by its login.
    assert changes_of(record) == [(LogEntry.Action.CREATE, None),
                                  (LogEntry.Action.UPDATE, PRIMARY)]


def test_another_logins_token_is_404_in_the_panel_and_the_api(client, demo):
    record, _ = tokens.create(User.objects.get(username=RESELLER), name="Theirs",
                              actor=User.objects.get(username=RESELLER))
    login(client, PRIMARY)
    url = reverse("api_token_revoke", args=[record.pk])
    assert client.get(url).status_code == 404 and client.post(url).status_code == 404
    mine = api_client(PRIMARY)
    assert mine.get(f"/api/v1/tokens/{record.pk}/").status_code == 404
    assert mine.delete(f"/api/v1/tokens/{record.pk}/").status_code == 404
    record.refresh_from_db()
    assert record.revoked is None
    assert [t["name"] for t in mine.get("/api/v1/tokens/").json()["results"]] == ["test"]


# --- Through the API -------------------------------------------------------------------


def test_the_api_makes_lists_and_revokes_its_logins_tokens(demo):
    client = api_client(RESELLER)
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    response = client.post("/api/v1/tokens/", {"name": "Rotation", "expires": expires},
                           format="json")
    assert response.status_code == 201
    made = response.json()
    assert made["token"].startswith(made["prefix"] + "_")
    assert response["Location"].endswith(f"/api/v1/tokens/{made['id']}/")
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert {t["name"] for t in listed} == {"test", "Rotation"}
    assert all("token" not in t and "digest" not in t for t in listed)
    new = api_client(token=made["token"])
    assert new.get("/api/v1/me/").json()["token"]["name"] == "Rotation"
    response = client.delete(f"/api/v1/tokens/{made['id']}/")
    assert response.status_code == 200 and response.json()["state"] == "revoked"
    assert new.get("/api/v1/me/").status_code == 401
    record = ApiToken.objects.get(pk=made["id"])
    # The change log's actor is the token's login, though no session was involved.
    assert changes_of(record) == [(LogEntry.Action.CREATE, RESELLER),
                                  (LogEntry.Action.UPDATE, RESELLER)]


def test_bad_input_for_a_token_is_400_by_field(demo):
    client = api_client(RESELLER)
    response = client.post("/api/v1/tokens/", {"name": " ", "expires": "2001-01-01T00:00Z"},
                           format="json")
    assert response.status_code == 400
    # The service's rule and message for every name (provisioning.names), as in the panel.
    assert response.json()["name"] == ["The token name is required."]
    response = client.post("/api/v1/tokens/", {"name": "x", "expires": "2001-01-01T00:00Z"},
                           format="json")
    assert response.status_code == 400
    assert response.json()["expires"] == ["The expiry must be in the future."]
    response = client.post("/api/v1/tokens/", {"name": "Billing\u202egnilliB"}, format="json")
    assert response.status_code == 400 and "name" in response.json()
    assert not ApiToken.objects.filter(name__startswith="Billing").exists()


def test_a_token_made_with_an_expiring_token_expires_no_later(demo):
    reseller = get_user_model().objects.get(username=RESELLER)
    soon = timezone.now() + timedelta(days=30)
    _, secret = tokens.create(reseller, name="Rotating", expires=soon, actor=reseller)
    client = api_client(token=secret)
    for expires in (None, (soon + timedelta(days=1)).isoformat()):
        response = client.post("/api/v1/tokens/", {"name": "Forever", "expires": expires},
                               format="json")
        assert response.status_code == 400 and "expires" in response.json(), expires
    assert not ApiToken.objects.filter(name="Forever").exists()
    response = client.post("/api/v1/tokens/", {"name": "Successor",
                                               "expires": (soon - timedelta(days=1)).isoformat()},
                           format="json")
    assert response.status_code == 201


def test_a_new_token_is_never_kept_for_an_idempotent_replay(demo):
    from panel.api.models import IdempotentRequest

    client = api_client(RESELLER)
    first = client.post("/api/v1/tokens/", {"name": "Once"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="make-a-token")
    assert first.status_code == 201 and first.json()["token"].startswith("ho_")
    assert not IdempotentRequest.objects.filter(key="make-a-token").exists()
    assert not any(first.json()["token"] in str(body)
                   for body in IdempotentRequest.objects.values_list("body", flat=True))


@pytest.mark.parametrize("spoil", ["expired", "revoked", "inactive", "mangled", "unknown"])
def test_an_unusable_token_is_401(demo, spoil):
    token = token_of(PRIMARY)
    record = ApiToken.objects.get(user__username=PRIMARY)
    if spoil == "expired":
        ApiToken.objects.filter(pk=record.pk).update(expires=timezone.now())
    elif spoil == "revoked":
        tokens.revoke(record, actor=record.user)
    elif spoil == "inactive":
        User.objects.filter(pk=record.user_id).update(is_active=False)
    elif spoil == "mangled":
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    else:
        token = "ho_00000000_" + "x" * 43
    response = api_client(token=token).get("/api/v1/organizations/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_token_is_used_at_most_once_a_minute_in_the_database(demo):
    token = token_of(PRIMARY)
    client = api_client(token=token)
    client.get("/api/v1/me/")
    first = ApiToken.objects.get().last_used
    client.get("/api/v1/me/")
    assert ApiToken.objects.get().last_used == first is not None


def test_a_token_follows_the_suspended_organization_rule(demo):
    client = api_client(PRIMARY)
    services.set_enabled(demo, False)
    response = client.post("/api/v1/domains/", {"organization": demo.pk,
                                                "name": "sales.contoso.example"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "suspended"
    # Reads stay.
    assert client.get("/api/v1/users/").status_code == 200


# --- Second factor -----------------------------------------------------------------------


def test_a_session_must_have_given_its_second_factor(demo):
    device = TOTPDevice.objects.create(user=User.objects.get(username=PRIMARY),
                                       name="Authenticator app", confirmed=True)
    browser = sign_in(PRIMARY)  # password only: the code is still owed
    response = browser.get("/api/v1/organizations/")
    assert response.status_code == 403
    assert response.json()["code"] == "second_factor"
    verify(browser, code_for(device))
    assert browser.get("/api/v1/organizations/").status_code == 200


def test_a_session_needs_the_csrf_token_to_write(demo):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(User.objects.get(username=PRIMARY))
    megan = demo.children.get(upn="megan@contoso.example")
    response = browser.post(f"/api/v1/users/{megan.pk}/disable/")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_a_token_is_the_second_factor_s_equivalent(demo):
    TOTPDevice.objects.create(user=User.objects.get(username=PRIMARY),
                              name="Authenticator app", confirmed=True)
    assert api_client(PRIMARY).get("/api/v1/organizations/").status_code == 200


def test_the_provider_requiring_two_factor_still_lets_tokens_in(demo, settings):
    settings.REQUIRE_TWO_FACTOR = True
    browser = sign_in(PRIMARY)
    assert browser.get("/api/v1/me/").status_code == 403
    assert api_client(PRIMARY).get("/api/v1/me/").status_code == 200


# --- Staff, in the admin -----------------------------------------------------------------


def test_staff_make_a_token_for_a_reseller_in_the_admin(demo):
    admin = Client()
    admin.force_login(User.objects.get(username=PROVIDER))
    reseller = User.objects.get(username=RESELLER)
    response = admin.post(reverse("admin:provisioning_apitoken_add"),
                          {"user": reseller.pk, "name": "Northwind billing"})
    assert response.status_code == 200, response.content.decode()[:2000]
    token = TOKEN.findall(response.content.decode())[0]
    record = ApiToken.objects.get(user=reseller)
    assert record.created_by.username == PROVIDER
    assert api_client(token=token).get("/api/v1/me/").json()["username"] == RESELLER
    assert changes_of(record) == [(LogEntry.Action.CREATE, PROVIDER)]
    # The reseller sees who made it; nobody sees the token again.
    login(admin, RESELLER)
    page = admin.get(reverse("api_tokens")).content.decode()
    assert "made by provider" in page and token not in page
    assert token not in Client().get(reverse("admin:provisioning_apitoken_changelist")
                                     ).content.decode()


def test_only_staff_make_tokens_for_other_logins(demo):
    reseller, admin = User.objects.get(username=RESELLER), User.objects.get(username=PRIMARY)
    with pytest.raises(PermissionDenied):
        tokens.create(admin, name="x", actor=reseller)
    with pytest.raises(PermissionDenied):
        tokens.revoke(tokens.create(admin, name="x", actor=admin)[0], actor=reseller)


def test_the_organizations_change_log_shows_its_logins_tokens(client, demo):
    record, _ = tokens.create(User.objects.get(username=PRIMARY), name="Visible",
                              actor=User.objects.get(username=PRIMARY))
    login(client, PRIMARY)
    page = client.get(reverse("changelog", args=[demo.pk])).content.decode()
    assert "Visible" in page
    assert record.digest not in page


def test_the_change_log_through_the_api(demo, other_tenant):
    client = api_client(PRIMARY)
    megan = demo.children.get(upn="megan@contoso.example")
    client.patch(f"/api/v1/users/{megan.pk}/", {"display_name": "Megan B."}, format="json")
    client.post("/api/v1/tokens/", {"name": "Rotation"}, format="json")
    entries = client.get(f"/api/v1/organizations/{demo.pk}/changes/").json()["results"]
    assert entries[0]["object_type"] == "apitoken" and entries[0]["actor"] == PRIMARY
    renamed = next(e for e in entries if e["object_id"] == megan.pk and e["action"] == "update")
    assert renamed["changes"]["name"] == ["Megan Bowen", "Megan B."]
    assert renamed["actor"] == PRIMARY
    assert not any("Fabrikam" in e["object_repr"] for e in entries)
    pk = other_tenant["organization"].pk
    assert client.get(f"/api/v1/organizations/{pk}/changes/").status_code == 404
