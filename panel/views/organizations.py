"""An organization's own pages: dashboard, domains, events, operations and change log."""

from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.generic import TemplateView

from panel.filtersets import EventFilterSet, OperationFilterSet
from panel.forms.auth import RetryForm
from panel.forms.organizations import DomainForm
from panel.tables import EventTable, OperationTable
from provisioning import constants as c
from provisioning import journal, quotas, scoping, services
from provisioning.models import (
    Account,
    Customer,
    CustomerAsset,
    Event,
    HostingSpace,
    Operation,
    OperationState,
)
from servicplans.models import QuotaName

from .base import ObjectListMixin, OrganizationMixin, ServiceFormView
from .reseller import events_csv

DASHBOARD_QUOTAS = (QuotaName.USERS, QuotaName.MAILBOXES, QuotaName.DOMAINS,
                    QuotaName.MAILBOX_DISK_MB)
OPEN_STATES = (OperationState.QUEUED, OperationState.RUNNING, OperationState.FAILED)


def organization_q(organization, prefix="customer__"):
    """The organization and its users, by indexed columns only."""
    return Q(**{f"{prefix}pk": organization.pk}) | Q(**{f"{prefix}parent_id": organization.pk})


class DashboardView(OrganizationMixin, TemplateView):
    template_name = "panel/organization/dashboard.html"
    permission = "organization.view"
    section = "dashboard"

    def get_context_data(self, **kwargs):
        org = self.organization
        space = org.hosting_spaces.exclude(status_id=c.DELETED).select_related(
            "customer", "hosting_plan").prefetch_related(
            "quota_overrides", "hosting_plan__quotas").order_by("pk").first()
        usage = quotas.usage(space, only=DASHBOARD_QUOTAS) if space else []
        events = Event.objects.filter(organization_q(org)).select_related(
            "customer", "actor")[:8]
        operations = Operation.objects.filter(scope=org, state__in=OPEN_STATES).select_related(
            "customer").order_by("-pk")[:8]
        return super().get_context_data(
            title=org.name, space=space, usage=usage, events=events, operations=operations,
            primary_domain=org.assets.filter(asset_type_id=c.PRIMARY_DOMAIN).first(),
            **kwargs)


class DomainListView(OrganizationMixin, ServiceFormView):
    template_name = "panel/organization/domains.html"
    form_class = DomainForm
    permission = "domain.view"
    section = "domains"
    title = "Domains"
    success_message = "{result.name} is added; it becomes a logon suffix once provisioned."

    def post(self, request, *args, **kwargs):
        scoping.require(request.user, "domain.add")
        return super().post(request, *args, **kwargs)

    def perform(self, form):
        return services.add_domain(self.organization, form.cleaned_data["name"],
                                   form.cleaned_data["asset_type"], actor=self.request.user)

    def get_success_url(self):
        return reverse("domains", args=[self.organization.pk])

    def get_context_data(self, **kwargs):
        domains = self.organization.assets.exclude(status_id=c.DELETED).order_by(
            "-asset_type_id", "name")
        # PrimaryDomain sorts after the others alphabetically; put it first explicitly.
        domains = sorted(domains, key=lambda a: (a.asset_type_id != c.PRIMARY_DOMAIN, a.name))
        return super().get_context_data(domains=domains, **kwargs)


class OrganizationEventListView(OrganizationMixin, ObjectListMixin, TemplateView):
    template_name = "panel/events.html"
    permission = "event.view"
    section = "events"
    title = "Events"
    table_class = EventTable

    def events(self):
        queryset = Event.objects.filter(organization_q(self.organization)).select_related(
            "customer", "actor")
        return EventFilterSet(self.request.GET, queryset=queryset)

    def get(self, request, *args, **kwargs):
        if request.GET.get("export") == "csv":
            return events_csv(self.events().qs, f"events-{self.organization.pk}")
        return super().get(request, *args, **kwargs)

    def get_filterset(self):
        return self.events()


class OperationListView(OrganizationMixin, ObjectListMixin, TemplateView):
    template_name = "panel/organization/operations.html"
    permission = "operation.view"
    section = "operations"
    title = "Operations"
    filterset_class = OperationFilterSet
    table_class = OperationTable
    per_page = 25

    def get_queryset(self):
        return Operation.objects.filter(scope=self.organization).select_related(
            "customer").order_by("-pk")


class OperationRetryView(OrganizationMixin, ServiceFormView):
    template_name = "panel/organization/operation_retry.html"
    form_class = RetryForm
    permission = "operation.retry"
    section = "operations"
    title = "Retry an operation"
    success_message = "Operation #{result.pk} is queued again."

    def resolve(self, request, *args, **kwargs):
        super().resolve(request, *args, **kwargs)
        self.operation = get_object_or_404(Operation.objects.select_related("customer"),
                                           scope=self.organization, pk=kwargs["operation_id"])

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        if not self.operation.needs_secret:
            del form.fields["secret"]
        return form

    def perform(self, form):
        return journal.retry(self.operation, actor=self.request.user,
                             secret=form.cleaned_data.get("secret") or None)

    def get_success_url(self):
        return reverse("operations", args=[self.organization.pk])

    def get_context_data(self, **kwargs):
        return super().get_context_data(operation=self.operation, **kwargs)


class ChangeLogView(OrganizationMixin, TemplateView):
    """django-auditlog's before/after records of the organization, its users, domains,
    hosting spaces and panel accounts with their logins."""

    template_name = "panel/organization/changelog.html"
    permission = "changelog.view"
    section = "changes"
    title = "Change log"

    def entries(self):
        org = self.organization
        User = get_user_model()
        types = ContentType.objects.get_for_models(Customer, CustomerAsset, HostingSpace,
                                                   Account, User)
        accounts = Account.objects.filter(customer=org)
        members = {
            Customer: Customer.objects.filter(organization_q(org, prefix="")).values("pk"),
            CustomerAsset: CustomerAsset.objects.filter(customer=org).values("pk"),
            HostingSpace: HostingSpace.objects.filter(customer=org).values("pk"),
            Account: accounts.values("pk"),
            # Only logins that are this organization's accounts: a reseller's or another
            # tenant's login is never one of them.
            User: accounts.values("user_id"),
        }
        query = Q()
        for model, ids in members.items():
            query |= Q(content_type=types[model], object_id__in=ids)
        return LogEntry.objects.filter(query).select_related("actor", "content_type").order_by(
            "-timestamp", "-pk")

    def get_context_data(self, **kwargs):
        page = Paginator(self.entries(), 30).get_page(self.request.GET.get("page"))
        return super().get_context_data(page=page, **kwargs)
