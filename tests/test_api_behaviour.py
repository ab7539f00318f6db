"""How the API answers, whatever the resource: Idempotency-Key, errors by field, quota
conflicts with their figures, rate limits, cursor pagination with a capped page size, and
the schema and its docs page under the panel's Content-Security-Policy."""

import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from panel.api.models import IdempotentRequest
from provisioning import journal, services
from provisioning.models import Customer, Operation
from servicplans.models import ServicePlan
from tests.support.api import api_client, token_of
from tests.support.views import NEW_PASSWORD, PRIMARY, RESELLER


def new_user(organization, local_part="nestor", **overrides):
    return {"organization": organization.pk, "display_name": "Nestor Wilke",
            "local_part": local_part, "domain": "contoso.example", "password": NEW_PASSWORD,
            "service_plan": ServicePlan.objects.get(name="Silver").pk, **overrides}


# --- Idempotency-Key ---------------------------------------------------------------------


def test_a_retried_post_gets_the_first_answer(demo):
    client = api_client(PRIMARY)
    first = client.post("/api/v1/users/", new_user(demo), format="json",
                        HTTP_IDEMPOTENCY_KEY="create-nestor-1")
    again = client.post("/api/v1/users/", new_user(demo), format="json",
                        HTTP_IDEMPOTENCY_KEY="create-nestor-1")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Customer.objects.filter(upn="nestor@contoso.example").count() == 1
    assert Operation.objects.filter(action="provision_user",
                                    customer__upn="nestor@contoso.example").count() == 1


def test_the_same_key_with_another_body_is_422(demo):
    client = api_client(PRIMARY)
    client.post("/api/v1/users/", new_user(demo), format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = client.post("/api/v1/users/", new_user(demo, "other"), format="json",
                           HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert not Customer.objects.filter(upn="other@contoso.example").exists()


def test_keys_belong_to_their_token(demo):
    first, second = api_client(PRIMARY), api_client(token=token_of(PRIMARY, "second"))
    assert first.post("/api/v1/users/", new_user(demo), format="json",
                      HTTP_IDEMPOTENCY_KEY="k").status_code == 202
    # The same key from another token is another request: refused here on its own merits.
    response = second.post("/api/v1/users/", new_user(demo), format="json",
                           HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 400
    assert "already in use" in response.json()["local_part"][0]


def test_a_refused_request_leaves_its_key_free(demo):
    client = api_client(PRIMARY)
    bad = client.post("/api/v1/users/", new_user(demo, password="short"), format="json",
                      HTTP_IDEMPOTENCY_KEY="k")
    assert bad.status_code == 400
    good = client.post("/api/v1/users/", new_user(demo), format="json",
                       HTTP_IDEMPOTENCY_KEY="k")
    assert good.status_code == 202
    assert IdempotentRequest.objects.get().status == 202


def test_a_key_must_be_printable_ascii(demo):
    response = api_client(PRIMARY).post("/api/v1/users/", new_user(demo), format="json",
                                        HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == 400 and response.json()["code"] == "invalid_idempotency_key"


def test_the_fingerprint_does_not_hold_the_password(demo):
    api_client(PRIMARY).post("/api/v1/users/", new_user(demo), format="json",
                             HTTP_IDEMPOTENCY_KEY="k")
    record = IdempotentRequest.objects.values().get()
    assert NEW_PASSWORD not in str(record)
    import hashlib
    import json

    assert all(hashlib.sha256(json.dumps(v).encode()).hexdigest() != record["fingerprint"]
               for v in (new_user(demo),))
    # It is an HMAC keyed by SECRET_KEY over the method, path and body: equal to that, and
    # to nothing a copy of the database alone could recompute.
    from django.test import override_settings
    from django.utils.crypto import salted_hmac

    body = json.dumps(new_user(demo), sort_keys=True, default=str)
    keyed = salted_hmac("panel.api.idempotency", f"POST /api/v1/users/\n{body}",
                        algorithm="sha256").hexdigest()
    assert record["fingerprint"] == keyed
    with override_settings(SECRET_KEY="another-key-entirely-" + "x" * 40):
        assert salted_hmac("panel.api.idempotency", f"POST /api/v1/users/\n{body}",
                           algorithm="sha256").hexdigest() != keyed


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent transactions")
@pytest.mark.django_db(transaction=True)
def test_two_requests_sent_at_once_with_one_key_act_once(monkeypatch):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    monkeypatch.setattr(journal, "send", lambda *args, **kwargs: None)
    demo = Customer.objects.organizations().get(name="Contoso")
    token, body = token_of(PRIMARY), new_user(demo)
    barrier, responses = threading.Barrier(2, timeout=20), []
    create_user = services.create_user

    def slow_create_user(*args, **kwargs):
        result = create_user(*args, **kwargs)
        import time

        time.sleep(0.3)  # the second request arrives while the first is uncommitted
        return result

    monkeypatch.setattr(services, "create_user", slow_create_user)

    def send():
        try:
            barrier.wait()
            responses.append(api_client(token=token).post(
                "/api/v1/users/", body, format="json", HTTP_IDEMPOTENCY_KEY="once"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_code for r in responses) == [202, 202]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    assert Customer.objects.filter(upn="nestor@contoso.example").count() == 1


# --- Errors --------------------------------------------------------------------------------


def test_bad_input_is_400_by_field_with_the_services_messages(demo):
    response = api_client(PRIMARY).post("/api/v1/users/", new_user(
        demo, local_part="bad name", domain="fabrikam.example", display_name="\u202e"),
        format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["domain"] == ["Choose one of the organization's domains."]
    assert body["local_part"][0].startswith("The logon name cannot contain")
    assert set(body) >= {"detail", "domain", "local_part"}


def test_a_nul_or_a_lone_surrogate_gets_the_rules_words_not_rest_frameworks(demo):
    """Name fields keep no validator of REST framework's own, also in the copy of the field
    each serializer instance makes: the message is the service's, as in the browser."""
    client = api_client(PRIMARY)
    response = client.post("/api/v1/users/", new_user(demo, display_name="Nes\x00tor"),
                           format="json")
    assert response.status_code == 400
    assert "U+0000" in response.json()["display_name"][0]
    assert not Customer.objects.filter(upn="nestor@contoso.example").exists()


def test_a_users_quota_is_409_with_its_figures(demo):
    client = api_client(PRIMARY)
    gold = ServicePlan.objects.get(name="Gold").pk
    # Business Basic: 51200 MB of mailbox disk; Contoso uses 14336, a Gold mailbox 10240.
    for n in range(3):
        assert client.post("/api/v1/users/", new_user(demo, f"gold{n}", service_plan=gold),
                           format="json").status_code == 202
    response = client.post("/api/v1/users/", new_user(demo, "gold3", service_plan=gold),
                           format="json")
    assert response.status_code == 409
    body = response.json()
    assert {k: body[k] for k in ("code", "field", "quota", "used", "limit", "requested")} == {
        "code": "quota", "field": "service_plan", "quota": "mailbox_disk_mb",
        "used": 45056, "limit": 51200, "requested": 10240}
    assert body["detail"].startswith("The organization's quota for mailbox disk space")


def test_a_quota_message_keeps_a_percent_sign(demo):
    from provisioning import quotas

    error = quotas.quota_error("100% used by 50% Hosting", "name", quota="users", used=1,
                               limit=1, requested=1)
    assert error.message_dict == {"name": ["100% used by 50% Hosting"]}


def test_a_foreign_or_missing_id_is_404_and_a_malformed_one_400(demo):
    client = api_client(PRIMARY)
    assert client.get("/api/v1/users/999999/").status_code == 404
    assert client.get("/api/v1/users/abc/").status_code == 404
    assert client.get("/api/v1/users/", {"organization": "abc"}).status_code == 400
    assert client.get("/api/v1/users/", {"organization": "9" * 30}).status_code == 400
    assert client.get("/api/v1/users/", {"organization": 999999}).status_code == 404


def test_an_unknown_method_is_405(demo):
    response = api_client(PRIMARY).put(f"/api/v1/organizations/{demo.pk}/", {})
    assert response.status_code == 405


# --- Rate limits ------------------------------------------------------------------------


def test_each_token_has_its_own_rate_limit(demo, settings):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"login": "3/minute"}}
    first, second = api_client(PRIMARY), api_client(token=token_of(PRIMARY, "second"))
    assert [first.get("/api/v1/me/").status_code for _ in range(3)] == [200] * 3
    refused = first.get("/api/v1/me/")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused.json()["code"] == "throttled"
    assert second.get("/api/v1/me/").status_code == 200
    cache.clear()


# --- Pagination ---------------------------------------------------------------------------


def test_lists_page_by_cursor_with_a_capped_size(demo, monkeypatch):
    for n in range(5):
        services.create_user(demo, display_name=f"Page {n}", local_part=f"page{n}",
                             domain="contoso.example", password=NEW_PASSWORD)
    client = api_client(PRIMARY)
    seen, url = [], "/api/v1/users/?limit=3"
    while url:
        page = client.get(url).json()
        assert len(page["results"]) <= 3
        seen += [u["id"] for u in page["results"]]
        url = page["next"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 8
    capped = client.get("/api/v1/users/?limit=100000").json()
    assert len(capped["results"]) == 8  # at most 200
    from panel.api.pagination import MAX_LIMIT, CursorPagination

    assert MAX_LIMIT == 200
    # The cap holds whatever is asked: with a cap below the rows there are, it shows.
    monkeypatch.setattr(CursorPagination, "max_page_size", 3)
    assert len(client.get("/api/v1/users/?limit=100000").json()["results"]) == 3


# --- Schema and docs ---------------------------------------------------------------------


def test_the_schema_is_openapi_3_and_names_every_endpoint(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/organizations/", "/api/v1/organizations/{id}/suspend/",
            "/api/v1/events/", "/api/v1/tokens/"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["token"]["scheme"] == "bearer"


def test_the_docs_page_uses_only_the_panels_own_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in page and "style=" not in page and "<style" not in page
    assert "cdn" not in page.lower()
    for source in ("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
                   "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css", "api/docs.css"):
        assert f"/static/{source}" in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


def test_the_docs_static_files_are_served(client):
    from django.contrib.staticfiles import finders

    for source in ("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
                   "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
                   "api/docs.css"):
        assert finders.find(source), source


def test_a_session_can_use_the_api_like_the_panel(demo):
    browser = Client()
    from django.contrib.auth import get_user_model

    browser.force_login(get_user_model().objects.get(username=RESELLER))
    assert browser.get("/api/v1/organizations/").status_code == 200
