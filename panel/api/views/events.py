"""Events as a billing feed: GET /api/v1/events/?after=<cursor> answers the events numbered
after the cursor, in commit order, and the cursor to poll with next — every event exactly
once (provisioning.feed explains how). Filters narrow the feed without stalling it: the
next cursor moves past what did not match."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from panel.filtersets import EventFilterSet
from provisioning import feed, scoping
from provisioning.models import Event

from .. import serializers as s
from ..renderers import EventCSVRenderer
from .base import ApiView
from .operations import customer_of, organization_of
from .organizations import subtree_filter

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class FeedQuery(drf.Serializer):
    after = drf.IntegerField(min_value=0, max_value=2**63 - 1, required=False, default=0,
                             help_text="The cursor of the last event received (0: from "
                                       "the start).")
    limit = drf.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False,
                             default=DEFAULT_LIMIT)


@extend_schema(tags=["events"])
class EventFeedView(ApiView):
    permissions = {"get": "event.view"}
    renderer_classes = [JSONRenderer, EventCSVRenderer]

    def events(self, request):
        events = scoping.restrict(Event.objects.all(), request.user).select_related(
            "customer", "actor", "event_type")
        filterset = EventFilterSet(request.query_params, queryset=events)
        if not filterset.is_valid():
            raise drf.ValidationError(filterset.errors)
        events = filterset.qs
        organization = organization_of(request)
        if organization is not None:
            events = events.filter(scope=organization)
        customer = customer_of(request)
        if customer is not None:
            events = events.filter(customer=customer)
        return subtree_filter(request, events, prefix="customer__")

    @extend_schema(
        parameters=[FeedQuery,
                    OpenApiParameter("event_type", str, description="Only this type."),
                    OpenApiParameter("since", str, description="From this date (YYYY-MM-DD)."),
                    OpenApiParameter("until", str, description="To this date (YYYY-MM-DD)."),
                    OpenApiParameter("customer", int, description="Only this customer's."),
                    OpenApiParameter("organization", int,
                                     description="The organization's and its users'."),
                    OpenApiParameter("reseller", int,
                                     description="Everything in this reseller's subtree."),
                    OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={200: OpenApiResponse(s.EventPageSerializer,
                                        description="A page of the feed; as CSV with "
                                                    "?format=csv (cursor in X-Next-Cursor).")})
    def get(self, request):
        """The billing feed: events after `after`, oldest first, in commit order."""
        query = FeedQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        page, next_cursor, more = feed.read(self.events(request), after=after, limit=limit)
        params = request.query_params.copy()
        params["after"] = str(next_cursor)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        data = {"results": s.EventSerializer(page, many=True).data,
                "next_cursor": next_cursor, "more": more, "next": next_url}
        return Response(data, headers={"X-Next-Cursor": str(next_cursor),
                                       "Link": f'<{next_url}>; rel="next"'})
