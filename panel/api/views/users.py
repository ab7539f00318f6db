"""An organization's users: list (search, filters), create, rename, reset password,
disable/enable, change service plan, their mailbox's e-mail addresses and forwarding,
delete — each through the panel's service call."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from panel.filtersets import UserFilterSet
from provisioning import scoping, services
from provisioning.models import Customer, MailForwarding

from .. import serializers as s
from .base import ApiViewSet
from .operations import ORGANIZATION_PARAMETER, int_param, organization_of

ACCEPTED = OpenApiResponse(s.OperationSerializer, description="Accepted: Location names the "
                                                              "operation that carries it.")


def body_organization(request, data):
    """The `organization` a body names: one in the login's scope, 404 otherwise."""
    return scoping.get_organization_or_404(request.user, data.pop("organization"))


@extend_schema(tags=["users"])
class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """The users of the organizations in the login's scope (deleted ones are gone)."""

    serializer_class = s.UserSerializer
    filterset_class = UserFilterSet
    lookup_value_regex = r"\d+"
    permissions = {
        "list": "user.view", "retrieve": "user.view", "create": "user.create",
        "partial_update": "user.edit", "destroy": "user.delete",
        "password": "user.reset_password", "enable": "user.set_enabled",
        "disable": "user.set_enabled", "service_plan": "user.change_plan",
        "addresses": "user.view", "set_addresses": "user.edit",
        "forwarding": "user.view", "set_forwarding": "user.edit",
    }

    def get_queryset(self):
        queryset = Customer.objects.filter(
            parent__in=scoping.organizations(self.request.user)).users().live()
        if self.action == "list":
            organization = organization_of(self.request)
            if organization is not None:
                queryset = queryset.filter(parent_id=organization.pk)
            plan = int_param(self.request, "service_plan")
            if plan is not None:
                queryset = queryset.filter(service_plan_id=plan)
        return queryset.select_related("service_plan")

    def user(self):
        return self.get_queryset().get(pk=self.object.pk)

    @extend_schema(parameters=[ORGANIZATION_PARAMETER,
                               OpenApiParameter("service_plan", int,
                                                description="Only users on this plan.")])
    def list(self, request, *args, **kwargs):
        """Users, by id; `q` searches display names and logon names."""
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.UserCreateSerializer, responses={202: ACCEPTED})
    def create(self, request):
        """Create a user (and its mailbox with a service plan), within the quotas."""
        data = self.parsed(s.UserCreateSerializer)
        organization = body_organization(request, data)
        with self.collect() as operations:
            services.create_user(organization, actor=request.user, **data)
        return self.accepted(operations)

    @extend_schema(request=s.UserUpdateSerializer, responses={202: ACCEPTED})
    def partial_update(self, request, pk=None):
        """Rename: the display name (and the directory's first and last name)."""
        data = self.parsed(s.UserUpdateSerializer)
        with self.collect() as operations:
            services.update_user(self.object, display_name=data.get("display_name",
                                                                    self.object.name),
                                 given_name=data.get("given_name"),
                                 surname=data.get("surname"), actor=request.user)
        return self.accepted(operations, self.serialized(self.user()))

    @extend_schema(request=s.PasswordSerializer, responses={202: ACCEPTED})
    @action(detail=True, methods=["post"])
    def password(self, request, pk=None):
        """Set a new password in the directory."""
        data = self.parsed(s.PasswordSerializer)
        with self.collect() as operations:
            services.reset_password(self.object, data["password"], actor=request.user)
        return self.accepted(operations)

    @extend_schema(request=None, responses={202: ACCEPTED, 200: s.UserSerializer})
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        """Disable: the user cannot sign in; the mailbox is kept."""
        return self._set_enabled(False)

    @extend_schema(request=None, responses={202: ACCEPTED, 200: s.UserSerializer})
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        return self._set_enabled(True)

    def _set_enabled(self, enabled):
        with self.collect() as operations:
            services.set_enabled(self.object, enabled, actor=self.request.user)
        return self.accepted(operations, self.serialized(self.user()))

    @extend_schema(request=s.ServicePlanChangeSerializer,
                   responses={202: ACCEPTED, 200: s.UserSerializer})
    @action(detail=True, methods=["post"], url_path="service-plan")
    def service_plan(self, request, pk=None):
        """Move the user to another of the organization's service plans, within the
        quotas (null: no mailbox)."""
        data = self.parsed(s.ServicePlanChangeSerializer)
        with self.collect() as operations:
            services.change_plan(self.object, data["service_plan"], actor=request.user)
        return self.accepted(operations, self.serialized(self.user()))

    # -- the mailbox's mail flow -----------------------------------------------------------

    @extend_schema(responses=s.MailAddressesSerializer)
    @action(detail=True, methods=["get"])
    def addresses(self, request, pk=None):
        """The mailbox's e-mail addresses: its primary one and the additional ones."""
        primary, addresses = services.mail_addresses_of(self.object)
        return Response({"primary": primary, "addresses": addresses})

    @extend_schema(request=s.MailAddressesUpdateSerializer,
                   responses={202: ACCEPTED, 200: s.MailAddressesSerializer})
    @addresses.mapping.post
    def set_addresses(self, request, pk=None):
        """Give the mailbox exactly these additional addresses (on the organization's own
        domains, no other recipient's) and a primary address (its logon name or one of
        them; left out: the current one, if it stays)."""
        data = self.parsed(s.MailAddressesUpdateSerializer)
        with self.collect() as operations:
            services.set_email_addresses(self.object, actor=request.user, **data)
        primary, addresses = services.mail_addresses_of(self.object)
        return self.accepted(operations, {"primary": primary, "addresses": addresses})

    def _forwarding(self):
        forwarding = MailForwarding.objects.filter(customer_id=self.object.pk).select_related(
            "recipient").first()
        if forwarding is None:
            return {"forward_to": None, "recipient": None, "keep_copy": False}
        return {"forward_to": forwarding.target, "recipient": forwarding.recipient_id,
                "keep_copy": forwarding.keep_copy}

    @extend_schema(responses=s.ForwardingSerializer)
    @action(detail=True, methods=["get"])
    def forwarding(self, request, pk=None):
        """Where the mailbox's mail is forwarded, if anywhere."""
        return Response(self._forwarding())

    @extend_schema(request=s.ForwardingUpdateSerializer,
                   responses={202: ACCEPTED, 200: s.ForwardingSerializer})
    @forwarding.mapping.post
    def set_forwarding(self, request, pk=None):
        """Forward the mailbox's mail to another user of the organization or to an external
        address, with or without a copy kept; an empty `forward_to` stops forwarding. A
        recipient or domain of another organization is refused."""
        data = self.parsed(s.ForwardingUpdateSerializer)
        with self.collect() as operations:
            services.set_forwarding(self.object, actor=request.user,
                                    forward_to=data["forward_to"] or "",
                                    keep_copy=data["keep_copy"])
        return self.accepted(operations, self._forwarding())

    @extend_schema(responses={202: ACCEPTED})
    def destroy(self, request, pk=None):
        """Delete: removed from the directory, its mailbox disconnected; its place in the
        quota is freed."""
        with self.collect() as operations:
            services.delete_customer(self.object, actor=request.user)
        return self.accepted(operations, status_code=status.HTTP_204_NO_CONTENT)
