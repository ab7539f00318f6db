"""Bulk import of users from CSV, and the progress of their provisioning."""

import uuid

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.generic import FormView, TemplateView

from panel.forms.imports import COLUMNS, UserImportForm
from provisioning.models import Operation, OperationState

from .base import OrganizationMixin

SESSION_KEY = "user-imports"
EXAMPLE = ("display_name,given_name,surname,local_part,domain,service_plan,password\n"
           "Adele Vance,Adele,Vance,adele,{domain},{plan},Choose-A-Strong-One-1\n")


class UserImportView(OrganizationMixin, FormView):
    template_name = "panel/users/import.html"
    form_class = UserImportForm
    permission = "user.import"
    section = "users"
    title = _("Import users")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "organization": self.organization}

    def get_context_data(self, **kwargs):
        plan = self.organization.available_service_plans.order_by("name").first()
        domain = self.organization.assets.order_by("pk").first()
        return super().get_context_data(
            columns=COLUMNS, example=EXAMPLE.format(domain=domain or "contoso.com",
                                                    plan=plan or ""), **kwargs)

    def form_valid(self, form):
        try:
            operation_ids = form.save(actor=self.request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
            return self.form_invalid(form)
        batch = uuid.uuid4().hex
        imports = self.request.session.get(SESSION_KEY, {})
        imports[batch] = {"organization": self.organization.pk, "operations": operation_ids}
        # Only the latest few imports stay in the session.
        self.request.session[SESSION_KEY] = dict(list(imports.items())[-5:])
        return redirect("user_import_progress", self.organization.pk, batch)


class ImportBatchMixin(OrganizationMixin):
    permission = "user.import"
    section = "users"

    def resolve(self, request, *args, **kwargs):
        super().resolve(request, *args, **kwargs)
        batch = request.session.get(SESSION_KEY, {}).get(kwargs["batch"])
        if batch is None or batch["organization"] != self.organization.pk:
            raise Http404("No such import.")
        self.operation_ids = batch["operations"]

    def summary(self):
        states = dict.fromkeys(OperationState.values, 0)
        for state in Operation.objects.filter(scope=self.organization,
                                              pk__in=self.operation_ids).values_list(
                                                  "state", flat=True):
            states[state] += 1
        total = len(self.operation_ids)
        finished = states["succeeded"] + states["failed"] + states["cancelled"]
        return {"total": total, "finished": finished, "states": states,
                "percent": round(100 * finished / total) if total else 100,
                "done": finished == total}


class UserImportProgressView(ImportBatchMixin, TemplateView):
    template_name = "panel/users/import_progress.html"
    title = _("Import progress")

    def get_context_data(self, **kwargs):
        return super().get_context_data(summary=self.summary(), **kwargs)


class UserImportStatusView(ImportBatchMixin, View):
    def get(self, request, *args, **kwargs):
        return JsonResponse(self.summary())


class UserImportTemplateView(OrganizationMixin, View):
    """An example file to start from."""

    permission = "user.import"

    def get(self, request, *args, **kwargs):
        plan = self.organization.available_service_plans.order_by("name").first()
        domain = self.organization.assets.order_by("pk").first()
        response = HttpResponse(EXAMPLE.format(domain=domain or "", plan=plan or ""),
                                content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="users.csv"'
        return response
