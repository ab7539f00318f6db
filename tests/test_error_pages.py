"""What a visitor sees when a page is refused, missing or broken: the panel's own pages, in
its layout; a refusal logged once, on one line; a 500 page that needs neither the database
nor the request's user."""

import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import reverse

from panel.views.errors import server_error


@pytest.fixture
def helpdesk(client, demo):
    client.force_login(get_user_model().objects.get(username="contoso-helpdesk"))
    return client


def test_a_refused_page_is_styled_with_the_accounts_navigation(helpdesk, demo):
    response = helpdesk.get(reverse("user_create", args=[demo.pk]))
    assert response.status_code == 403
    page = response.content.decode()
    assert "You cannot open this page" in page
    assert 'class="sidebar"' in page and "panel/panel.css" in page
    assert reverse("users", args=[demo.pk]) in page  # the helpdesk's own navigation
    assert "Your role does not allow user.create." in page


def test_a_missing_page_is_styled_for_visitors_and_accounts(client, helpdesk, demo):
    response = helpdesk.get("/organizations/999999/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "There is no such page" in page and 'class="sidebar"' in page
    helpdesk.logout()
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "There is no such page" in page and 'class="auth-card"' in page
    assert 'class="sidebar"' not in page


def test_a_login_without_a_panel_account_gets_the_refusal_on_the_card(client, db):
    user = get_user_model().objects.create_user("nobody", password="Demo-Panel-2026!")
    client.force_login(user)
    response = client.get(reverse("organizations"))
    assert response.status_code == 403
    assert 'class="auth-card"' in response.content.decode()


def test_the_500_page_needs_no_database_and_no_user():
    """No `db` fixture: pytest-django refuses any query. The request has no user."""
    request = RequestFactory().get("/")
    assert not hasattr(request, "user")
    response = server_error(request)
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page and "panel/panel.css" in page
    assert "Hosted Organizations" in page


def handlers_that_print(record):
    """The handlers, up the logger tree, that would write `record` out (pytest's capture
    handlers left aside)."""
    logger, found = logging.getLogger(record.name), []
    while logger is not None:
        for handler in logger.handlers:
            if type(handler).__module__.startswith("_pytest"):
                continue
            if record.levelno >= handler.level and handler.filter(record):
                found.append(handler)
        logger = logger.parent if logger.propagate else None
    return found


def test_a_refusal_is_logged_once_on_one_line(helpdesk, demo, caplog):
    url = reverse("user_create", args=[demo.pk])
    with caplog.at_level(logging.INFO):
        assert helpdesk.get(url).status_code == 403
    refused = [r for r in caplog.records if r.name == "django.request"]
    assert len(refused) == 1
    record = refused[0]
    assert record.getMessage() == f"403 Forbidden: {url} (contoso-helpdesk)"
    assert record.exc_info is None and record.exc_text is None
    assert len(handlers_that_print(record)) == 1
    # The 404 stays Django's one-line warning.
    caplog.clear()
    helpdesk.get("/organizations/999999/")
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == [
        "Not Found: /organizations/999999/"]
