from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView

from .views import (
    auth,
    contacts,
    healthz,
    imports,
    organizations,
    peers,
    readyz,
    reseller,
    tokens,
    users,
)
from .views.metrics import metrics
from .views.status import provider_status

handler403 = "panel.views.errors.permission_denied"
handler404 = "panel.views.errors.page_not_found"
handler500 = "panel.views.errors.server_error"

account_urls = [
    path("login/", auth.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(),
         name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(),
         name="password_reset_complete"),
    path("two-factor/", auth.TwoFactorSetupView.as_view(), name="two_factor_setup"),
    path("two-factor/verify/", auth.TwoFactorVerifyView.as_view(), name="two_factor_verify"),
    path("two-factor/recovery-codes/", auth.RecoveryCodesView.as_view(),
         name="two_factor_recovery_codes"),
    path("preferences/", auth.PreferencesView.as_view(), name="preferences"),
    path("api-tokens/", tokens.ApiTokenListView.as_view(), name="api_tokens"),
    path("api-tokens/<int:token_id>/revoke/", tokens.ApiTokenRevokeView.as_view(),
         name="api_token_revoke"),
    path("no-account/", TemplateView.as_view(template_name="panel/no_account.html"),
         name="no_account"),
]

organization_urls = [
    path("", organizations.DashboardView.as_view(), name="organization"),
    path("suspend/", reseller.SuspendView.as_view(enable=False), name="organization_suspend"),
    path("resume/", reseller.SuspendView.as_view(enable=True), name="organization_resume"),
    path("hosting-plan/", reseller.HostingPlanChangeView.as_view(),
         name="organization_hosting_plan"),
    path("delete/", reseller.OrganizationDeleteView.as_view(), name="organization_delete"),
    path("users/", users.UserListView.as_view(), name="users"),
    path("users/new/", users.UserCreateView.as_view(), name="user_create"),
    path("users/import/", imports.UserImportView.as_view(), name="user_import"),
    path("users/import/example.csv", imports.UserImportTemplateView.as_view(),
         name="user_import_example"),
    path("users/import/<str:batch>/", imports.UserImportProgressView.as_view(),
         name="user_import_progress"),
    path("users/import/<str:batch>/status.json", imports.UserImportStatusView.as_view(),
         name="user_import_status"),
    path("users/<int:user_id>/", users.UserDetailView.as_view(), name="user"),
    path("users/<int:user_id>/edit/", users.UserEditView.as_view(), name="user_edit"),
    path("users/<int:user_id>/password/", users.UserPasswordView.as_view(),
         name="user_password"),
    path("users/<int:user_id>/plan/", users.UserPlanView.as_view(), name="user_plan"),
    path("users/<int:user_id>/enable/", users.UserEnableView.as_view(enable=True),
         name="user_enable"),
    path("users/<int:user_id>/disable/", users.UserEnableView.as_view(enable=False),
         name="user_disable"),
    path("users/<int:user_id>/delete/", users.UserDeleteView.as_view(), name="user_delete"),
    path("users/<int:user_id>/mailbox/disconnect/",
         users.UserMailboxConnectionView.as_view(connect=False), name="user_mailbox_disconnect"),
    path("users/<int:user_id>/mailbox/reconnect/",
         users.UserMailboxConnectionView.as_view(connect=True), name="user_mailbox_reconnect"),
    # Mail flow (issue #12).
    path("users/<int:user_id>/addresses/", users.UserEmailAddressesView.as_view(),
         name="user_addresses"),
    path("users/<int:user_id>/forwarding/", users.UserForwardingView.as_view(),
         name="user_forwarding"),
    path("domains/", organizations.DomainListView.as_view(), name="domains"),
    path("contacts/", contacts.ContactListView.as_view(), name="contacts"),
    path("contacts/new/", contacts.ContactCreateView.as_view(), name="contact_create"),
    path("contacts/<int:contact_id>/delete/", contacts.ContactDeleteView.as_view(),
         name="contact_delete"),
    path("peers/", peers.PeerListView.as_view(), name="peers"),
    path("peers/new/", peers.PeerCreateView.as_view(), name="peer_create"),
    path("peers/<int:account_id>/edit/", peers.PeerEditView.as_view(), name="peer_edit"),
    path("peers/<int:account_id>/password/", peers.PeerPasswordView.as_view(),
         name="peer_password"),
    path("peers/<int:account_id>/remove/", peers.PeerRemoveView.as_view(), name="peer_remove"),
    path("events/", organizations.OrganizationEventListView.as_view(),
         name="organization_events"),
    path("operations/", organizations.OperationListView.as_view(), name="operations"),
    path("operations/<int:operation_id>/retry/", organizations.OperationRetryView.as_view(),
         name="operation_retry"),
    path("changes/", organizations.ChangeLogView.as_view(), name="changelog"),
]

urlpatterns = [
    path("admin/status/", admin.site.admin_view(provider_status), name="provider_status"),
    path("admin/", admin.site.urls),
    # Answered by panel.middleware.ProbeMiddleware first; named here for reverse().
    path("api/", include("panel.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("", auth.HomeView.as_view(), name="home"),
    path("account/", include(account_urls)),
    path("organizations/", reseller.OrganizationListView.as_view(), name="organizations"),
    path("organizations/new/", reseller.SignUpView.as_view(), name="sign_up"),
    path("organizations/<int:org_id>/", include(organization_urls)),
    path("hosting-spaces/", reseller.HostingSpaceListView.as_view(), name="hosting_spaces"),
    path("events/", reseller.EventListView.as_view(), name="events"),
]
