"""The panel in English or German: the browser's Accept-Language, or the account's own
choice on the Preferences page (kept in the session from sign-in on). Dates follow the
language; English keeps ISO dates."""

import pytest
from django.urls import reverse
from django.utils import translation

from provisioning.models import Account
from tests.support.views import PASSWORD

NAVIGATION_DE = ["Übersicht", "Benutzer", "Domains", "Ereignisse", "Vorgänge", "Abmelden"]


def sign_in(client, login="contoso-admin", **headers):
    response = client.post(reverse("login"), {"username": login, "password": PASSWORD},
                           **headers)
    assert response.status_code == 302


def test_english_is_the_default(client, demo):
    sign_in(client)
    page = client.get(reverse("organization", args=[demo.pk])).content.decode()
    assert '<html lang="en">' in page and "Dashboard" in page and "Sign out" in page


def test_the_browser_asks_for_german(client, demo):
    assert b"Anmelden" in client.get("/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9").content
    sign_in(client, HTTP_ACCEPT_LANGUAGE="de")
    response = client.get(reverse("users", args=[demo.pk]), HTTP_ACCEPT_LANGUAGE="de")
    page = response.content.decode()
    assert response["Content-Language"] == "de" and '<html lang="de">' in page
    for word in NAVIGATION_DE + ["Anzeigename", "Neuer Benutzer"]:
        assert word in page, word


def test_the_account_chooses_german_on_any_browser(client, demo):
    sign_in(client)
    response = client.post(reverse("preferences"), {"language": "de"})
    assert response.status_code == 302
    assert Account.objects.get(user__username="contoso-admin").language == "de"
    page = client.get(reverse("organization", args=[demo.pk]),
                      HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Übersicht" in page and "Dashboard" not in page
    # A new session on another device: the sign-in brings the account's language along.
    client.logout()
    sign_in(client)
    page = client.get(reverse("users", args=[demo.pk]), HTTP_ACCEPT_LANGUAGE="en").content
    assert b"Neuer Benutzer" in page
    # Back to the browser's language.
    client.post(reverse("preferences"), {"language": ""})
    assert b"New user" in client.get(reverse("users", args=[demo.pk]),
                                     HTTP_ACCEPT_LANGUAGE="en").content


def test_messages_and_form_errors_follow_the_language(client, demo):
    sign_in(client, HTTP_ACCEPT_LANGUAGE="de")
    response = client.post(reverse("user_create", args=[demo.pk]), {},
                           HTTP_ACCEPT_LANGUAGE="de")
    page = response.content.decode()
    assert "Anfangspasswort" in page and "Dieses Feld ist zwingend erforderlich." in page


@pytest.mark.parametrize(("language", "expected"), [("en", "2026-04-30"),
                                                    ("de", "30.04.2026")])
def test_dates_follow_the_language(language, expected):
    from datetime import date

    from django.template import Context, Template

    with translation.override(language):
        rendered = Template('{{ day|date:"SHORT_DATE_FORMAT" }}').render(
            Context({"day": date(2026, 4, 30)}))
    assert rendered == expected


def test_every_german_message_is_translated():
    """The .po file is committed with its compiled .mo (no msgfmt needed to run the panel):
    no entry left empty or fuzzy, and the .mo holds every one of them."""
    import gettext
    from pathlib import Path

    po = Path("locale/de/LC_MESSAGES/django.po").read_text()
    assert "#, fuzzy" not in po
    assert 'msgstr ""\n\n' not in po.split("\n\n", 1)[1]
    with open("locale/de/LC_MESSAGES/django.mo", "rb") as mo:
        catalog = gettext.GNUTranslations(mo)._catalog
    msgids = {key[0] if isinstance(key, tuple) else key for key in catalog} - {""}
    assert len(msgids) == po.count("\nmsgid ") - 1
