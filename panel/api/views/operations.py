"""Operations: every directory and Exchange call with its steps, state and last error; a
failed one can be retried."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError

from panel.filtersets import OperationFilterSet
from provisioning import scoping, services
from provisioning.models import Customer, Operation

from .. import serializers as s
from ..serializers import MAX_ID
from .base import ApiViewSet


def int_param(request, name):
    """An id in the query string: None when absent, 400 when not a number."""
    value = request.query_params.get(name)
    if value is None:
        return None
    if not value.isdigit() or not 0 < int(value) <= MAX_ID:
        raise ValidationError({name: ["Give an id (a positive number)."]})
    return int(value)


def organization_of(request):
    """?organization=<id>: an organization in the login's scope, 404 otherwise."""
    value = int_param(request, "organization")
    return None if value is None else scoping.get_organization_or_404(request.user, value)


def customer_of(request):
    """?customer=<id>: a customer in the login's scope, 404 otherwise."""
    value = int_param(request, "customer")
    if value is None:
        return None
    try:
        return scoping.visible_customers(request.user).get(pk=value)
    except Customer.DoesNotExist:
        raise Http404("No such customer.") from None


ORGANIZATION_PARAMETER = OpenApiParameter("organization", int,
                                          description="Only this organization's.")


@extend_schema(tags=["operations"])
class OperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.OperationSerializer
    filterset_class = OperationFilterSet
    lookup_value_regex = r"\d+"
    ordering = "-pk"
    permissions = {"list": "operation.view", "retrieve": "operation.view",
                   "retry": "operation.retry"}

    def get_queryset(self):
        queryset = scoping.restrict(Operation.objects.all(), self.request.user).select_related(
            "customer")
        if self.action == "list":
            organization = organization_of(self.request)
            if organization is not None:
                queryset = queryset.filter(scope=organization)
            customer = customer_of(self.request)
            if customer is not None:
                queryset = queryset.filter(customer=customer)
        return queryset

    @extend_schema(parameters=[ORGANIZATION_PARAMETER,
                               OpenApiParameter("customer", int,
                                                description="Only this customer's.")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.RetrySerializer, responses={202: OpenApiResponse(
        s.OperationSerializer, description="Queued again; Location names it.")})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run a failed operation again; steps already done are skipped. An operation that
        sets a password needs a new one."""
        data = self.parsed(s.RetrySerializer)
        operation = services.retry_operation(self.object, actor=request.user,
                                             secret=data.get("secret") or None)
        return self.accepted([operation])
