"""Organizations: the billing system's five calls — sign up (an organization with its first
user), suspend, resume, change hosting plan, terminate — and the list."""

from django.db.models import Count, OuterRef, Q, Subquery
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from panel.filtersets import OrganizationFilterSet
from provisioning import changelog, scoping, services
from provisioning import constants as c
from provisioning.models import Customer, CustomerAsset, HostingSpace, Role

from .. import serializers as s
from ..pagination import ChangeLogPagination
from .base import ApiViewSet
from .operations import int_param

ACCEPTED = OpenApiResponse(s.OperationSerializer, description="Accepted: Location names the "
                                                              "operation that provisions it.")


def reseller_of(user, reseller_id):
    """The reseller a sign-up is for: one in the login's scope (404 otherwise); a reseller's
    own login may leave it out."""
    account = scoping.account_of(user)
    resellers = scoping.visible_customers(user).filter(
        customer_type_id=c.RESELLER_ORGANIZATION).exclude(status_id=c.DELETED)
    if reseller_id is None:
        if account.role == Role.RESELLER_ADMIN:
            return account.customer
        return None
    try:
        return resellers.get(pk=reseller_id)
    except Customer.DoesNotExist:
        raise Http404("No such reseller.") from None


def subtree_filter(request, queryset, prefix=""):
    """?reseller=<id>: only that reseller's subtree (a reseller in the login's scope)."""
    reseller_id = int_param(request, "reseller")
    if reseller_id is None:
        return queryset
    try:
        reseller = scoping.visible_customers(request.user).filter(
            customer_type_id=c.RESELLER_ORGANIZATION).get(pk=reseller_id)
    except Customer.DoesNotExist:
        raise Http404("No such reseller.") from None
    return queryset.filter(scoping.subtree_q(reseller, prefix))


RESELLER_PARAMETER = OpenApiParameter("reseller", int, description="Only this reseller's "
                                                                   "subtree.")


@extend_schema(tags=["organizations"])
class OrganizationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Hosted organizations in the login's scope (a reseller's subtree; an organization's
    own accounts see their organization)."""

    serializer_class = s.OrganizationSerializer
    filterset_class = OrganizationFilterSet
    lookup_value_regex = r"\d+"
    permissions = {
        "list": "organization.view", "retrieve": "organization.view",
        "create": "organization.sign_up", "suspend": "organization.suspend",
        "resume": "organization.suspend", "destroy": "organization.delete",
        "hosting_plan": "organization.change_plan", "changes": "changelog.view",
    }

    def get_queryset(self):
        primary = CustomerAsset.objects.filter(
            customer=OuterRef("pk"), asset_type_id=c.PRIMARY_DOMAIN).values("name")[:1]
        space = HostingSpace.objects.filter(customer=OuterRef("pk")).exclude(
            status_id=c.DELETED).order_by("pk")
        queryset = scoping.organizations(self.request.user).select_related(
            "parent").prefetch_related("available_service_plans").annotate(
            primary_domain=Subquery(primary),
            hosting_plan_id=Subquery(space.values("hosting_plan_id")[:1]),
            hosting_plan_name=Subquery(space.values("hosting_plan__name")[:1]),
            user_count=Count("children", filter=Q(children__customer_type_id=c.BUSINESS_USER)
                             & ~Q(children__status_id=c.DELETED)))
        if self.action == "list":
            queryset = subtree_filter(self.request, queryset)
        return queryset

    def organization(self):
        """The organization again, with the annotations, after a change."""
        return self.get_queryset().get(pk=self.object.pk)

    @extend_schema(parameters=[RESELLER_PARAMETER])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.SignUpSerializer, responses={202: ACCEPTED})
    def create(self, request):
        """Sign an organization up: its primary administrator (the first user of the panel),
        its hosting space from a hosting plan, its primary domain — all or nothing."""
        data = self.parsed(s.SignUpSerializer)
        reseller = reseller_of(request.user, data.pop("reseller", None))
        if reseller is None:
            return Response({"detail": "Name the reseller that sells it.", "code": "invalid",
                             "reseller": ["This field is required."]},
                            status=status.HTTP_400_BAD_REQUEST)
        with self.collect() as operations:
            services.sign_up_organization(reseller=reseller, actor=request.user, **data)
        return self.accepted(operations)

    @extend_schema(request=None, responses={202: ACCEPTED, 200: s.OrganizationSerializer})
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        """Suspend: its users are disabled in the directory; its data stays readable and
        every write for it is refused until it is resumed."""
        return self._set_enabled(False)

    @extend_schema(request=None, responses={202: ACCEPTED, 200: s.OrganizationSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Resume (unsuspend): each user comes back in its own earlier state."""
        return self._set_enabled(True)

    def _set_enabled(self, enabled):
        with self.collect() as operations:
            services.set_enabled(self.object, enabled, actor=self.request.user)
        return self.accepted(operations, self.serialized(self.organization()))

    @extend_schema(request=s.HostingPlanChangeSerializer,
                   responses={200: s.OrganizationSerializer})
    @action(detail=True, methods=["post"], url_path="hosting-plan")
    def hosting_plan(self, request, pk=None):
        """Change the hosting plan (upgrade or downgrade). A plan whose limits are below
        what the organization uses is refused with 409 naming the quota."""
        data = self.parsed(s.HostingPlanChangeSerializer)
        services.change_hosting_plan(self.object, data["hosting_plan"], actor=request.user)
        return Response(self.serialized(self.organization()))

    @extend_schema(responses={202: ACCEPTED})
    def destroy(self, request, pk=None):
        """Terminate: the organization is marked deleted (its rows stay, its directory
        objects are disabled) and disappears from the lists."""
        with self.collect() as operations:
            services.delete_customer(self.object, actor=request.user)
        return self.accepted(operations, status_code=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=s.ChangeSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"])
    def changes(self, request, pk=None):
        """The change log: who changed what in the organization, its users, domains, hosting
        space, panel accounts and their API tokens, with the values before and after;
        newest first."""
        paginator = ChangeLogPagination()
        page = paginator.paginate_queryset(changelog.entries_of(self.object), request, self)
        return paginator.get_paginated_response(
            s.ChangeSerializer(page, many=True, context=self.get_serializer_context()).data)
