"""An event carries the organization whose pages list it (its scope): an organization's
latest events are then one index range, whatever the size of the database (issue #10)."""

import pytest
from django.db import transaction
from django.urls import reverse

from provisioning import constants as c
from provisioning import services
from provisioning.models import Event
from tests.support.views import PRIMARY, login


def test_every_way_an_event_is_written_gives_it_its_scope(demo, other_tenant):
    user = demo.children.users().first()
    one = services.record_event(user, c.EVENT_DISABLED)
    assert one.scope_id == demo.pk
    assert services.record_event(demo, c.EVENT_DISABLED).scope_id == demo.pk
    reseller = demo.parent
    assert services.record_event(reseller, c.EVENT_DISABLED).scope_id == reseller.pk
    fabrikam, stranger = other_tenant["organization"], other_tenant["user"]
    many = services.record_events([user.pk, demo.pk, stranger.pk, fabrikam.pk],
                                  c.EVENT_DISABLED)
    assert [e.scope_id for e in many] == [demo.pk, demo.pk, fabrikam.pk, fabrikam.pk]
    # And what is stored is what the rule says, for every event there is.
    for event in Event.objects.select_related("customer"):
        customer = event.customer
        expected = customer.parent_id if customer.is_user else customer.pk
        assert event.scope_id == expected, event


def test_the_organizations_pages_list_its_users_events_and_no_others(
        client, demo, other_tenant):
    megan = demo.children.get(upn="megan@contoso.example")
    mine = services.record_event(megan, c.EVENT_DISABLED, marker="contoso-user")
    services.record_event(other_tenant["user"], c.EVENT_DISABLED, marker="other-tenant")
    services.record_event(other_tenant["organization"], c.EVENT_DISABLED, marker="other-org")
    login(client, PRIMARY)
    page = client.get(reverse("organization_events", args=[demo.pk])).content.decode()
    assert "marker: contoso-user" in page
    assert "other-tenant" not in page and "other-org" not in page
    dashboard = client.get(reverse("organization", args=[demo.pk]))
    assert mine in list(dashboard.context["events"])
    assert {e.scope_id for e in dashboard.context["events"]} == {demo.pk}


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_events_their_scope_despite_the_append_only_rule(demo):
    """Existing events (the seed's) get their scope in the migration that adds it, even
    though the database refuses every other change to an event."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = ("provisioning", "0015_mailbox_disconnected"), ("provisioning",
                                                                     "0016_event_scope")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM provisioning_event")
            existing = cursor.fetchone()[0]
        assert existing > 0
        executor = MigrationExecutor(connection)
        executor.migrate([after])
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert not Event.objects.filter(scope=None).exists()
    for event in Event.objects.select_related("customer"):
        customer = event.customer
        assert event.scope_id == (customer.parent_id if customer.is_user else customer.pk)
    if connection.vendor == "postgresql":
        # The rule is back: an event still cannot be changed.
        with pytest.raises(Exception, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("UPDATE provisioning_event SET data = '{}'")
