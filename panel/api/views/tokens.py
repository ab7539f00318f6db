"""A login's own API tokens: list, make (shown once), revoke; and who the caller is."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response

from provisioning import scoping, tokens
from provisioning.models import ApiToken

from .. import serializers as s
from .base import ApiView, ApiViewSet


@extend_schema(tags=["tokens"])
class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.TokenSerializer
    lookup_value_regex = r"\d+"
    ordering = "-pk"
    permissions = {"list": "token.manage", "retrieve": "token.manage",
                   "create": "token.manage", "destroy": "token.manage"}
    # The answer holds the token in clear: it is shown once, never stored for a replay.
    idempotent = False

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema's generator
            return ApiToken.objects.none()
        return tokens.tokens_of(self.request.user).select_related("user")

    @extend_schema(request=s.TokenCreateSerializer, responses={201: s.TokenCreatedSerializer})
    def create(self, request):
        """Make a token of the calling login. The answer holds the token itself, once."""
        data = self.parsed(s.TokenCreateSerializer)
        record, token = tokens.create(request.user, name=data["name"],
                                      expires=data.get("expires"), actor=request.user,
                                      made_with=request.auth)
        record.token = token
        url = request.build_absolute_uri(reverse("api:token-detail", args=[record.pk]))
        return Response(self.serialized(record, s.TokenCreatedSerializer),
                        status=status.HTTP_201_CREATED, headers={"Location": url})

    @extend_schema(responses={200: s.TokenSerializer})
    def destroy(self, request, pk=None):
        """Revoke the token for good (it stays listed as revoked)."""
        return Response(self.serialized(tokens.revoke(self.object, actor=request.user)))


@extend_schema(tags=["tokens"])
class MeView(ApiView):
    permissions = {"get": None}

    @extend_schema(responses=s.MeSerializer)
    def get(self, request):
        """The calling login: its role, its customer, what its role allows, its token."""
        account = scoping.account_of(request.user)
        token = request.auth if isinstance(request.auth, ApiToken) else None
        data = {"username": request.user.get_username(), "role": account.role,
                "customer": account.customer if account.customer_id else None,
                "permissions": sorted(p for p in scoping.PERMISSIONS
                                      if scoping.can(request.user, p)),
                "token": token}
        return Response(s.MeSerializer(data, context={"request": request}).data)
