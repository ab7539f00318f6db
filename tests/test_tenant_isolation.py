"""Another tenant's ids answer 404 on every panel URL, and lists never show its rows.

The URLs are read from the resolver, so a page added later is attacked without editing
this file."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from provisioning import scoping
from provisioning.models import Customer, Event
from tests.support.views import (
    ID_KWARGS,
    foreign_kwargs,
    mixed_kwargs,
    panel_patterns,
    route_kwargs,
)

PATTERNS = [(name, route) for name, route in panel_patterns() if route_kwargs(route)]
# Its kwargs are a signed token, not an object id: a forged one is refused by the token check.
TOKEN_PATTERNS = {"password_reset_confirm"}
PATTERNS = [(name, route) for name, route in PATTERNS if name not in TOKEN_PATTERNS]


def login(client, username):
    client.force_login(get_user_model().objects.get(username=username))
    return client


def test_every_pattern_with_an_id_is_attacked():
    for name, route in PATTERNS:
        assert set(route_kwargs(route)) <= set(ID_KWARGS), f"{name}: teach foreign_kwargs"
    assert {"organization", "user", "peer_edit", "operation_retry",
            "user_import_status"} <= {name for name, _ in PATTERNS}


@pytest.mark.parametrize("name,route", PATTERNS, ids=[name for name, _ in PATTERNS])
@pytest.mark.parametrize("login_name", ["contoso-admin", "reseller"])
def test_foreign_ids_answer_404(client, other_tenant, name, route, login_name):
    login(client, login_name)
    url = reverse(name, kwargs=foreign_kwargs(route, None, other_tenant))
    assert client.get(url).status_code == 404, url
    assert client.post(url, {}).status_code == 404, url


@pytest.mark.parametrize("name,route", [(n, r) for n, r in PATTERNS if len(route_kwargs(r)) > 1],
                         ids=[n for n, r in PATTERNS if len(route_kwargs(r)) > 1])
def test_a_foreign_object_under_ones_own_organization_answers_404(client, demo, other_tenant,
                                                                  name, route):
    login(client, "contoso-admin")
    url = reverse(name, kwargs=mixed_kwargs(route, demo, other_tenant))
    assert client.get(url).status_code == 404, url
    assert client.post(url, {}).status_code == 404, url


def test_the_other_reseller_cannot_open_contoso(client, demo, other_tenant):
    login(client, "litware-reseller")
    assert client.get(reverse("organization", args=[demo.pk])).status_code == 404
    assert client.get(reverse("users", args=[demo.pk])).status_code == 404


def test_lists_show_only_the_own_subtree(client, demo, other_tenant):
    login(client, "reseller")
    page = client.get(reverse("organizations")).content.decode()
    assert "Contoso" in page and "Fabrikam" not in page
    events = client.get(reverse("events")).content.decode()
    assert "Fabrikam" not in events
    csv = b"".join(client.get(reverse("events") + "?export=csv").streaming_content).decode()
    assert "Contoso" in csv and "Fabrikam" not in csv
    spaces = client.get(reverse("hosting_spaces")).content.decode()
    assert "Fabrikam" not in spaces


def test_scoping_of_each_role(demo, other_tenant):
    User = get_user_model()
    fabrikam = other_tenant["organization"]
    provider = scoping.visible_customers(User.objects.get(username="provider"))
    assert provider.filter(pk=fabrikam.pk).exists()
    reseller = scoping.visible_customers(User.objects.get(username="reseller"))
    assert reseller.filter(pk=demo.pk).exists() and not reseller.filter(pk=fabrikam.pk).exists()
    admin = User.objects.get(username="contoso-admin")
    visible = scoping.visible_customers(admin)
    assert set(visible) == {demo, *Customer.objects.filter(parent=demo)}
    assert not scoping.restrict(Event.objects.all(), admin).filter(customer=fabrikam).exists()


def test_form_choices_are_scoped(client, demo, other_tenant):
    login(client, "contoso-admin")
    page = client.get(reverse("user_create", args=[demo.pk])).content.decode()
    assert "contoso.example" in page and "fabrikam.example" not in page
    login(client, "reseller")
    page = client.get(reverse("sign_up")).content.decode()
    assert "Business Basic" in page
    assert "Reseller Standard" not in page  # a reseller plan is not sold to organizations
    assert "Litware" not in page
