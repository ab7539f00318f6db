"""An organization's panel accounts: the primary administrator and its peers. Nobody acts on
an account at or above their own role (provisioning.accounts, scoping.RANK)."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from provisioning import accounts, scoping
from provisioning.models import Account

from .. import serializers as s
from .base import ApiViewSet
from .operations import ORGANIZATION_PARAMETER, organization_of
from .users import body_organization


@extend_schema(tags=["peers"])
class PeerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.PeerSerializer
    lookup_value_regex = r"\d+"
    permissions = {"list": "peer.view", "retrieve": "peer.view", "create": "peer.manage",
                   "partial_update": "peer.manage", "destroy": "peer.manage",
                   "password": "peer.manage"}

    def get_queryset(self):
        peers = Account.objects.filter(
            customer__in=scoping.organizations(self.request.user),
            user__is_active=True).select_related("user")
        if self.action == "list":
            organization = organization_of(self.request)
            if organization is not None:
                peers = peers.filter(customer=organization)
        return peers

    @extend_schema(parameters=[ORGANIZATION_PARAMETER])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.PeerCreateSerializer, responses={201: s.PeerSerializer})
    def create(self, request):
        """A new panel account with a peer role below the caller's own."""
        data = self.parsed(s.PeerCreateSerializer)
        organization = body_organization(request, data)
        account = accounts.create_peer(organization, actor=request.user, **data)
        url = request.build_absolute_uri(reverse("api:peer-detail", args=[account.pk]))
        return Response(self.serialized(account), status=status.HTTP_201_CREATED,
                        headers={"Location": url})

    @extend_schema(request=s.PeerUpdateSerializer, responses={200: s.PeerSerializer})
    def partial_update(self, request, pk=None):
        """Change an account's role, e-mail and names (the primary administrator keeps its
        role)."""
        data = self.parsed(s.PeerUpdateSerializer)
        user = self.object.user
        account = accounts.update_peer(
            self.object, actor=request.user, role=data.get("role", self.object.role),
            email=data.get("email", user.email),
            first_name=data.get("first_name", user.first_name),
            last_name=data.get("last_name", user.last_name))
        return Response(self.serialized(account))

    @extend_schema(request=s.PasswordSerializer, responses={204: None})
    @action(detail=True, methods=["post"])
    def password(self, request, pk=None):
        """Set the account's panel password."""
        data = self.parsed(s.PasswordSerializer)
        accounts.set_peer_password(self.object, data["password"], actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        """Remove the account: its login is deactivated; its past actions stay in the
        logs."""
        accounts.remove_peer(self.object, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
