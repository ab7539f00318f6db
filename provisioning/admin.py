from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from mptt.admin import MPTTModelAdmin

from . import journal, services
from .models import (
    Account,
    Customer,
    CustomerAsset,
    Event,
    HostingSpace,
    HostingSpaceQuota,
    Operation,
)


class HostingSpaceInline(admin.TabularInline):
    model = HostingSpace
    fields = ("name", "hosting_plan", "status")
    show_change_link = True
    extra = 0


class CustomerAssetInline(admin.TabularInline):
    model = CustomerAsset
    fields = ("name", "asset_type", "status")
    extra = 0


@admin.register(Customer)
class CustomerAdmin(MPTTModelAdmin):
    list_display = ("name", "customer_type", "upn", "status", "service_plan", "object_guid")
    list_filter = ("customer_type", "status", "service_plan")
    search_fields = ("name", "upn", "=object_guid")
    list_select_related = ("service_plan",)
    readonly_fields = ("object_guid", "created", "updated")
    autocomplete_fields = ("parent",)
    filter_horizontal = ("available_service_plans",)
    inlines = [HostingSpaceInline, CustomerAssetInline]
    mptt_level_indent = 24
    actions = ["mark_deleted"]
    list_per_page = 100

    def has_delete_permission(self, request, obj=None):
        # Customers are marked deleted, never removed.
        return False

    @admin.action(description="Mark selected customers as deleted")
    def mark_deleted(self, request, queryset):
        for customer in queryset:
            services.delete_customer(customer, actor=request.user)
        self.message_user(request, f"{queryset.count()} customer(s) marked deleted.",
                          messages.SUCCESS)


class HostingSpaceQuotaInline(admin.TabularInline):
    model = HostingSpaceQuota
    fields = ("quota", "limit", "unlimited")
    extra = 0


@admin.register(HostingSpace)
class HostingSpaceAdmin(admin.ModelAdmin):
    list_display = ("name", "customer", "hosting_plan", "status", "created")
    list_filter = ("status", "hosting_plan")
    search_fields = ("name", "customer__name")
    list_select_related = ("customer", "hosting_plan")
    autocomplete_fields = ("customer",)
    inlines = [HostingSpaceQuotaInline]


@admin.register(CustomerAsset)
class CustomerAssetAdmin(admin.ModelAdmin):
    list_display = ("name", "asset_type", "customer", "status", "created")
    list_filter = ("asset_type", "status")
    search_fields = ("name", "customer__name")
    list_select_related = ("customer",)
    autocomplete_fields = ("customer",)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "event_type", "customer", "actor", "data")
    list_filter = ("event_type", "occurred_at")
    search_fields = ("customer__name", "customer__upn", "actor__username")
    list_select_related = ("customer", "actor")
    date_hierarchy = "occurred_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "customer", "created")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email", "customer__name")
    list_select_related = ("user", "customer")
    autocomplete_fields = ("user", "customer")


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    """The journal, read-only: what was asked, which steps were done, why it failed."""

    list_display = ("id", "action", "customer", "state", "attempts", "last_error", "created",
                    "finished")
    list_filter = ("state", "action", "created")
    search_fields = ("customer__name", "customer__upn", "action", "task_id")
    list_select_related = ("customer",)
    date_hierarchy = "created"
    actions = ["retry_failed"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry the selected failed operations")
    def retry_failed(self, request, queryset):
        retried, skipped = 0, []
        for operation in queryset:
            try:
                journal.retry(operation, actor=request.user)
                retried += 1
            except ValidationError as exc:
                skipped.append(f"#{operation.pk}: {' '.join(exc.messages)}")
        self.message_user(request, f"{retried} operation(s) sent again.", messages.SUCCESS)
        for message in skipped:
            self.message_user(request, message, messages.WARNING)
