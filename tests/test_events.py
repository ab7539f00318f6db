"""Events are a billing record: appended, never edited, never removed."""

import pytest
from django.db import connection, transaction
from django.db.utils import InternalError

from provisioning import constants as c
from provisioning.models import Event
from provisioning.models.events import AppendOnlyError


def test_an_event_cannot_be_edited_or_deleted_through_the_orm(demo):
    event = Event.objects.filter(customer=demo).first()
    event.data = {"tampered": True}
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        Event.objects.filter(pk=event.pk).update(data={})
    with pytest.raises(AppendOnlyError):
        Event.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert "tampered" not in event.data


def test_postgresql_refuses_raw_updates_and_deletes(demo):
    event = Event.objects.filter(customer=demo, event_type=c.CREATED).get()
    for sql in ("UPDATE provisioning_event SET data = '{}' WHERE id = %s",
                "DELETE FROM provisioning_event WHERE id = %s"):
        with pytest.raises(InternalError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [event.pk])
    assert Event.objects.filter(pk=event.pk, data__name="Contoso").exists()


def test_new_events_can_be_appended(demo):
    before = Event.objects.count()
    Event.objects.create(customer=demo, event_type_id=c.EVENT_DISABLED)
    assert Event.objects.count() == before + 1
