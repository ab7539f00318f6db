from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import constants as c
from .customers import ReferenceType

#: How a person reads each event type of the seed; the name stays the key (the API, the
#: billing feed and CSV exports give the name). A type added later shows its name.
EVENT_TYPE_LABELS = {
    c.PLAN_CHANGE: _("Plan change"),
    c.ASSET_ADDED: _("Domain added"),
    c.PLAN_SIGNUP: _("Plan sign-up"),
    c.EXCH_SERVICE_ADDED: _("Exchange service added"),
    c.ADDRESS_LISTS_CREATED: _("Address lists created"),
    c.PUBLIC_FOLDER_CREATED: _("Public folder created"),
    c.EVENT_DISABLED: _("Disabled"),
    c.EVENT_DELETED: _("Deleted"),
    c.CREATED: _("Created"),
}


def event_type_label(name):
    return EVENT_TYPE_LABELS.get(name, name)


class EventType(ReferenceType):
    @property
    def label(self):
        return event_type_label(self.name)


class AppendOnlyError(Exception):
    """Events are a billing record: once written they are never edited or removed."""


class EventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Events are append-only and cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Events are append-only and cannot be deleted.")


class Event(models.Model):
    """Something that happened to a customer, possibly billable."""

    customer = models.ForeignKey("provisioning.Customer", on_delete=models.PROTECT,
                                 related_name="events")
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="+")
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                              blank=True, related_name="+")
    data = models.JSONField(default=dict, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        indexes = [models.Index(fields=["customer", "-occurred_at"]),
                   models.Index(fields=["event_type", "-occurred_at"])]

    def __str__(self):
        return f"{self.event_type_id} {self.customer} at {self.occurred_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Events are append-only and cannot be updated.")
        from ..feed import sequence_after_commit

        # The event and its pending place in the billing feed (provisioning.feed), together.
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, **kwargs)
            EventSequence.objects.create(event=self)
        sequence_after_commit()

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Events are append-only and cannot be deleted.")

    @property
    def event_type_label(self):
        """The type as a person reads it, in the active language (no query)."""
        return event_type_label(self.event_type_id)


class EventSequence(models.Model):
    """An event's place in the billing feed, in commit order (see provisioning.feed).

    Written with the event, `sequence` empty; the feed's sequencer numbers it once the
    event's transaction has committed. Events themselves are append-only, so the number
    lives here."""

    event = models.OneToOneField(Event, on_delete=models.PROTECT, primary_key=True,
                                 related_name="feed_entry")
    sequence = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        indexes = [models.Index(fields=["event"], condition=models.Q(sequence__isnull=True),
                                name="event_sequence_pending")]

    def __str__(self):
        return f"#{self.sequence} event {self.event_id}"
