"""The list pages' tables (django-tables2): columns, sorting and links. Querysets come in
already scoped and with their joins, so a page costs the same few queries at any size."""

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from provisioning import constants as c
from provisioning.models import Account, Customer, Event, Operation

STATUS_CLASS = {c.ENABLED: "ok", c.DISABLED: "warn", c.DELETED: "muted",
                "queued": "info", "running": "info", "succeeded": "ok", "failed": "bad",
                "cancelled": "muted"}


def badge(value, label=None):
    return format_html('<span class="badge badge-{}">{}</span>',
                       STATUS_CLASS.get(value, "muted"), label or value)


class PanelTable(tables.Table):
    class Meta:
        template_name = "panel/includes/table.html"
        attrs = {"class": "table"}


class StatusColumn(tables.Column):
    def render(self, value, record):
        return badge(record.status_id)


class OrganizationTable(PanelTable):
    name = tables.Column(linkify=lambda record: reverse("organization", args=[record.pk]))
    primary_domain = tables.Column(orderable=False, empty_values=())
    user_count = tables.Column(verbose_name="Users")
    status = StatusColumn(accessor="status_id", verbose_name="Status")
    created = tables.DateColumn(format="Y-m-d")

    class Meta(PanelTable.Meta):
        model = Customer
        fields = ("name", "primary_domain", "user_count", "status", "created")
        empty_text = "No organizations yet."


class UserTable(PanelTable):
    name = tables.Column(verbose_name="Display name",
                         linkify=lambda record: reverse("user", args=[record.parent_id,
                                                                      record.pk]))
    upn = tables.Column(verbose_name="Logon name")
    service_plan = tables.Column(verbose_name="Plan", default="No mailbox",
                                 order_by=("service_plan__name",))
    status = StatusColumn(accessor="status_id", verbose_name="Status")
    directory = tables.Column(accessor="object_guid", verbose_name="Directory",
                              orderable=False, empty_values=())
    created = tables.DateColumn(format="Y-m-d")

    class Meta(PanelTable.Meta):
        model = Customer
        fields = ("name", "upn", "service_plan", "status", "directory", "created")
        empty_text = "No users match."

    def render_directory(self, value, record):
        # The GUID is stored once the directory object exists: no query per row.
        if record.object_guid:
            return format_html('<span class="badge badge-{}">{}</span>', "ok", "Provisioned")
        return format_html('<span class="badge badge-{}">{}</span>', "warn", "Pending")

    def value_directory(self, value, record):
        return "Provisioned" if record.object_guid else "Pending"


class EventTable(PanelTable):
    occurred_at = tables.DateTimeColumn(format="Y-m-d H:i", verbose_name="When")
    event_type = tables.Column(accessor="event_type_id", verbose_name="Type")
    customer = tables.Column(accessor="customer__name", verbose_name="Customer")
    actor = tables.Column(accessor="actor__username", default="system", verbose_name="By")
    data = tables.Column(orderable=False, verbose_name="Details")

    class Meta(PanelTable.Meta):
        model = Event
        fields = ("occurred_at", "event_type", "customer", "actor", "data")
        empty_text = "No events match."

    def render_data(self, value):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"


class OperationTable(PanelTable):
    pk = tables.Column(verbose_name="#")
    action = tables.Column()
    customer = tables.Column(accessor="customer__name", verbose_name="For")
    state = tables.Column()
    progress = tables.TemplateColumn(template_name="panel/includes/operation_steps.html",
                                     orderable=False, verbose_name="Steps")
    attempts = tables.Column()
    last_error = tables.Column(verbose_name="Last error", default="", orderable=False)
    created = tables.DateTimeColumn(format="Y-m-d H:i")
    retry = tables.TemplateColumn(template_name="panel/includes/operation_retry.html",
                                  orderable=False, verbose_name="")

    class Meta(PanelTable.Meta):
        model = Operation
        fields = ("pk", "action", "customer", "state", "progress", "attempts", "last_error",
                  "created", "retry")
        empty_text = "No operations match."

    def render_action(self, value):
        return value.replace("_", " ")

    def render_state(self, value, record):
        return badge(record.state, record.get_state_display())


class PeerTable(PanelTable):
    username = tables.Column(accessor="user__username", verbose_name="Login")
    full_name = tables.Column(accessor="user__get_full_name", verbose_name="Name",
                              orderable=False, default="—")
    email = tables.Column(accessor="user__email", verbose_name="E-mail", default="—")
    role = tables.Column()
    actions = tables.TemplateColumn(template_name="panel/includes/peer_actions.html",
                                    orderable=False, verbose_name="")

    class Meta(PanelTable.Meta):
        model = Account
        fields = ("username", "full_name", "email", "role", "actions")
        empty_text = "No panel accounts."
