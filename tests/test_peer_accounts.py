"""Peer accounts: an organization's administrators delegate with roles, never upward."""

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from provisioning import accounts, scoping
from provisioning.models import Account, Role
from tests.support.views import ADMINS, NEW_PASSWORD, ViewTestCases, login, make_peer

User = get_user_model()


class TestPeerPages(ViewTestCases.ListViewTestMixin, ViewTestCases.CreateViewTestMixin,
                    ViewTestCases.EditViewTestMixin, ViewTestCases.DeleteViewTestMixin):
    # A panel account has no page of its own: its row in the list is its detail.
    list_url, create_url = "peers", "peer_create"
    edit_url, delete_url, object_kwarg = "peer_edit", "peer_remove", "account_id"
    view_logins = create_logins = edit_logins = delete_logins = ADMINS
    create_data = {"username": "contoso-ops", "email": "ops@contoso.example",
                   "role": Role.PEER_USER_MANAGER, "password": NEW_PASSWORD}
    created = {"user__username": "contoso-ops", "role": Role.PEER_USER_MANAGER}
    edit_data = {"role": Role.PEER_HELPDESK, "email": "target@contoso.example"}
    edited = {"role": Role.PEER_HELPDESK, "user__email": "target@contoso.example"}

    def live_objects(self, organization):
        return accounts.peers_of(organization)

    def make_object(self, organization):
        # Read-only ranks below every administrator, so each allowed login outranks it.
        return make_peer(organization, "contoso-target", Role.PEER_READ_ONLY).account

    def foreign_object(self, other_tenant):
        return other_tenant["account"]

    def text_of(self, obj):
        return obj.user.username

    def test_primary_admin_creates_edits_resets_and_removes_a_peer(self, client, demo):
        login(client, "contoso-admin")
        response = client.post(reverse("peer_create", args=[demo.pk]), {
            "username": "contoso-ops", "email": "ops@contoso.example",
            "role": Role.PEER_USER_MANAGER, "password": NEW_PASSWORD})
        assert response.status_code == 302
        peer = Account.objects.get(user__username="contoso-ops")
        assert (peer.customer, peer.role) == (demo, Role.PEER_USER_MANAGER)
        page = client.get(reverse("peers", args=[demo.pk])).content.decode()
        assert "contoso-ops" in page and reverse("peer_edit", args=[demo.pk, peer.pk]) in page
        # The flash message names the role, not a method.
        assert "contoso-ops can now sign in as Peer: user manager." in page

        client.post(reverse("peer_edit", args=[demo.pk, peer.pk]),
                    {"role": Role.PEER_HELPDESK, "email": "ops@contoso.example"})
        client.post(reverse("peer_password", args=[demo.pk, peer.pk]),
                    {"password": "Other-Password-123", "confirm": "Other-Password-123"})
        peer.refresh_from_db()
        assert peer.role == Role.PEER_HELPDESK
        assert peer.user.check_password("Other-Password-123")

        assert b"Remove the panel account contoso-ops?" in client.get(
            reverse("peer_remove", args=[demo.pk, peer.pk])).content
        client.post(reverse("peer_remove", args=[demo.pk, peer.pk]), follow=True)
        peer.user.refresh_from_db()
        assert not peer.user.is_active
        assert "contoso-ops" not in client.get(reverse("peers", args=[demo.pk])).content.decode()


def test_roles_offered_are_below_ones_own(contoso_peers):
    full = contoso_peers[Role.PEER_FULL_ADMIN]
    assert Role.PEER_FULL_ADMIN not in scoping.assignable_roles(full)
    assert set(scoping.assignable_roles(full)) == {Role.PEER_USER_MANAGER, Role.PEER_HELPDESK,
                                                   Role.PEER_READ_ONLY}
    assert Role.PRIMARY_ADMIN not in scoping.assignable_roles(
        User.objects.get(username="contoso-admin"))


def test_a_full_admin_peer_cannot_create_its_equal(client, demo, contoso_peers):
    login(client, "contoso-peer-full-admin")
    response = client.post(reverse("peer_create", args=[demo.pk]), {
        "username": "equal", "role": Role.PEER_FULL_ADMIN, "password": NEW_PASSWORD})
    assert response.status_code == 200
    assert not User.objects.filter(username="equal").exists()


def test_the_service_refuses_upward_changes_whatever_the_view(demo, contoso_peers):
    full = contoso_peers[Role.PEER_FULL_ADMIN]
    primary = Account.objects.get(user__username="contoso-admin")
    with pytest.raises(PermissionDenied):
        accounts.set_peer_password(primary, NEW_PASSWORD, actor=full)
    with pytest.raises(PermissionDenied):
        accounts.update_peer(primary, role=Role.PEER_READ_ONLY, actor=full)
    with pytest.raises(PermissionDenied):
        accounts.remove_peer(full.account, actor=full)  # not even oneself
    with pytest.raises(ValidationError):
        accounts.create_peer(demo, username="boss", password=NEW_PASSWORD,
                             role=Role.PRIMARY_ADMIN, actor=User.objects.get(
                                 username="contoso-admin"))


def test_the_primary_admin_row_shows_no_actions_to_a_peer(client, demo, contoso_peers):
    login(client, "contoso-peer-full-admin")
    primary = Account.objects.get(user__username="contoso-admin")
    page = client.get(reverse("peers", args=[demo.pk])).content.decode()
    assert "contoso-admin" in page
    assert reverse("peer_edit", args=[demo.pk, primary.pk]) not in page


def login_entries(username):
    return LogEntry.objects.get_for_object(User.objects.get(username=username))


def test_editing_and_removing_a_login_is_in_the_change_log(client, demo):
    login(client, "contoso-admin")
    helpdesk = Account.objects.get(user__username="contoso-helpdesk")
    client.post(reverse("peer_edit", args=[demo.pk, helpdesk.pk]),
                {"role": Role.PEER_HELPDESK, "email": "desk@contoso.example"})
    client.post(reverse("peer_password", args=[demo.pk, helpdesk.pk]),
                {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    client.post(reverse("peer_remove", args=[demo.pk, helpdesk.pk]))
    changes = [(entry.actor.username, entry.changes_dict) for entry in
               login_entries("contoso-helpdesk").filter(actor__isnull=False).order_by("pk")]
    assert [(actor, sorted(fields)) for actor, fields in changes] == [
        ("contoso-admin", ["email"]), ("contoso-admin", ["is_active"])]
    assert changes[1][1]["is_active"] == ["True", "False"]
    # Neither the hash nor the sign-ins are logged.
    for entry in login_entries("contoso-admin").union(login_entries("contoso-helpdesk")):
        assert not {"password", "last_login"} & set(entry.changes_dict)
    page = client.get(reverse("changelog", args=[demo.pk])).content.decode()
    # The field's label, not its attribute name.
    assert "desk@contoso.example" in page and "<strong>Active</strong>" in page
    assert "is_active" not in page


def test_another_tenants_login_changes_never_appear_in_the_change_log(client, demo,
                                                                       other_tenant):
    fabrikam = other_tenant["organization"]
    # Its own browser: the flash messages of these changes must not follow to Contoso's page.
    fabrikam_client = login(Client(), "fabrikam-admin")
    fabrikam_client.post(reverse("peer_edit", args=[fabrikam.pk, other_tenant["account"].pk]),
                         {"role": Role.PEER_READ_ONLY, "email": "leak@fabrikam.example"})
    fabrikam_client.post(reverse("peer_remove", args=[fabrikam.pk,
                                                      other_tenant["account"].pk]))
    # The resellers' own logins are above any organization, so in none of their logs.
    for username in ("reseller", "litware-reseller"):
        user = User.objects.get(username=username)
        user.email = f"changed-{username}@panel.example"
        user.save()
    assert login_entries("fabrikam-helpdesk").filter(actor__username="fabrikam-admin").exists()

    own_logins = set(Account.objects.filter(customer=demo).values_list("user_id", flat=True))
    for username in ("contoso-admin", "reseller"):
        login(client, username)
        response = client.get(reverse("changelog", args=[demo.pk]))
        for entry in response.context["view"].entries():
            if entry.content_type.model_class() is User:
                assert entry.object_id in own_logins, (username, entry.object_repr)
        page = response.content.decode()
        for foreign in ("fabrikam", "leak@", "litware", "changed-reseller"):
            assert foreign not in page, (username, foreign)
    page = fabrikam_client.get(reverse("changelog", args=[fabrikam.pk])).content.decode()
    assert "leak@fabrikam.example" in page and "contoso" not in page


@pytest.mark.parametrize("posted_role", [None, Role.PEER_READ_ONLY])
def test_a_reseller_editing_the_primary_admin_never_demotes_it(client, demo, posted_role):
    """Issue #9, finding 5: posting only a new e-mail for the primary administrator made it
    read-only, and the guard that keeps a primary administrator then no longer applied."""
    primary = Account.objects.get(customer=demo, role=Role.PRIMARY_ADMIN)
    login(client, "reseller")
    data = {"email": "boss@contoso.example"}
    if posted_role:
        data["role"] = posted_role
    response = client.post(reverse("peer_edit", args=[demo.pk, primary.pk]), data)
    assert response.status_code == 302
    primary.refresh_from_db()
    assert primary.role == Role.PRIMARY_ADMIN
    assert primary.user.email == "boss@contoso.example"
    # The service refuses the demotion outright, whatever the form.
    reseller = User.objects.get(username="reseller")
    with pytest.raises(ValidationError):
        accounts.update_peer(primary, role=Role.PEER_READ_ONLY, actor=reseller)
    primary.refresh_from_db()
    assert primary.role == Role.PRIMARY_ADMIN
    with pytest.raises(PermissionDenied):
        accounts.remove_peer(primary, actor=reseller)
