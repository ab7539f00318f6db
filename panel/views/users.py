"""An organization's users: list, create, edit, password, enable/disable, plan, delete."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from panel.filtersets import UserFilterSet
from panel.forms import NewPasswordForm
from panel.forms.users import (
    ChangePlanForm,
    EmailAddressesForm,
    ForwardingForm,
    UserCreateForm,
    UserEditForm,
)
from panel.tables import UserTable
from provisioning import services
from provisioning.models import Operation

from .base import ConfirmView, ObjectListMixin, OrganizationMixin, ServiceFormView, UserMixin


class UserListView(OrganizationMixin, ObjectListMixin, TemplateView):
    template_name = "panel/users/list.html"
    permission = "user.view"
    section = "users"
    title = _("Users")
    filterset_class = UserFilterSet
    table_class = UserTable

    def get_queryset(self):
        return self.organization_users().select_related("service_plan").order_by("name", "pk")


class UserCreateView(OrganizationMixin, ServiceFormView):
    template_name = "panel/users/form.html"
    form_class = UserCreateForm
    permission = "user.create"
    section = "users"
    title = _("New user")
    success_message = _("{result.upn} is created and being provisioned.")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "organization": self.organization}

    def perform(self, form):
        return services.create_user(self.organization, actor=self.request.user,
                                    **form.service_arguments())

    def get_success_url(self):
        return reverse("user", args=[self.organization.pk, self.result.pk])


class UserDetailView(UserMixin, TemplateView):
    template_name = "panel/users/detail.html"
    permission = "user.view"
    related = ("service_plan", "mail_forwarding__recipient")

    def get_context_data(self, **kwargs):
        user = self.customer
        if user.service_plan_id:
            kwargs["primary_address"], kwargs["mail_addresses"] = services.mail_addresses_of(user)
            kwargs["forwarding"] = getattr(user, "mail_forwarding", None)
        return super().get_context_data(
            title=user.name,
            events=user.events.select_related("actor")[:10],
            operations=Operation.objects.filter(customer=user).order_by("-pk")[:10],
            features=user.service_plan.feature_values() if user.service_plan else {},
            **kwargs)


class UserEditView(UserMixin, ServiceFormView):
    template_name = "panel/users/form.html"
    form_class = UserEditForm
    permission = "user.edit"
    title = _("Edit user")
    success_message = _("{result.name} is saved.")

    def get_initial(self):
        return {"display_name": self.customer.name}

    def perform(self, form):
        return services.update_user(self.customer, actor=self.request.user,
                                    **form.cleaned_data)


class UserPasswordView(UserMixin, ServiceFormView):
    template_name = "panel/users/form.html"
    form_class = NewPasswordForm
    permission = "user.reset_password"
    title = _("Reset password")
    success_message = _("The new password is being set in the directory.")

    def perform(self, form):
        return services.reset_password(self.customer, form.cleaned_data["password"],
                                       actor=self.request.user)


class UserPlanView(UserMixin, ServiceFormView):
    template_name = "panel/users/form.html"
    form_class = ChangePlanForm
    permission = "user.change_plan"
    title = _("Change service plan")
    success_message = _("The plan is changed; the mailbox is being updated.")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "organization": self.organization}

    def get_initial(self):
        return {"service_plan": self.customer.service_plan_id}

    def perform(self, form):
        return services.change_plan(self.customer, form.cleaned_data["service_plan"],
                                    actor=self.request.user)


class UserEnableView(UserMixin, ConfirmView):
    permission = "user.set_enabled"
    enable = True

    def get_context_data(self, **kwargs):
        if self.enable:
            self.question = _("Enable {view.customer.name} ({view.customer.upn})?")
            self.detail = _("They can sign in and receive mail again.")
            self.button = _("Enable")
        else:
            self.question = _("Disable {view.customer.name} ({view.customer.upn})?")
            self.detail = _("They cannot sign in until enabled again; their mailbox is kept.")
            self.button = _("Disable")
        self.danger = not self.enable
        return super().get_context_data(**kwargs)

    def perform(self):
        services.set_enabled(self.customer, self.enable, actor=self.request.user)
        self.success_message = (_("{view.customer.upn} is enabled.") if self.enable
                                else _("{view.customer.upn} is disabled."))


class UserDeleteView(UserMixin, ConfirmView):
    permission = "user.delete"
    question = _("Delete {view.customer.name} ({view.customer.upn})?")
    detail = _("The user is removed from the directory and its mailbox is disconnected. "
               "This frees a place in the organization's quota.")
    button = _("Delete user")
    success_message = _("{view.customer.upn} is deleted.")

    def perform(self):
        services.delete_customer(self.customer, actor=self.request.user)

    def get_success_url(self):
        return reverse("users", args=[self.organization.pk])


class UserMailboxConnectionView(UserMixin, ConfirmView):
    """Disconnect the user's mailbox (Exchange keeps it), or reconnect it."""

    permission = "user.edit"
    connect = False

    def get_context_data(self, **kwargs):
        if self.connect:
            self.question = _("Reconnect the mailbox of {view.customer.name} "
                              "({view.customer.upn})?")
            self.detail = _("The mailbox Exchange kept is connected again, with the plan's "
                            "settings, its addresses and its forwarding.")
            self.button = _("Reconnect mailbox")
        else:
            self.question = _("Disconnect the mailbox of {view.customer.name} "
                              "({view.customer.upn})?")
            self.detail = _("The user keeps its account and plan, and receives no mail. "
                            "Exchange keeps the mailbox and its data for its retention time; "
                            "reconnect it to bring it back.")
            self.button = _("Disconnect mailbox")
        self.danger = not self.connect
        return super().get_context_data(**kwargs)

    def perform(self):
        if self.connect:
            services.reconnect_mailbox(self.customer, actor=self.request.user)
            self.success_message = _("The mailbox of {view.customer.upn} is being reconnected.")
        else:
            services.disconnect_mailbox(self.customer, actor=self.request.user)
            self.success_message = _("The mailbox of {view.customer.upn} is being "
                                     "disconnected.")


# --- Mail flow (issue #12) -----------------------------------------------------------------


class UserEmailAddressesView(UserMixin, ServiceFormView):
    template_name = "panel/users/form.html"
    form_class = EmailAddressesForm
    permission = "user.edit"
    title = _("E-mail addresses")
    success_message = _("The addresses are saved; the mailbox is being updated.")

    def get_form_kwargs(self):
        domains = sorted(services.organization_domains(self.organization))
        return {**super().get_form_kwargs(), "domains": domains}

    def get_initial(self):
        primary, additional = services.mail_addresses_of(self.customer)
        return {"primary": primary, "addresses": "\n".join(additional)}

    def perform(self, form):
        return services.set_email_addresses(self.customer, actor=self.request.user,
                                            **form.cleaned_data)


class UserForwardingView(UserMixin, ServiceFormView):
    template_name = "panel/users/form.html"
    form_class = ForwardingForm
    permission = "user.edit"
    title = _("Forwarding")
    success_message = _("The forwarding is saved; the mailbox is being updated.")
    related = ("service_plan", "mail_forwarding__recipient")

    def get_initial(self):
        forwarding = getattr(self.customer, "mail_forwarding", None)
        if forwarding is None:
            return {}
        return {"forward_to": forwarding.target, "keep_copy": forwarding.keep_copy}

    def perform(self, form):
        return services.set_forwarding(self.customer, actor=self.request.user,
                                       **form.cleaned_data)
