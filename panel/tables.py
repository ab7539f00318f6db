"""The list pages' tables (django-tables2): columns, sorting and links. Querysets come in
already scoped and with their joins, so a page costs the same few queries at any size."""

import django_tables2 as tables
from django.core.paginator import Paginator
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from provisioning import constants as c
from provisioning.models import Account, Customer, Event, MailContact, Operation
from provisioning.models.contacts import ContactStatus
from provisioning.models.events import event_type_label
from provisioning.models.operations import action_label

STATUS_CLASS = {c.ENABLED: "ok", c.DISABLED: "warn", c.DELETED: "muted",
                "queued": "info", "running": "info", "succeeded": "ok", "failed": "bad",
                "cancelled": "muted"}
STATUS_LABELS = {c.ENABLED: _("Enabled"), c.DISABLED: _("Disabled"), c.DELETED: _("Deleted")}


def badge(value, label=None):
    return format_html('<span class="badge badge-{}">{}</span>',
                       STATUS_CLASS.get(value, "muted"), label or value)


# The page sizes the pager offers; `?per_page=` takes one of them and nothing larger, so
# no request can ask a list for all of its rows at once (exports stream instead).
PER_PAGE_CHOICES = (25, 50, 100)
MAX_PER_PAGE = max(PER_PAGE_CHOICES)


def page_size(requested, default):
    """A requested page size, capped at MAX_PER_PAGE; the default when it is not a number."""
    try:
        size = int(requested)
    except (TypeError, ValueError):
        return default
    return min(max(size, 1), MAX_PER_PAGE)


# How many rows a log's pager counts at most (events, operations): beyond it, the pager
# says "more than" this and its pages stop there; the filters narrow the list and the CSV
# export streams all of it. Counting and skipping stay bounded by it at any size.
COUNT_LIMIT = 10_000


class BoundedPaginator(Paginator):
    """A paginator that counts at most `limit` + 1 rows (one COUNT over a LIMIT subquery)
    instead of every row: `count` is at most `limit`, and `more` says there are further
    rows than it pages."""

    def __init__(self, object_list, per_page, *args, limit=COUNT_LIMIT, **kwargs):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.limit = limit

    @cached_property
    def counted(self):
        rows = self.object_list
        # django-tables2 hands over its BoundRows; count its queryset, without its order.
        queryset = getattr(getattr(rows, "data", None), "data", rows)
        if hasattr(queryset, "order_by"):
            return queryset.order_by()[:self.limit + 1].count()
        return min(len(rows), self.limit + 1)

    @cached_property
    def count(self):
        return min(self.counted, self.limit)

    @property
    def more(self):
        return self.counted > self.limit


class PanelTable(tables.Table):
    """Every panel list's table: its page size is capped in this one place. A table with a
    `count_limit` counts at most that many rows (`BoundedPaginator`)."""

    count_limit = None

    class Meta:
        template_name = "panel/includes/table.html"
        attrs = {"class": "table"}
        per_page = 50

    def paginate(self, paginator_class=Paginator, per_page=None, page=1,
                 *args, **kwargs):
        per_page = page_size(per_page, self._meta.per_page)
        if self.count_limit is not None:
            paginator_class = BoundedPaginator
            kwargs["limit"] = self.count_limit
        return super().paginate(paginator_class, per_page, page, *args, **kwargs)

    @property
    def per_page_choices(self):
        return PER_PAGE_CHOICES

    @cached_property
    def records(self):
        """The page's records, each through `prepare`, for a table whose template writes
        its cells itself (panel/includes/fast_table.html): no bound row or cell objects,
        no per-cell accessor or linkify."""
        return [self.prepare(record) for record in self.paginated_rows.data]

    def prepare(self, record):
        return record


class StatusColumn(tables.Column):
    def render(self, value, record):
        return badge(record.status_id, STATUS_LABELS.get(record.status_id))


class OrganizationTable(PanelTable):
    name = tables.Column(verbose_name=_("Name"),
                         linkify=lambda record: reverse("organization", args=[record.pk]))
    primary_domain = tables.Column(orderable=False, empty_values=(),
                                   verbose_name=_("Primary domain"))
    user_count = tables.Column(verbose_name=_("Users"))
    status = StatusColumn(accessor="status_id", verbose_name=_("Status"))
    created = tables.DateColumn(format="SHORT_DATE_FORMAT", verbose_name=_("Created"))

    class Meta(PanelTable.Meta):
        model = Customer
        fields = ("name", "primary_domain", "user_count", "status", "created")
        empty_text = _("No organizations yet.")
        # Rows written by the template from `records`, as the users list's.
        template_name = "panel/reseller/organization_table.html"

    def prepare(self, record):
        record.url = reverse("organization", args=[record.pk])
        record.status_badge = badge(record.status_id, STATUS_LABELS.get(record.status_id))
        return record


class UserTable(PanelTable):
    """Its columns give the header, sorting and CSV values; templates/panel/users/table.html
    writes the rows' cells from `records` (django-tables2's cell rendering cost about
    1.5 ms a row: docs/performance.md)."""

    name = tables.Column(verbose_name=_("Display name"),
                         linkify=lambda record: reverse("user", args=[record.parent_id,
                                                                      record.pk]))
    upn = tables.Column(verbose_name=_("Logon name"))
    service_plan = tables.Column(verbose_name=_("Plan"), default=_("No mailbox"),
                                 order_by=("service_plan__name",))
    status = StatusColumn(accessor="status_id", verbose_name=_("Status"))
    directory = tables.Column(accessor="object_guid", verbose_name=_("Directory"),
                              orderable=False, empty_values=())
    created = tables.DateColumn(format="SHORT_DATE_FORMAT", verbose_name=_("Created"))

    class Meta(PanelTable.Meta):
        model = Customer
        fields = ("name", "upn", "service_plan", "status", "directory", "created")
        empty_text = _("No users match.")
        template_name = "panel/users/table.html"

    def prepare(self, record):
        record.url = reverse("user", args=[record.parent_id, record.pk])
        record.status_badge = badge(record.status_id, STATUS_LABELS.get(record.status_id))
        return record

    def render_directory(self, value, record):
        # The GUID is stored once the directory object exists: no query per row.
        if record.object_guid:
            return format_html('<span class="badge badge-{}">{}</span>', "ok", _("Provisioned"))
        return format_html('<span class="badge badge-{}">{}</span>', "warn", _("Pending"))

    def value_directory(self, value, record):
        return _("Provisioned") if record.object_guid else _("Pending")


class EventTable(PanelTable):
    occurred_at = tables.DateTimeColumn(format="SHORT_DATETIME_FORMAT", verbose_name=_("When"))
    event_type = tables.Column(accessor="event_type_id", verbose_name=_("Type"))
    customer = tables.Column(accessor="customer__name", verbose_name=_("Customer"))
    actor = tables.Column(accessor="actor__username", default=_("system"),
                          verbose_name=_("By"))
    data = tables.Column(orderable=False, verbose_name=_("Details"))

    count_limit = COUNT_LIMIT

    class Meta(PanelTable.Meta):
        model = Event
        fields = ("occurred_at", "event_type", "customer", "actor", "data")
        empty_text = _("No events match.")
        template_name = "panel/includes/event_table.html"

    def render_event_type(self, value):
        return event_type_label(value)

    def value_event_type(self, value):
        return value

    def render_data(self, value):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"

    def prepare(self, record):
        record.details = self.render_data(record.data)
        return record


class OperationTable(PanelTable):
    pk = tables.Column(verbose_name="#")
    action = tables.Column(verbose_name=_("Action"))
    customer = tables.Column(accessor="customer__name", verbose_name=_("For"))
    state = tables.Column(verbose_name=_("State"))
    progress = tables.TemplateColumn(template_name="panel/includes/operation_steps.html",
                                     orderable=False, verbose_name=_("Steps"))
    attempts = tables.Column(verbose_name=_("Attempts"))
    last_error = tables.Column(verbose_name=_("Last error"), default="", orderable=False)
    created = tables.DateTimeColumn(format="SHORT_DATETIME_FORMAT", verbose_name=_("Created"))
    retry = tables.TemplateColumn(template_name="panel/includes/operation_retry.html",
                                  orderable=False, verbose_name="")

    class Meta(PanelTable.Meta):
        model = Operation
        fields = ("pk", "action", "customer", "state", "progress", "attempts", "last_error",
                  "created", "retry")
        empty_text = _("No operations match.")
        template_name = "panel/organization/operation_table.html"

    count_limit = COUNT_LIMIT

    def render_action(self, value):
        return action_label(value)

    def render_state(self, value, record):
        return badge(record.state, record.get_state_display())

    def prepare(self, record):
        record.state_badge = self.render_state(record.state, record)
        return record


class PeerTable(PanelTable):
    username = tables.Column(accessor="user__username", verbose_name=_("Login"))
    full_name = tables.Column(accessor="user__get_full_name", verbose_name=_("Name"),
                              orderable=False, default="—")
    email = tables.Column(accessor="user__email", verbose_name=_("E-mail"), default="—")
    role = tables.Column(verbose_name=_("Role"))
    actions = tables.TemplateColumn(template_name="panel/includes/peer_actions.html",
                                    orderable=False, verbose_name="")

    class Meta(PanelTable.Meta):
        model = Account
        fields = ("username", "full_name", "email", "role", "actions")
        empty_text = _("No panel accounts.")


# --- Mail contacts (issue #12) ------------------------------------------------------------

CONTACT_STATUS_CLASS = {ContactStatus.PENDING: "warn", ContactStatus.ACTIVE: "ok",
                        ContactStatus.FAILED: "bad", ContactStatus.DELETED: "muted"}


class ContactTable(PanelTable):
    name = tables.Column(verbose_name=_("Name"))
    email = tables.Column(verbose_name=_("External e-mail address"))
    status = tables.Column(verbose_name=_("Status"))
    created = tables.DateColumn(format="SHORT_DATE_FORMAT", verbose_name=_("Created"))
    actions = tables.Column(empty_values=(), orderable=False, verbose_name="",
                            exclude_from_export=True)

    class Meta(PanelTable.Meta):
        model = MailContact
        fields = ("name", "email", "status", "created", "actions")
        empty_text = _("No mail contacts match.")

    def render_status(self, value, record):
        return format_html('<span class="badge badge-{}">{}</span>',
                           CONTACT_STATUS_CLASS.get(record.status, "muted"),
                           record.get_status_display())

    def render_actions(self, record):
        return format_html('<a class="btn btn-quiet-danger" href="{}">{}</a>',
                           reverse("contact_delete", args=[record.organization_id, record.pk]),
                           _("Delete"))
