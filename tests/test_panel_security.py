"""CSRF stays on for every form, and what customers type is escaped on every page."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from provisioning import services
from tests.support.views import NEW_PASSWORD

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def csrf_client(demo):
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    return client


def test_a_post_without_token_is_refused(csrf_client, demo):
    megan = demo.children.get(upn="megan@contoso.example")
    for url in (reverse("user_create", args=[demo.pk]),
                reverse("user_disable", args=[demo.pk, megan.pk]),
                reverse("user_password", args=[demo.pk, megan.pk]),
                reverse("logout")):
        assert csrf_client.post(url, {"password": NEW_PASSWORD}).status_code == 403, url
    megan.refresh_from_db()
    assert megan.status_id == "Enabled"


def test_the_sign_in_form_needs_its_token(demo):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "contoso-admin",
                                              "password": "Demo-Panel-2026!"})
    assert response.status_code == 403


def test_a_users_name_is_escaped_everywhere(client, demo):
    user = services.create_user(demo, display_name=SCRIPT, local_part="xss",
                                domain="contoso.example", password=NEW_PASSWORD)
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    for url in (reverse("users", args=[demo.pk]), reverse("user", args=[demo.pk, user.pk]),
                reverse("organization_events", args=[demo.pk]),
                reverse("changelog", args=[demo.pk]),
                reverse("user_disable", args=[demo.pk, user.pk])):
        body = client.get(url).content.decode()
        assert SCRIPT not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url
    dashboard = client.get(reverse("organization", args=[demo.pk])).content.decode()
    assert "<script>" not in dashboard


def test_security_headers(client, demo):
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    response = client.get(reverse("users", args=[demo.pk]))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
