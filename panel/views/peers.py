"""An organization's panel accounts: the primary administrator and its peers."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from django_tables2 import RequestConfig

from panel.forms import NewPasswordForm
from panel.forms.peers import PeerCreateForm, PeerEditForm
from panel.tables import PeerTable
from provisioning import accounts, scoping

from .base import ConfirmView, OrganizationMixin, ServiceFormView


class PeerListView(OrganizationMixin, TemplateView):
    template_name = "panel/organization/peers.html"
    permission = "peer.view"
    section = "peers"
    title = _("Panel accounts")

    def get_context_data(self, **kwargs):
        peers = list(accounts.peers_of(self.organization))
        for peer in peers:
            peer.manageable = scoping.outranks(self.request.user, peer)
        table = PeerTable(peers)
        RequestConfig(self.request, paginate={"per_page": 50}).configure(table)
        return super().get_context_data(table=table, **kwargs)


class PeerMixin(OrganizationMixin):
    section = "peers"
    permission = "peer.manage"

    def resolve(self, request, *args, **kwargs):
        super().resolve(request, *args, **kwargs)
        self.peer = get_object_or_404(accounts.peers_of(self.organization),
                                      pk=kwargs["account_id"])
        if not scoping.outranks(request.user, self.peer):
            raise PermissionDenied(_("You cannot change an account whose role is not below "
                                       "yours."))

    def get_success_url(self):
        return reverse("peers", args=[self.organization.pk])

    def get_context_data(self, **kwargs):
        return super().get_context_data(peer=self.peer, **kwargs)


class PeerCreateView(OrganizationMixin, ServiceFormView):
    template_name = "panel/organization/peer_form.html"
    form_class = PeerCreateForm
    permission = "peer.manage"
    section = "peers"
    title = _("New panel account")
    success_message = _("{result.user.username} can now sign in as {result.role_label}.")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "actor": self.request.user}

    def perform(self, form):
        return accounts.create_peer(self.organization, actor=self.request.user,
                                    **form.cleaned_data)

    def get_success_url(self):
        return reverse("peers", args=[self.organization.pk])


class PeerEditView(PeerMixin, ServiceFormView):
    template_name = "panel/organization/peer_form.html"
    form_class = PeerEditForm
    title = _("Edit panel account")
    success_message = _("{result.user.username} is saved.")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "actor": self.request.user, "account": self.peer}

    def get_initial(self):
        user = self.peer.user
        return {"first_name": user.first_name, "last_name": user.last_name,
                "email": user.email, "role": self.peer.role}

    def perform(self, form):
        return accounts.update_peer(self.peer, actor=self.request.user, **form.cleaned_data)


class PeerPasswordView(PeerMixin, ServiceFormView):
    template_name = "panel/organization/peer_form.html"
    form_class = NewPasswordForm
    title = _("Set panel password")
    success_message = _("The password of {result.user.username} is changed.")

    def perform(self, form):
        return accounts.set_peer_password(self.peer, form.cleaned_data["password"],
                                          actor=self.request.user)


class PeerRemoveView(PeerMixin, ConfirmView):
    question = _("Remove the panel account {view.peer.user.username}?")
    detail = _("It can no longer sign in. Its past actions stay in the logs.")
    button = _("Remove account")
    success_message = _("{view.peer.user.username} is removed.")

    def perform(self):
        accounts.remove_peer(self.peer, actor=self.request.user)
