from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django_otp.plugins.otp_totp.models import TOTPDevice
from mptt.admin import MPTTModelAdmin

from . import names, services, tokens, two_factor
from .models import (
    Account,
    ApiToken,
    Customer,
    CustomerAsset,
    Event,
    HostingSpace,
    HostingSpaceQuota,
    LoginName,
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

    @admin.action(description=gettext_lazy("Mark selected customers as deleted"))
    def mark_deleted(self, request, queryset):
        for customer in queryset:
            services.delete_customer(customer, actor=request.user)
        count = queryset.count()
        self.message_user(request, ngettext("%(count)s customer marked deleted.",
                                            "%(count)s customers marked deleted.", count)
                          % {"count": count}, messages.SUCCESS)


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

    @admin.action(description=gettext_lazy("Retry the selected failed operations"))
    def retry_failed(self, request, queryset):
        retried, skipped = 0, []
        for operation in queryset:
            try:
                services.retry_operation(operation, actor=request.user)
                retried += 1
            except ValidationError as exc:
                skipped.append(f"#{operation.pk}: {' '.join(exc.messages)}")
        self.message_user(request, ngettext("%(count)s operation sent again.",
                                            "%(count)s operations sent again.", retried)
                          % {"count": retried}, messages.SUCCESS)
        for message in skipped:
            self.message_user(request, message, messages.WARNING)


class LoginNameCheck:
    """A new or renamed login follows the panel's rule for logins (provisioning.names.LOGIN),
    and is taken when another one is the same name, not only when it is the same bytes. A
    login made before the rule keeps its name when its other fields are edited."""

    def clean_username(self):
        username = self.cleaned_data.get("username")
        if username and username != self.instance.username:
            username = names.LOGIN.clean(username)
        if username and LoginName.is_taken(username, user=self.instance):
            raise ValidationError(LoginName.taken_message(username), code="unique")
        return username


class LoginCreationForm(LoginNameCheck, AdminUserCreationForm):
    pass


class LoginChangeForm(LoginNameCheck, UserChangeForm):
    pass


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class LoginAdmin(UserAdmin):
    add_form = LoginCreationForm
    form = LoginChangeForm
    list_display = (*UserAdmin.list_display, "two_factor")
    actions = ["reset_two_factor"]

    def get_queryset(self, request):
        enrolled = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(two_factor_on=Exists(enrolled))

    @admin.display(description=gettext_lazy("Two-factor"), boolean=True, ordering="two_factor_on")
    def two_factor(self, obj):
        return obj.two_factor_on

    @admin.action(description=gettext_lazy("Reset two-factor authentication of the selected "
                                       "logins"),
                  permissions=["change"])
    def reset_two_factor(self, request, queryset):
        """For a login whose authenticator and recovery codes are lost: it signs in with its
        password alone again, or enrols anew when the provider requires two-factor."""
        reset = [login for login in queryset if two_factor.reset(login, actor=request.user)]
        self.message_user(request, ngettext(
            "Two-factor authentication reset for %(count)s login: %(logins)s.",
            "Two-factor authentication reset for %(count)s logins: %(logins)s.", len(reset)) % {
            "count": len(reset), "logins": ", ".join(u.username for u in reset) or "—"},
            messages.SUCCESS)


class ApiTokenCreationForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("user", "name", "expires")

    def _post_clean(self):
        # The service's checks (provisioning.tokens.check); the service saves, not the form.
        data = self.cleaned_data
        if "user" not in data:
            return
        try:
            tokens.check(data["user"], name=data.get("name"), expires=data.get("expires"))
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                self.add_error(field if field in self.fields else None, errors)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens of every login. Staff make one for a login (a reseller's billing system,
    say) and see it once; they never see a stored token again, only its prefix."""

    list_display = ("name", "user", "display_prefix", "state", "created", "created_by",
                    "expires", "last_used")
    list_filter = ("revoked", "expires")
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user", "created_by")
    autocomplete_fields = ("user",)
    actions = ["revoke"]
    form = ApiTokenCreationForm

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, never removed: the change log points at it

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("user", "name", "expires")

    def save_model(self, request, obj, form, change):
        record, token = tokens.create(form.cleaned_data["user"], name=form.cleaned_data["name"],
                                      expires=form.cleaned_data.get("expires"),
                                      actor=request.user)
        obj.pk, obj.prefix = record.pk, record.prefix
        obj._state.adding = False
        request._new_api_token = token

    def save_related(self, request, form, formsets, change):
        pass

    def log_addition(self, request, obj, message):
        pass  # the change log (django-auditlog) records it, with the actor

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(request, "admin/provisioning/apitoken/created.html", {
            **self.admin_site.each_context(request), "title": _("API token created"),
            "token": request._new_api_token, "record": obj, "opts": self.model._meta})

    @admin.action(description=gettext_lazy("Revoke the selected API tokens"))
    def revoke(self, request, queryset):
        for token in queryset:
            tokens.revoke(token, actor=request.user)
        count = queryset.count()
        self.message_user(request, ngettext("%(count)s token revoked.", "%(count)s tokens revoked.",
                                            count) % {"count": count}, messages.SUCCESS)
