"""An organization's own pages: dashboard, domains, events, operations and change log."""

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Q, Subquery
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from panel.filtersets import EventFilterSet, OperationFilterSet
from panel.forms.auth import RetryForm
from panel.forms.organizations import DomainForm
from panel.tables import EventTable, OperationTable
from provisioning import changelog, quotas, scoping, services
from provisioning import constants as c
from provisioning.models import (
    Customer,
    CustomerAsset,
    Operation,
    OperationState,
)
from servicplans.models import HostingPlan, QuotaName, ServicePlan

from .base import ObjectListMixin, OrganizationMixin, ServiceFormView
from .reseller import events_csv

DASHBOARD_QUOTAS = (QuotaName.USERS, QuotaName.MAILBOXES, QuotaName.DOMAINS,
                    QuotaName.MAILBOX_DISK_MB, QuotaName.MAIL_CONTACTS)
OPEN_STATES = (OperationState.QUEUED, OperationState.RUNNING, OperationState.FAILED)


class DashboardView(OrganizationMixin, TemplateView):
    template_name = "panel/organization/dashboard.html"
    permission = "organization.view"
    section = "dashboard"

    def get_context_data(self, **kwargs):
        org = self.organization
        primary = CustomerAsset.objects.filter(
            customer=org, asset_type_id=c.PRIMARY_DOMAIN).order_by("pk").values("name")[:1]
        space = org.hosting_spaces.exclude(status_id=c.DELETED).select_related(
            "hosting_plan").annotate(primary_domain=Subquery(primary)).order_by("pk").first()
        if space is not None:
            space.customer = org
            primary_domain = space.primary_domain
        else:
            primary_domain = primary.values_list("name", flat=True).first()
        usage = quotas.usage(space, only=DASHBOARD_QUOTAS) if space else []
        events = scoping.organization_events(org).select_related("customer", "actor")[:8]
        operations = Operation.objects.filter(scope=org, state__in=OPEN_STATES).select_related(
            "customer").order_by("-pk")[:8]
        return super().get_context_data(
            title=org.name, space=space, usage=usage, events=events, operations=operations,
            primary_domain=primary_domain, **kwargs)


class DomainListView(OrganizationMixin, ServiceFormView):
    template_name = "panel/organization/domains.html"
    form_class = DomainForm
    permission = "domain.view"
    section = "domains"
    title = _("Domains")
    success_message = _("{result.name} is added; it becomes a logon suffix once provisioned.")

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
    title = _("Events")
    table_class = EventTable

    def events(self):
        queryset = scoping.organization_events(self.organization).select_related(
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
    title = _("Operations")
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
    title = _("Retry an operation")
    success_message = _("Operation #{result.pk} is queued again.")

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
        return services.retry_operation(self.operation, actor=self.request.user,
                                        secret=form.cleaned_data.get("secret") or None)

    def get_success_url(self):
        return reverse("operations", args=[self.organization.pk])

    def get_context_data(self, **kwargs):
        return super().get_context_data(operation=self.operation, **kwargs)


class ChangeLogView(OrganizationMixin, TemplateView):
    """django-auditlog's before/after records of the organization, its users, domains,
    hosting spaces and panel accounts with their logins and API tokens, a request's entries in
    one group."""

    template_name = "panel/organization/changelog.html"
    permission = "changelog.view"
    section = "changes"
    title = _("Change log")
    per_page = 30
    max_per_page = 100

    def entries(self):
        return changelog.entries_of(self.organization)

    def name_lookups(self):
        """Where the name of an object a change points to may come from: the organization,
        its users and its reseller (its parent), its own logins, and the provider's plans.
        Any other id stays unnamed."""
        org = self.organization
        return {
            Customer: Customer.objects.filter(
                Q(pk__in=scoping.organization_customers(org).values("pk")) | Q(pk=org.parent_id)),
            get_user_model(): get_user_model().objects.filter(
                account__customer=org),
            ServicePlan: ServicePlan.objects.all(),
            HostingPlan: HostingPlan.objects.all(),
        }

    def page_size(self):
        try:
            size = int(self.request.GET.get("per_page", self.per_page))
        except ValueError:
            size = self.per_page
        return max(1, min(size, self.max_per_page))

    def get_context_data(self, **kwargs):
        paginator = Paginator(self.entries(), self.page_size())
        page = paginator.get_page(self.request.GET.get("page"))
        groups = changelog.readable(page.object_list, self.organization, self.name_lookups())
        return super().get_context_data(
            page=page, groups=groups,
            page_range=paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
            **kwargs)
