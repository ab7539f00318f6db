"""What can be sold and what is used: hosting plans a login may sell, service plans (an
organization's available ones), domains, and hosting spaces with their quota usage."""

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins

from provisioning import constants as c
from provisioning import quotas, scoping, services
from provisioning.models import CustomerAsset, HostingSpace
from servicplans.models import PlanFeature, ServicePlan

from .. import serializers as s
from .base import ApiViewSet
from .operations import ORGANIZATION_PARAMETER, organization_of
from .users import body_organization


@extend_schema(tags=["catalog"])
class HostingPlanViewSet(mixins.ListModelMixin, ApiViewSet):
    """The hosting plans the login may sign organizations up on or move them to."""

    serializer_class = s.HostingPlanSerializer
    permissions = {"list": "organization.sign_up"}

    def get_queryset(self):
        return services.hosting_plans_for(self.request.user).prefetch_related("quotas")


@extend_schema(tags=["catalog"])
class ServicePlanViewSet(mixins.ListModelMixin, ApiViewSet):
    """Active service plans (for a reseller, what it may make available at sign-up); with
    ?organization=, and for an organization's own logins, those the organization may give
    its users."""

    serializer_class = s.ServicePlanSerializer
    permissions = {"list": "organization.view"}

    def get_queryset(self):
        # An organization's own logins see its plans; a reseller the whole catalog it sells.
        organization = organization_of(self.request) or scoping.home_organization(
            self.request.user)
        plans = (organization.available_service_plans.all() if organization is not None
                 else ServicePlan.objects.all())
        return plans.filter(is_active=True).select_related("category").prefetch_related(
            Prefetch("features", PlanFeature.objects.select_related("feature_type")))

    @extend_schema(parameters=[ORGANIZATION_PARAMETER])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


@extend_schema(tags=["domains"])
class DomainViewSet(mixins.ListModelMixin, ApiViewSet):
    """Organizations' domains: the primary one, secondary and vanity domains."""

    serializer_class = s.DomainSerializer
    permissions = {"list": "domain.view", "create": "domain.add"}

    def get_queryset(self):
        domains = CustomerAsset.objects.filter(
            customer__in=scoping.organizations(self.request.user)).exclude(
            status_id=c.DELETED)
        organization = organization_of(self.request)
        if organization is not None:
            domains = domains.filter(customer=organization)
        return domains

    @extend_schema(parameters=[ORGANIZATION_PARAMETER])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.DomainCreateSerializer, responses={202: OpenApiResponse(
        s.OperationSerializer, description="Accepted: Location names the operation.")})
    def create(self, request):
        """Add a secondary or vanity domain, within the domain quota."""
        data = self.parsed(s.DomainCreateSerializer)
        organization = body_organization(request, data)
        with self.collect() as operations:
            services.add_domain(organization, data["name"], data["asset_type"],
                                actor=request.user)
        return self.accepted(operations)


@extend_schema(tags=["catalog"])
class HostingSpaceViewSet(mixins.ListModelMixin, ApiViewSet):
    """Hosting spaces in scope, each with its plan and every quota's use and limit (a
    reseller's space: its whole subtree's use)."""

    serializer_class = s.HostingSpaceSerializer
    permissions = {"list": "organization.view"}
    # Usage costs a few counts per space (as on the panel's page): small pages.

    def get_queryset(self):
        spaces = scoping.restrict(HostingSpace.objects.all(), self.request.user).exclude(
            status_id=c.DELETED).exclude(customer__status_id=c.DELETED).select_related(
            "customer", "hosting_plan").prefetch_related(
            "quota_overrides", "hosting_plan__quotas")
        organization = organization_of(self.request)
        if organization is not None:
            spaces = spaces.filter(customer=organization)
        return spaces

    @extend_schema(parameters=[ORGANIZATION_PARAMETER])
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        # One set of grouped counts for the whole page, as the panel's page does.
        usage = quotas.usage_many(page)
        for space in page:
            space.usage = usage[space.pk]
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
