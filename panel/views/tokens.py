"""A login's API tokens (provisioning.tokens): list, make one (shown once, on the answer to
the form, and nowhere else), revoke."""

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.urls import reverse

from panel.forms import apply_errors
from panel.forms.tokens import ApiTokenForm
from provisioning import tokens

from .base import ConfirmView, PanelMixin, ServiceFormView


class ApiTokenListView(PanelMixin, ServiceFormView):
    template_name = "panel/account/api_tokens.html"
    form_class = ApiTokenForm
    permission = "token.manage"
    title = "API tokens"

    def perform(self, form):
        return tokens.create(self.request.user, actor=self.request.user,
                             **form.service_arguments())

    def form_valid(self, form):
        # Not a redirect: the token is shown in this answer only, never stored in clear.
        try:
            record, token = self.perform(form)
        except ValidationError as exc:
            apply_errors(form, exc)
            return self.form_invalid(form)
        return self.render_to_response(self.get_context_data(
            form=self.form_class(), new_token=token, new_record=record))

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            api_tokens=tokens.tokens_of(self.request.user).select_related("created_by"),
            **kwargs)


class ApiTokenRevokeView(PanelMixin, ConfirmView):
    permission = "token.manage"
    question = "Revoke the API token “{view.token.name}” ({view.token.display_prefix}…)?"
    detail = "Programs that use it are refused from now on. This cannot be undone."
    button = "Revoke token"
    success_message = "The token “{view.token.name}” is revoked."

    def resolve(self, request, *args, **kwargs):
        self.token = get_object_or_404(tokens.tokens_of(request.user), pk=kwargs["token_id"])

    def perform(self):
        tokens.revoke(self.token, actor=self.request.user)

    def get_success_url(self):
        return reverse("api_tokens")
