"""Search and filter forms of the list pages (django-filter)."""

from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from provisioning import constants as c
from provisioning.models import (
    Customer,
    CustomerAsset,
    Event,
    EventType,
    MailContact,
    Operation,
    OperationState,
)
from provisioning.models.contacts import ContactStatus


class SearchFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label=_("Search"))
    search_fields = ()

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        query = Q()
        for field in self.search_fields:
            query |= Q(**{f"{field}__icontains": value})
        return queryset.filter(query)


STATUS_CHOICES = [(c.ENABLED, _("Enabled")), (c.DISABLED, _("Disabled"))]


class UserFilterSet(SearchFilterSet):
    # The list is already bounded to one organization by the indexed parent_id, so a
    # substring match only scans that organization's users.
    search_fields = ("name", "upn")
    status = django_filters.ChoiceFilter(field_name="status_id", choices=STATUS_CHOICES,
                                         empty_label=_("Any status"))

    class Meta:
        model = Customer
        fields = ["q", "status"]


class OrganizationFilterSet(SearchFilterSet):
    status = django_filters.ChoiceFilter(field_name="status_id", choices=STATUS_CHOICES,
                                         empty_label=_("Any status"))

    class Meta:
        model = Customer
        fields = ["q", "status"]

    def search(self, queryset, name, value):
        # A domain matches through a subquery of the assets, not a join: no duplicates,
        # no DISTINCT over every organization.
        value = value.strip()
        if not value:
            return queryset
        domains = CustomerAsset.objects.filter(name__icontains=value).values("customer_id")
        return queryset.filter(Q(name__icontains=value) | Q(pk__in=domains))


def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


class EventTypeField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.label


class EventTypeFilter(django_filters.ModelChoiceFilter):
    field_class = EventTypeField


class EventFilterSet(django_filters.FilterSet):
    event_type = EventTypeFilter(queryset=EventType.objects.all(),
                                                  empty_label=_("Any type"), label=_("Type"))
    # Day bounds as a time range on occurred_at itself, which its indexes can serve (a
    # date cast of the column could not).
    since = django_filters.DateFilter(method="from_day", label=_("From"),
                                      widget=forms.DateInput(attrs={"type": "date"}))
    until = django_filters.DateFilter(method="to_day", label=_("To"),
                                      widget=forms.DateInput(attrs={"type": "date"}))

    class Meta:
        model = Event
        fields = ["event_type", "since", "until"]

    def from_day(self, queryset, name, value):
        return queryset.filter(occurred_at__gte=_day_start(value))

    def to_day(self, queryset, name, value):
        return queryset.filter(occurred_at__lt=_day_start(value + timedelta(days=1)))


class OperationFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=OperationState.choices, empty_label=_("Any state"))

    class Meta:
        model = Operation
        fields = ["state"]


class ContactFilterSet(SearchFilterSet):
    """An organization's mail contacts (issue #12), bounded to it by the indexed
    organization_id before the substring match."""

    search_fields = ("name", "email")
    status = django_filters.ChoiceFilter(
        choices=[(s.value, s.label) for s in ContactStatus if s != ContactStatus.DELETED],
        empty_label=_("Any status"))

    class Meta:
        model = MailContact
        fields = ["q", "status"]
