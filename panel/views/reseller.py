"""Reseller pages: its organizations, signing new ones up, suspending them, its hosting
spaces with their quota usage, and its customers' events (with a CSV export)."""

import csv

from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from panel.filtersets import EventFilterSet, OrganizationFilterSet
from panel.forms.organizations import HostingPlanForm, SignUpForm
from panel.tables import EventTable, OrganizationTable
from provisioning import constants as c
from provisioning import quotas, scoping, services
from provisioning.models import CustomerAsset, Event, UserCount

from .base import ConfirmView, ObjectListMixin, PanelMixin, ServiceFormView

PER_PAGE = 25


class OrganizationListView(PanelMixin, ObjectListMixin, TemplateView):
    """The "Hosted Organizations" entry point: every organization in the account's subtree."""

    template_name = "panel/reseller/organizations.html"
    permission = "organization.view"
    title = _("Hosted organizations")
    filterset_class = OrganizationFilterSet
    table_class = OrganizationTable
    per_page = PER_PAGE

    def get_queryset(self):
        primary = CustomerAsset.objects.filter(customer=OuterRef("pk"),
                                               asset_type_id=c.PRIMARY_DOMAIN).values("name")[:1]
        # The counts the database keeps (UserCount): one index entry per plan, whatever the
        # number of users.
        users = UserCount.objects.filter(holder_id=OuterRef("pk")).order_by().values(
            "holder_id").annotate(n=Sum("users")).values("n")
        return scoping.organizations(self.request.user).annotate(
            primary_domain=Subquery(primary),
            user_count=Coalesce(Subquery(users), 0),
        ).order_by("name", "pk")


class SignUpView(PanelMixin, ServiceFormView):
    template_name = "panel/reseller/sign_up.html"
    form_class = SignUpForm
    permission = "organization.sign_up"
    title = _("Sign up an organization")
    success_message = _("{result.name} is signed up; its directory and mailboxes are being "
                        "provisioned.")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def perform(self, form):
        data = form.cleaned_data
        return services.sign_up_organization(
            reseller=data["reseller"], name=data["name"], primary_domain=data["primary_domain"],
            admin_username=data["admin_username"], admin_password=data["admin_password"],
            admin_email=data["admin_email"], hosting_plan=data["hosting_plan"],
            service_plans=data["service_plans"], actor=self.request.user)

    def get_success_url(self):
        return reverse("organization", args=[self.result.pk])


class SuspendView(PanelMixin, ConfirmView):
    permission = "organization.suspend"
    enable = False

    def resolve(self, request, *args, **kwargs):
        self.organization = scoping.get_organization_or_404(request.user, kwargs["org_id"])

    @property
    def question(self):
        if self.enable:
            return _("Resume {view.organization.name}?")
        return _("Suspend {view.organization.name}?")

    @property
    def detail(self):
        if self.enable:
            return _("Its users can sign in and receive mail again.")
        return _("All its users are disabled in the directory until you resume it.")

    @property
    def button(self):
        return _("Resume") if self.enable else _("Suspend")

    @property
    def danger(self):
        return not self.enable

    @property
    def success_message(self):
        if self.enable:
            return _("{view.organization.name} is resumed.")
        return _("{view.organization.name} is suspended.")

    def perform(self):
        services.set_enabled(self.organization, self.enable, actor=self.request.user)

    def get_success_url(self):
        return reverse("organization", args=[self.organization.pk])


class HostingPlanChangeView(PanelMixin, ServiceFormView):
    """Upgrade or downgrade an organization's hosting plan (services.change_hosting_plan)."""

    template_name = "panel/reseller/hosting_plan.html"
    form_class = HostingPlanForm
    permission = "organization.change_plan"
    title = "Change hosting plan"
    success_message = "{form.cleaned_data[hosting_plan]} is now the hosting plan."

    def resolve(self, request, *args, **kwargs):
        self.organization = scoping.get_organization_or_404(request.user, kwargs["org_id"])

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "organization": self.organization}

    def get_initial(self):
        space = services.hosting_space_of(self.organization)
        return {"hosting_plan": space.hosting_plan_id if space else None}

    def perform(self, form):
        return services.change_hosting_plan(self.organization, form.cleaned_data["hosting_plan"],
                                            actor=self.request.user)

    def get_success_url(self):
        return reverse("organization", args=[self.organization.pk])

    def get_context_data(self, **kwargs):
        return super().get_context_data(organization=self.organization, **kwargs)


class OrganizationDeleteView(PanelMixin, ConfirmView):
    permission = "organization.delete"
    question = "Delete {view.organization.name}?"
    detail = ("Its users are disabled in the directory and the organization leaves your "
              "lists. Its records, events and change log are kept.")
    button = "Delete organization"
    success_message = "{view.organization.name} is deleted."

    def resolve(self, request, *args, **kwargs):
        self.organization = scoping.get_organization_or_404(request.user, kwargs["org_id"])

    def perform(self):
        services.delete_customer(self.organization, actor=self.request.user)

    def get_success_url(self):
        return reverse("organizations")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["cancel_url"] = reverse("organization", args=[self.organization.pk])
        return context


class HostingSpaceListView(PanelMixin, TemplateView):
    template_name = "panel/reseller/hosting_spaces.html"
    permission = "reseller.view"
    title = _("Hosting spaces")

    def get_context_data(self, **kwargs):
        # A deleted customer's spaces are Deleted with it (services.delete_customer), so
        # the list needs neither its customer's row to filter nor to sort: one index.
        spaces = scoping.hosting_spaces(self.request.user).exclude(
            status_id=c.DELETED).select_related("customer", "hosting_plan").order_by(
            "name", "pk")
        page = Paginator(spaces, 10).get_page(self.request.GET.get("page"))
        # Every shown space's usage at once: a fixed number of queries, not a few per row.
        usage = quotas.usage_many(page)
        rows = [(space, usage[space.pk]) for space in page]
        return super().get_context_data(page=page, rows=rows, **kwargs)


class EventListView(PanelMixin, ObjectListMixin, TemplateView):
    """Events of every customer in scope; `?export=csv` downloads the filtered list."""

    template_name = "panel/events.html"
    permission = "event.view"
    title = _("Events")
    table_class = EventTable

    def events(self):
        queryset = scoping.restrict(Event.objects.all(), self.request.user).select_related(
            "customer", "actor")
        return EventFilterSet(self.request.GET, queryset=queryset)

    def get(self, request, *args, **kwargs):
        if request.GET.get("export") == "csv":
            return events_csv(self.events().qs, "events")
        return super().get(request, *args, **kwargs)

    def get_filterset(self):
        return self.events()


class _Echo:
    def write(self, value):
        return value


def _csv_safe(value):
    # A cell starting with = + - @ would run as a formula in a spreadsheet.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def events_csv(queryset, name):
    writer = csv.writer(_Echo())
    header = ["occurred_at", "event_type", "customer", "upn", "actor", "data"]

    def rows():
        yield writer.writerow(header)
        for event in queryset.iterator(chunk_size=2000):
            yield writer.writerow([_csv_safe(v) for v in (
                event.occurred_at.isoformat(), event.event_type_id, event.customer.name,
                event.customer.upn, event.actor.username if event.actor else "",
                "; ".join(f"{k}={v}" for k, v in event.data.items()))])

    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response
