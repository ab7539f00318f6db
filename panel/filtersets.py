"""Search and filter forms of the list pages (django-filter)."""

import django_filters
from django import forms
from django.db.models import Q

from provisioning import constants as c
from provisioning.models import Customer, Event, EventType, Operation, OperationState


class SearchFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    search_fields = ()

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        query = Q()
        for field in self.search_fields:
            query |= Q(**{f"{field}__icontains": value})
        return queryset.filter(query)


STATUS_CHOICES = [(c.ENABLED, "Enabled"), (c.DISABLED, "Disabled")]


class UserFilterSet(SearchFilterSet):
    # The list is already bounded to one organization by the indexed parent_id, so a
    # substring match only scans that organization's users.
    search_fields = ("name", "upn")
    status = django_filters.ChoiceFilter(field_name="status_id", choices=STATUS_CHOICES,
                                         empty_label="Any status")

    class Meta:
        model = Customer
        fields = ["q", "status"]


class OrganizationFilterSet(SearchFilterSet):
    search_fields = ("name", "assets__name")
    status = django_filters.ChoiceFilter(field_name="status_id", choices=STATUS_CHOICES,
                                         empty_label="Any status")

    class Meta:
        model = Customer
        fields = ["q", "status"]

    def search(self, queryset, name, value):
        return super().search(queryset, name, value).distinct()


class EventFilterSet(django_filters.FilterSet):
    event_type = django_filters.ModelChoiceFilter(queryset=EventType.objects.all(),
                                                  empty_label="Any type", label="Type")
    since = django_filters.DateFilter(field_name="occurred_at", lookup_expr="date__gte",
                                      label="From",
                                      widget=forms.DateInput(attrs={"type": "date"}))
    until = django_filters.DateFilter(field_name="occurred_at", lookup_expr="date__lte",
                                      label="To", widget=forms.DateInput(attrs={"type": "date"}))

    class Meta:
        model = Event
        fields = ["event_type", "since", "until"]


class OperationFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=OperationState.choices, empty_label="Any state")

    class Meta:
        model = Operation
        fields = ["state"]
