"""An organization's mail contacts: list (search, status), create within the quota
`mail_contacts`, delete — each through the panel's service call."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status

from panel.filtersets import ContactFilterSet
from provisioning import scoping, services
from provisioning.models import MailContact

from .. import serializers as s
from .base import ApiViewSet
from .operations import ORGANIZATION_PARAMETER, organization_of
from .users import body_organization

ACCEPTED = OpenApiResponse(s.OperationSerializer, description="Accepted: Location names the "
                                                              "operation that carries it.")


@extend_schema(tags=["contacts"])
class ContactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """The mail contacts of the organizations in the login's scope (deleted ones are
    gone)."""

    serializer_class = s.ContactSerializer
    filterset_class = ContactFilterSet
    lookup_value_regex = r"\d+"
    permissions = {
        "list": "contact.view", "retrieve": "contact.view", "create": "contact.create",
        "destroy": "contact.delete",
    }

    def get_queryset(self):
        queryset = MailContact.objects.filter(
            organization__in=scoping.organizations(self.request.user)).live()
        if self.action == "list":
            organization = organization_of(self.request)
            if organization is not None:
                queryset = queryset.filter(organization_id=organization.pk)
        return queryset

    @extend_schema(parameters=[ORGANIZATION_PARAMETER])
    def list(self, request, *args, **kwargs):
        """Mail contacts, by id; `q` searches names and addresses."""
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.ContactCreateSerializer, responses={202: ACCEPTED})
    def create(self, request):
        """Create a mail contact (an external address in the organization's address
        lists), within the quota `mail_contacts`."""
        data = self.parsed(s.ContactCreateSerializer)
        organization = body_organization(request, data)
        with self.collect() as operations:
            services.create_contact(organization, actor=request.user, **data)
        return self.accepted(operations)

    @extend_schema(responses={202: ACCEPTED})
    def destroy(self, request, pk=None):
        """Delete: removed from Exchange and the address lists; its place in the quota is
        freed at once."""
        with self.collect() as operations:
            services.delete_contact(self.object, actor=request.user)
        return self.accepted(operations, status_code=status.HTTP_204_NO_CONTENT)
