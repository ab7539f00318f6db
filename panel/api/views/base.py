"""What every API view shares with the panel's pages (panel/views/base.py): the objects of
the URL resolved through provisioning.scoping first (a foreign id is 404 whatever the role),
then the role's permission for the action (403), then one service call whose
ValidationError becomes the answer (panel/api/errors.py). Also: the change log's actor is
the authenticated login (a token's too), a POST with an Idempotency-Key runs once, and a
write that provisions answers 202 Accepted with the Location of its operation."""

from auditlog.context import set_actor
from django.urls import reverse
from rest_framework import status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from provisioning import journal, scoping
from provisioning.models import Operation

from .. import idempotency


class ApiMixin:
    # {action or HTTP method in lower case: permission in scoping.PERMISSIONS}
    permissions = {}
    # A POST with an Idempotency-Key answers a retry with the stored first answer; an
    # endpoint whose answer must never be stored (a token shown once) sets this False.
    idempotent = True

    def resolve(self, request, *args, **kwargs):
        """Find the objects the URL names, in the login's scope (Http404 otherwise)."""

    def permission_for(self, request):
        """The permission of this action; an action that declares none is refused (a new
        action cannot go unchecked by omission)."""
        method = request.method.lower()
        action = self.action if hasattr(self, "action_map") else method
        if action is None or not hasattr(self, {"head": "get"}.get(method, method)):
            return None  # a method the endpoint does not have: its handler answers 405
        action = {"head": "get"}.get(action, action)
        if action in ("metadata", "options"):  # OPTIONS: the endpoint's description
            return None
        try:
            return self.permissions[action]
        except KeyError:
            raise PermissionDenied(f"No permission is declared for {action}.") from None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.resolve(request, *args, **kwargs)
        permission = self.permission_for(request)
        if permission:
            scoping.require(request.user, permission)

    def dispatch(self, request, *args, **kwargs):
        """REST framework's APIView.dispatch, with the change log's actor bound and the
        Idempotency-Key honoured around the handler."""
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            method = request.method.lower()
            handler = getattr(self, method, self.http_method_not_allowed) \
                if method in self.http_method_names else self.http_method_not_allowed
            with set_actor(request.user, remote_addr=request.META.get("REMOTE_ADDR")):
                key = idempotency.key_of(request) \
                    if method == "post" and self.idempotent else None
                if key is not None:
                    response = idempotency.run(request, key,
                                               lambda: handler(request, *args, **kwargs))
                else:
                    response = handler(request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - REST framework's own handling, as upstream
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def handle_exception(self, exc):
        """Errors are JSON, whatever format the request asked for (CSV, say)."""
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    # -- requests and answers ---------------------------------------------------------------

    def parsed(self, serializer_class):
        """The request's body, parsed (types and required fields only: 400 by field)."""
        serializer = serializer_class(data=self.request.data,
                                      context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def serialized(self, obj, serializer_class=None):
        serializer_class = serializer_class or self.get_serializer_class()
        return serializer_class(obj, context=self.get_serializer_context()).data

    def accepted(self, operations, fallback=None, status_code=status.HTTP_200_OK):
        """202 with the last operation the service enqueued (its Location), or, when the
        service had nothing to provision, `fallback` with `status_code`."""
        from ..serializers import OperationSerializer

        if not operations:
            return Response(fallback, status=status_code)
        operation = Operation.objects.select_related("customer").get(pk=operations[-1].pk)
        url = reverse("api:operation-detail", args=[operation.pk])
        data = OperationSerializer(operation, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": self.request.build_absolute_uri(url)})

    def collect(self):
        """The operations the service calls inside this block enqueue."""
        return journal.collect()


class ApiView(ApiMixin, APIView):
    def get_serializer_context(self):
        return {"request": self.request, "view": self}


class ApiViewSet(ApiMixin, viewsets.GenericViewSet):
    def filter_queryset(self, queryset):
        # A list's filters (?q=, ?status=) narrow the list only, never an object's URL.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def resolve(self, request, *args, **kwargs):
        lookup = self.lookup_url_kwarg or self.lookup_field
        self.object = self.get_object() if lookup in kwargs else None
