"""Rules every service shares: a suspended organization is read-only, events, the checks
of names and domains."""

from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import constants as c
from .. import names
from ..feed import sequence_after_commit
from ..models import (
    Customer,
    CustomerAsset,
    Event,
    EventSequence,
)
from ..models.customers import domain_in_use
from ..names import clean_field, name_key

SUSPENDED_MESSAGE = gettext_lazy("%(org)s is suspended: nothing can be changed until its "
                                 "reseller resumes it. Its data can still be viewed.")


def ensure_writable(organization):
    """The one rule for a suspended organization: every write for it is refused (reads stay
    available). Only its reseller's resume and delete go through."""
    organization = organization.organization or organization
    if organization.status_id == c.DISABLED:
        raise ValidationError(SUSPENDED_MESSAGE % {"org": organization.name},
                              code="suspended")
    if organization.is_deleted:
        raise ValidationError(_("%(org)s is deleted: nothing can be changed.")
                              % {"org": organization.name}, code="deleted")


def record_event(customer, event_type, actor=None, **data):
    return Event.objects.create(customer=customer, event_type_id=event_type,
                                actor=actor if getattr(actor, "pk", None) else None, data=data)


def record_events(customer_ids, event_type, actor=None, **data):
    """record_event for many customers in two statements, each event with its place in the
    billing feed (Event.save does the same one at a time)."""
    events = Event.objects.bulk_create(
        Event(customer_id=pk, event_type_id=event_type, data=data,
              actor=actor if getattr(actor, "pk", None) else None) for pk in customer_ids)
    EventSequence.objects.bulk_create(EventSequence(event=event) for event in events)
    sequence_after_commit()
    return events


@contextmanager
def _unique(field, message):
    """Save under a unique name key: when a concurrent request took the name after the
    check, it is refused with the check's own error on the service's own field — by the
    database's constraint, or by a user model's re-check (provisioning.models.logins) if
    the other request has committed by then."""
    try:
        with transaction.atomic():
            yield
    except (IntegrityError, ValidationError):
        raise ValidationError({field: message}) from None


def _check_domain(domain, errors, field):
    """The domain as stored (provisioning.names.DOMAIN), or None with the error recorded."""
    domain = clean_field(errors, field, names.DOMAIN, domain)
    if domain is not None and CustomerAsset.objects.filter(name_key=name_key(domain)).exists():
        errors[field] = domain_in_use(domain)
    return domain


def _locked(customer):
    return Customer.objects.select_for_update().get(pk=customer.pk)


def hosting_space_of(customer):
    """The customer's hosting space: its first live one, the one its quotas come from."""
    return customer.hosting_spaces.exclude(status_id=c.DELETED).order_by("pk").first()


def organization_domains(organization):
    """The names of the organization's live domains."""
    return set(organization.assets.exclude(status_id=c.DELETED).values_list("name", flat=True))
