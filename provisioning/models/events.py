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


def scope_of(customer_id, customer_type_id, parent_id):
    """Whose pages list the event: a business user's organization, else the customer itself
    (as an Operation's scope)."""
    return parent_id if customer_type_id == c.BUSINESS_USER else customer_id


class EventQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        missing = {e.customer_id for e in objs if e.scope_id is None}
        if missing:
            from .customers import Customer

            scopes = {pk: scope_of(pk, kind, parent) for pk, kind, parent in
                      Customer.objects.filter(pk__in=missing).values_list(
                          "pk", "customer_type_id", "parent_id")}
            for event in objs:
                if event.scope_id is None:
                    event.scope_id = scopes[event.customer_id]
        return super().bulk_create(objs, *args, **kwargs)

    def update(self, **kwargs):
        raise AppendOnlyError("Events are append-only and cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Events are append-only and cannot be deleted.")


class Event(models.Model):
    """Something that happened to a customer, possibly billable."""

    customer = models.ForeignKey("provisioning.Customer", on_delete=models.PROTECT,
                                 related_name="events")
    # The organization (or reseller) whose pages list it, kept on the row so that an
    # organization's latest events are one index range, whatever the size of the database.
    scope = models.ForeignKey("provisioning.Customer", on_delete=models.PROTECT,
                              related_name="+", null=True, editable=False)
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="+")
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                              blank=True, related_name="+")
    data = models.JSONField(default=dict, blank=True)

    objects = EventQuerySet.as_manager()
    # provisioning.scoping.restrict narrows events by their scope.
    SCOPED_BY_ORGANIZATION = True

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        indexes = [models.Index(fields=["customer", "-occurred_at"]),
                   models.Index(fields=["event_type", "-occurred_at"]),
                   models.Index(fields=["scope", "-occurred_at", "-id"],
                                name="event_scope_latest")]

    def __str__(self):
        return f"{self.event_type_id} {self.customer} at {self.occurred_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Events are append-only and cannot be updated.")
        from ..feed import sequence_after_commit

        if self.scope_id is None:
            customer = self.customer
            self.scope_id = scope_of(customer.pk, customer.customer_type_id, customer.parent_id)
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
