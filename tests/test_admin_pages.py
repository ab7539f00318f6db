"""The provider's admin: every list, add and change page renders, secrets stay write-only,
and the connection test reports the server's answer in plain words."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from provisioning.models import Event
from servers.models import Service

MODELS = [model for model in admin.site._registry]


@pytest.fixture
def provider_client(client, demo):
    client.force_login(get_user_model().objects.get(username="provider"))
    return client


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_every_admin_list_add_and_change_page_renders(provider_client, model):
    opts = model._meta
    listing = provider_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert listing.status_code == 200
    add = provider_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    model_admin = admin.site._registry[model]
    expected = 200 if model_admin.has_add_permission(add.wsgi_request) else 403
    assert add.status_code == expected
    obj = model._default_manager.first()
    if obj is not None:
        change = provider_client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        assert change.status_code == 200


def test_admin_search_and_filters_work(provider_client):
    url = reverse("admin:provisioning_customer_changelist")
    response = provider_client.get(url, {"q": "megan"})
    assert response.status_code == 200
    assert b"megan@contoso.example" in response.content
    assert b"alex@contoso.example" not in response.content
    response = provider_client.get(url, {"customer_type__name__exact": "BusinessOrganization"})
    assert b"Contoso" in response.content and b"megan@contoso.example" not in response.content


def test_events_are_read_only_in_the_admin(provider_client, demo):
    event = Event.objects.get(customer=demo, event_type="Created")
    url = reverse("admin:provisioning_event_change", args=[event.pk])
    page = provider_client.get(url)
    assert b'name="_save"' not in page.content
    provider_client.post(url, {"data": "{}"})
    delete = provider_client.post(reverse("admin:provisioning_event_delete", args=[event.pk]),
                                  {"post": "yes"})
    assert delete.status_code == 403
    event.refresh_from_db()
    assert event.data.get("name") == "Contoso"


def test_service_secrets_are_write_only(provider_client):
    service = Service.objects.get(kind="active_directory")
    url = reverse("admin:servers_service_change", args=[service.pk])
    page = provider_client.get(url)
    assert b"change-me" not in page.content
    # Saving without a new password keeps the stored one; a new one replaces it.
    data = {f: getattr(service, f) for f in (
        "kind", "name", "ldap_host", "ldap_port", "base_dn", "root_ou", "bind_dn",
        "winrm_transport", "ca_certificate", "winrm_endpoint", "exchange_username",
        "default_database")}
    data.update(server=service.server_id, enabled="on", use_ssl="on", verify_ca="on",
                bind_password="", exchange_password="")
    assert provider_client.post(url, data).status_code == 302
    service.refresh_from_db()
    assert service.bind_password == "change-me"
    data["bind_password"] = "rotated-Secret-1"
    assert provider_client.post(url, data).status_code == 302
    service.refresh_from_db()
    assert service.bind_password == "rotated-Secret-1"
    # Encrypted at rest: the column does not hold the clear text.
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT bind_password FROM servers_service WHERE id = %s", [service.pk])
        assert "rotated" not in cursor.fetchone()[0]


def test_test_connection_reports_the_failure_in_plain_words(provider_client):
    service = Service.objects.get(kind="active_directory")
    service.ldap_host, service.ldap_port = "127.0.0.1", 1  # nothing listens there
    service.save()
    response = provider_client.post(
        reverse("admin:servers_service_changelist"),
        {"action": "test_connection_action", "_selected_action": [service.pk]}, follow=True)
    text = " ".join(str(m) for m in response.context["messages"])
    assert "Connection failed: The directory server cannot be reached" in text
    assert "change-me" not in text
