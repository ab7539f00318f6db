"""What every panel page shares: sign-in and two-factor checks, the role's permissions, the
organization resolved through `provisioning.scoping`, and service errors shown on forms."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import FormView, TemplateView
from django_tables2 import RequestConfig

from panel.forms import apply_errors
from provisioning import scoping, two_factor
from provisioning.models import Customer


class ObjectListMixin:
    """An object list as NetBox builds it: the view's scoped queryset, filtered by its
    filterset, shown by its table, paginated."""

    filterset_class = None
    table_class = None
    per_page = 50

    def get_queryset(self):
        raise NotImplementedError

    def get_filterset(self):
        return self.filterset_class(self.request.GET, queryset=self.get_queryset())

    def get_context_data(self, **kwargs):
        filterset = self.get_filterset()
        table = self.table_class(filterset.qs)
        RequestConfig(self.request, paginate={"per_page": self.per_page}).configure(table)
        return super().get_context_data(table=table, filter=filterset, **kwargs)


class Permissions:
    """Lets templates ask `{% if can.user_create %}` for the permission "user.create"."""

    def __init__(self, user):
        self.user = user

    def __getitem__(self, key):
        return scoping.can(self.user, key.replace("_", ".", 1))


def two_factor_redirect(request, next_url=None):
    """Where a signed-in user goes first if its session still owes the second factor (see
    `provisioning.two_factor.step_due`): the code page, or enrolment when the provider
    requires it. None once nothing is owed."""
    step = two_factor.step_due(request.user)
    if step is None:
        return None
    query = urlencode({"next": next_url or request.get_full_path()})
    if step == two_factor.VERIFY:
        return redirect(f"{reverse('two_factor_verify')}?{query}")
    messages.info(request, _("Your provider requires two-factor authentication: "
                             "set it up to continue."))
    return redirect(f"{reverse('two_factor_setup')}?{query}")


class SignedInMixin:
    """Signed in, nothing more: the pages of one's own sign-in (the second factor), which
    provider staff without a panel account reach from the admin too."""

    title = ""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")
        self.account = scoping.account_of(request.user)
        response = self.check(request, *args, **kwargs)
        if response is not None:
            return response
        return super().dispatch(request, *args, **kwargs)

    def check(self, request, *args, **kwargs):
        """A response that replaces the page (a redirect), or None to show it."""
        return None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("title", self.title)
        context.update(account=self.account, can=Permissions(self.request.user),
                       home_organization=scoping.home_organization(self.request.user))
        return context


class PanelMixin(SignedInMixin):
    """Signed in, past two-factor, with a panel account whose role allows `permission`."""

    permission = None

    def check(self, request, *args, **kwargs):
        if self.account is None:
            raise PermissionDenied(_("This login has no panel account."))
        response = two_factor_redirect(request)
        if response is not None:
            return response
        # Resolve the objects first, so a foreign id answers 404 whatever the role.
        self.resolve(request, *args, **kwargs)
        if self.permission:
            scoping.require(request.user, self.permission)
        return None

    def resolve(self, request, *args, **kwargs):
        pass


class OrganizationMixin(PanelMixin):
    """Pages under /organizations/<org_id>/: the organization comes from the user's scope."""

    section = ""

    def resolve(self, request, *args, **kwargs):
        self.organization = scoping.get_organization_or_404(request.user, kwargs["org_id"])
        super().resolve(request, *args, **kwargs)

    def organization_users(self):
        return Customer.objects.filter(parent_id=self.organization.pk).users().live()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(organization=self.organization, section=self.section)
        return context


class UserMixin(OrganizationMixin):
    section = "users"
    # What the page reads of the user, in the query that finds it.
    related = ("service_plan",)

    def resolve(self, request, *args, **kwargs):
        super().resolve(request, *args, **kwargs)
        self.customer = get_object_or_404(
            self.organization_users().select_related(*self.related), pk=kwargs["user_id"])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["customer"] = self.customer
        return context

    def get_success_url(self):
        # A change to one user returns to its page; a deletion says otherwise.
        return reverse("user", args=[self.organization.pk, self.customer.pk])


class ServiceFormView(FormView):
    """A form whose valid data goes to one service call; its ValidationError returns to the
    form, field by field."""

    success_message = ""

    def perform(self, form):
        raise NotImplementedError

    def form_valid(self, form):
        try:
            self.result = self.perform(form)
        except ValidationError as exc:
            apply_errors(form, exc)
            return self.form_invalid(form)
        if self.success_message:
            messages.success(self.request, self.success_message.format(form=form,
                                                                       result=self.result))
        return redirect(self.get_success_url())


class ConfirmView(TemplateView):
    """GET asks "are you sure?", POST does it: destructive actions never run on a link."""

    template_name = "panel/confirm.html"
    question = ""
    detail = ""
    button = _("Confirm")
    danger = True
    success_message = ""

    def perform(self):
        raise NotImplementedError

    def get_success_url(self):
        raise NotImplementedError

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(question=self.question.format(view=self),
                       detail=self.detail.format(view=self), button=self.button,
                       danger=self.danger, cancel_url=self.get_success_url())
        return context

    def post(self, request, *args, **kwargs):
        try:
            self.perform()
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            if self.success_message:
                messages.success(request, self.success_message.format(view=self))
        return redirect(self.get_success_url())
