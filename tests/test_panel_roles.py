"""Who may open which panel page: the allowed/denied matrix for every page and role."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from provisioning import services
from provisioning.models import Account, Operation, Role
from tests.support.views import (
    ABOVE,
    ADMINS,
    EVERYONE,
    FULL,
    HELPDESK,
    HELPERS,
    MANAGER,
    MANAGERS,
    PRIMARY,
    READ_ONLY,
)

# page name: (the ids it needs, the logins that may open it)
MATRIX = {
    "organizations": ((), EVERYONE),
    "sign_up": ((), ABOVE),
    "hosting_spaces": ((), ABOVE),
    "events": ((), EVERYONE),
    "organization": (("org",), EVERYONE),
    "organization_suspend": (("org",), ABOVE),
    "organization_resume": (("org",), ABOVE),
    "organization_hosting_plan": (("org",), ABOVE),
    "organization_delete": (("org",), ABOVE),
    "users": (("org",), EVERYONE),
    "user_create": (("org",), MANAGERS),
    "user_import": (("org",), MANAGERS),
    "user_import_example": (("org",), MANAGERS),
    "user": (("org", "user"), EVERYONE),
    "user_edit": (("org", "user"), MANAGERS),
    "user_password": (("org", "user"), HELPERS),
    "user_plan": (("org", "user"), MANAGERS),
    "user_enable": (("org", "user"), HELPERS),
    "user_disable": (("org", "user"), HELPERS),
    "user_delete": (("org", "user"), MANAGERS),
    "user_addresses": (("org", "user"), MANAGERS),
    "user_forwarding": (("org", "user"), MANAGERS),
    "user_mailbox_disconnect": (("org", "user"), MANAGERS),
    "user_mailbox_reconnect": (("org", "user"), MANAGERS),
    "domains": (("org",), EVERYONE),
    "contacts": (("org",), EVERYONE),
    "contact_create": (("org",), MANAGERS),
    "contact_delete": (("org", "contact"), MANAGERS),
    "peers": (("org",), ADMINS),
    "peer_create": (("org",), ADMINS),
    "peer_edit": (("org", "peer"), ADMINS),
    "peer_password": (("org", "peer"), ADMINS),
    "peer_remove": (("org", "peer"), ADMINS),
    "organization_events": (("org",), EVERYONE),
    "operations": (("org",), EVERYONE),
    "operation_retry": (("org", "operation"), MANAGERS),
    "changelog": (("org",), ADMINS),
    "api_tokens": ((), EVERYONE),
}
# Reached only through an import or a token of one's own (see test_csv_import.py,
# test_api_tokens.py), or not a page.
NOT_IN_MATRIX = {"user_import_progress", "user_import_status", "api_token_revoke",
                 "home", "login", "logout",
                 "password_reset", "password_reset_done", "password_reset_confirm",
                 "password_reset_complete", "two_factor_setup", "two_factor_verify",
                 "two_factor_recovery_codes",
                 "no_account", "healthz", "readyz", "metrics", "preferences"}


def test_the_matrix_covers_every_panel_page():
    from tests.support.views import panel_patterns

    names = {name for name, _ in panel_patterns()}
    assert names - NOT_IN_MATRIX == set(MATRIX)


@pytest.fixture
def page_ids(demo, contoso_peers):
    user = demo.children.filter(upn="megan@contoso.example").get()
    operation = Operation.objects.filter(customer=user).first()
    Operation.objects.filter(pk=operation.pk).update(state="failed", last_error="timeout")
    # The helpdesk peer: every administrator outranks it, so it is the target of peer pages.
    peer = Account.objects.get(user__username=HELPDESK)
    contact = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    return {"org": demo.pk, "user": user.pk, "peer": peer.pk, "operation": operation.pk,
            "contact": contact.pk}


def url_of(name, needs, ids):
    return reverse(name, args=[ids[n] for n in needs])


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_role_is_allowed_or_denied(client, page_ids, name):
    needs, allowed = MATRIX[name]
    url = url_of(name, needs, page_ids)
    for login in sorted(EVERYONE):
        client.force_login(get_user_model().objects.get(username=login))
        response = client.get(url)
        expected = 200 if login in allowed else 403
        assert response.status_code == expected, f"{login} GET {url}"


def test_helpdesk_resets_a_password_but_cannot_create_users(client, page_ids):
    client.force_login(get_user_model().objects.get(username=HELPDESK))
    response = client.post(url_of("user_password", ("org", "user"), page_ids),
                           {"password": "Fresh-Password-4711", "confirm": "Fresh-Password-4711"})
    assert response.status_code == 302
    assert Operation.objects.filter(action="reset_password", customer_id=page_ids["user"],
                                    requested_by__username=HELPDESK).exists()
    response = client.post(url_of("user_create", ("org",), page_ids), {
        "display_name": "Nope", "local_part": "nope", "domain": "contoso.example",
        "password": "Fresh-Password-4711"})
    assert response.status_code == 403


def test_read_only_peer_sees_no_action_buttons(client, page_ids):
    client.force_login(get_user_model().objects.get(username=READ_ONLY))
    page = client.get(url_of("user", ("org", "user"), page_ids)).content.decode()
    for action in ("Reset password", "Change plan", "Disable", "Delete"):
        assert action not in page


@pytest.mark.parametrize("login", [FULL, MANAGER, HELPDESK])
def test_a_peer_cannot_touch_the_primary_administrator(client, page_ids, login):
    primary = Account.objects.get(user__username=PRIMARY)
    client.force_login(get_user_model().objects.get(username=login))
    for name in ("peer_edit", "peer_password", "peer_remove"):
        url = reverse(name, args=[page_ids["org"], primary.pk])
        assert client.get(url).status_code == 403
        assert client.post(url, {"password": "Fresh-Password-4711",
                                 "confirm": "Fresh-Password-4711",
                                 "role": Role.PEER_READ_ONLY}).status_code == 403
    primary.refresh_from_db()
    assert primary.role == Role.PRIMARY_ADMIN
    assert primary.user.check_password("Demo-Panel-2026!")
    assert primary.user.is_active
