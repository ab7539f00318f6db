from django.contrib import admin

from .models import (
    FeatureType,
    HostingPlan,
    HostingPlanQuota,
    PlanCategory,
    PlanFeature,
    ServicePlan,
)


class HostingPlanQuotaInline(admin.TabularInline):
    model = HostingPlanQuota
    fields = ("quota", "limit", "unlimited")
    extra = 0


@admin.register(HostingPlan)
class HostingPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "virtual_server", "setup_price", "recurring_price",
                    "billing_period", "is_active")
    list_filter = ("is_active", "billing_period", "virtual_server")
    search_fields = ("name", "description")
    list_select_related = ("virtual_server",)
    inlines = [HostingPlanQuotaInline]


class PlanFeatureInline(admin.TabularInline):
    model = PlanFeature
    fields = ("feature_type", "value")
    extra = 0


@admin.register(ServicePlan)
class ServicePlanAdmin(admin.ModelAdmin):
    list_display = ("name", "category", "feature_summary", "is_active")
    list_filter = ("is_active", "category")
    search_fields = ("name", "description")
    list_select_related = ("category",)
    inlines = [PlanFeatureInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("features__feature_type")

    @admin.display(description="features")
    def feature_summary(self, obj):
        return ", ".join(f"{f.feature_type.name}={f.value}" for f in obj.features.all()) or "—"


@admin.register(PlanCategory)
class PlanCategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "description")
    search_fields = ("name",)


@admin.register(FeatureType)
class FeatureTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "native_attribute", "parent_node", "description")
    list_filter = ("parent_node",)
    search_fields = ("name", "native_attribute")
