"""The hosting spaces list reads spaces by their own name and status (issue #10): a deleted
organization's space is Deleted with it, and each role sees only its own spaces."""

from django.contrib.auth import get_user_model
from django.urls import reverse

from provisioning import constants as c
from provisioning import services
from provisioning.models import HostingSpace


def spaces_page(client, username):
    client.force_login(get_user_model().objects.get(username=username))
    return client.get(reverse("hosting_spaces")).content.decode()


def link(org):
    return f'<a href="{reverse("organization", args=[org.pk])}">{org.name}</a>'


def test_a_deleted_organizations_space_is_deleted_with_it_and_leaves_the_list(
        client, demo, other_tenant):
    space = demo.hosting_spaces.get()
    assert link(demo) in spaces_page(client, "reseller")
    services.delete_customer(demo)
    space.refresh_from_db()
    assert space.status_id == c.DELETED
    page = spaces_page(client, "reseller")
    assert link(demo) not in page
    # The reseller's own space is still listed, and another reseller's never was.
    assert demo.parent.name in page
    assert link(other_tenant["organization"]) not in page


def test_each_role_sees_its_own_spaces_in_name_order(client, demo, other_tenant):
    everyone = spaces_page(client, "provider")
    organizations = [s.customer for s in HostingSpace.objects.exclude(
        status_id=c.DELETED).select_related("customer").order_by("name", "pk")[:10]
        if s.customer.is_organization]
    assert len(organizations) >= 2
    positions = [everyone.index(link(org)) for org in organizations]
    assert positions == sorted(positions)
    reseller = spaces_page(client, "reseller")
    assert link(other_tenant["organization"]) not in reseller
    assert link(demo) in reseller
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    assert client.get(reverse("hosting_spaces")).status_code in (403, 404)
