"""An organization's mail contacts (issue #12): list, create, delete."""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from panel.filtersets import ContactFilterSet
from panel.forms.contacts import ContactCreateForm
from panel.tables import ContactTable
from provisioning import scoping, services
from provisioning.models import MailContact

from .base import ConfirmView, ObjectListMixin, OrganizationMixin, ServiceFormView


class ContactMixin(OrganizationMixin):
    section = "contacts"

    def organization_contacts(self):
        # Bounded by the organization resolved through the user's scope.
        return MailContact.objects.filter(organization_id=self.organization.pk).live()


class ContactListView(ContactMixin, ObjectListMixin, TemplateView):
    template_name = "panel/contacts/list.html"
    permission = "contact.view"
    title = _("Mail contacts")
    filterset_class = ContactFilterSet
    table_class = ContactTable

    def get_queryset(self):
        return self.organization_contacts().order_by("name", "pk")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if not scoping.can(self.request.user, "contact.delete"):
            context["table"].columns.hide("actions")
        return context


class ContactCreateView(ContactMixin, ServiceFormView):
    template_name = "panel/contacts/form.html"
    form_class = ContactCreateForm
    permission = "contact.create"
    title = _("New mail contact")
    success_message = _("{result.name} is created and being provisioned.")

    def perform(self, form):
        return services.create_contact(self.organization, actor=self.request.user,
                                       **form.cleaned_data)

    def get_success_url(self):
        return reverse("contacts", args=[self.organization.pk])


class ContactDeleteView(ContactMixin, ConfirmView):
    permission = "contact.delete"
    question = _("Delete the mail contact {view.contact.name} ({view.contact.email})?")
    detail = _("It is removed from Exchange and from the organization's address lists. This "
               "frees a place in the organization's quota.")
    button = _("Delete contact")
    success_message = _("{view.contact.name} is deleted.")

    def resolve(self, request, *args, **kwargs):
        super().resolve(request, *args, **kwargs)
        self.contact = get_object_or_404(self.organization_contacts(),
                                         pk=kwargs["contact_id"])

    def perform(self):
        services.delete_contact(self.contact, actor=self.request.user)

    def get_success_url(self):
        return reverse("contacts", args=[self.organization.pk])
