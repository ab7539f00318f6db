from django.contrib import admin, messages

from .connectivity import test_connection
from .forms import ServiceForm
from .models import Server, Service, VirtualServer, VirtualServerService


class ServiceInline(admin.TabularInline):
    model = Service
    fields = ("name", "kind", "enabled")
    show_change_link = True
    extra = 0
    can_delete = False


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    list_display = ("name", "hostname", "service_count", "created")
    search_fields = ("name", "hostname", "description")
    inlines = [ServiceInline]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_services=Count("services"))

    @admin.display(description="services", ordering="_services")
    def service_count(self, obj):
        return obj._services


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    form = ServiceForm
    list_display = ("name", "kind", "server", "endpoint", "enabled")
    list_filter = ("kind", "enabled", "server")
    search_fields = ("name", "server__name", "ldap_host", "winrm_endpoint", "base_dn")
    list_select_related = ("server",)
    actions = ["test_connection_action"]
    fieldsets = (
        (None, {"fields": ("server", "kind", "name", "enabled")}),
        ("Active Directory", {"fields": ("ldap_host", "ldap_port", "use_ssl", "verify_ca",
                                         "ca_certificate", "base_dn", "root_ou", "bind_dn",
                                         "bind_password")}),
        ("Exchange", {"fields": ("winrm_endpoint", "winrm_transport", "winrm_verify_tls",
                                 "winrm_allow_insecure",
                                 "exchange_username", "exchange_password",
                                 "default_database")}),
    )

    @admin.display(description="endpoint")
    def endpoint(self, obj):
        if obj.kind == "active_directory":
            return f"{'ldaps' if obj.use_ssl else 'ldap+starttls'}://{obj.ldap_host}:{obj.ldap_port}"
        return obj.winrm_endpoint

    @admin.action(description="Test connection (LDAPS bind / WinRM identify)")
    def test_connection_action(self, request, queryset):
        for service in queryset:
            ok, message = test_connection(service)
            self.message_user(request, f"{service.name}: {message}",
                              messages.SUCCESS if ok else messages.ERROR)


class VirtualServerServiceInline(admin.TabularInline):
    model = VirtualServerService
    fields = ("service", "kind")
    readonly_fields = ("kind",)
    autocomplete_fields = ("service",)
    extra = 1


@admin.register(VirtualServer)
class VirtualServerAdmin(admin.ModelAdmin):
    list_display = ("name", "service_list", "description")
    search_fields = ("name", "description")
    inlines = [VirtualServerServiceInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("services__server")

    @admin.display(description="services")
    def service_list(self, obj):
        return ", ".join(str(s) for s in obj.services.all()) or "—"
