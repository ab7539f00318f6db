"""CSRF stays on for every form, and what customers type is escaped on every page."""

import os
import re
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse

from provisioning import services
from tests.support.views import NEW_PASSWORD

SCRIPT = "<script>alert(1)</script>"
# What the Content-Security-Policy refuses: a script without src, an event handler, a style
# block or attribute.
INLINE_CODE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+=|<style|\sstyle=")


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


def test_a_content_security_policy_allows_only_the_panels_own_files(client, demo):
    """Issue #9, finding 8: no Content-Security-Policy was sent."""
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    for name in ("organization", "users", "user_create", "operations", "user_import"):
        response = client.get(reverse(name, args=[demo.pk]))
        policy = dict(part.strip().split(" ", 1)
                      for part in response["Content-Security-Policy"].split(";"))
        assert policy["default-src"] == "'self'"
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'"
        # The policy allows no inline code, so the pages carry none.
        page = response.content.decode()
        assert "<script>" not in page and ' style="' not in page, name
        assert not INLINE_CODE.search(page), name


@override_settings(SECURE_SSL_REDIRECT=True)
def test_a_client_cannot_claim_https_unless_a_trusted_proxy_says_so(client):
    """Issue #9, finding 8: SECURE_PROXY_SSL_HEADER was always set although docker-compose
    publishes gunicorn directly, so any client could claim HTTPS with X-Forwarded-Proto."""
    response = client.get("/account/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_the_proxy_header_is_believed_only_with_trusted_proxy():
    code = ("import django, os; django.setup(); from django.conf import settings; "
            "print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))")
    for trusted, expected in (("false", "None"), ("true", "('HTTP_X_FORWARDED_PROTO', 'https')")):
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "panel.settings",
                 "TRUSTED_PROXY": trusted, "DATABASE_URL": "sqlite:///:memory:"})
        assert result.stdout.strip().splitlines()[-1] == expected


def test_no_template_carries_inline_script_or_style():
    """The Content-Security-Policy refuses inline code: a template that carried some would
    break silently in the browser."""
    from pathlib import Path

    offenders = [str(path) for path in Path("templates").rglob("*.html")
                 if ' style="' in path.read_text() or "<script>" in path.read_text()
                 or " onclick=" in path.read_text()]
    assert offenders == []
    assert [str(path) for path in Path("templates").rglob("*.html")
            if INLINE_CODE.search(path.read_text())] == []
