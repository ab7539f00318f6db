"""/api/v1/ and the schema and docs beside it."""

from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from .views import catalog, contacts, events, operations, organizations, peers, tokens, users

router = SimpleRouter()
router.register("organizations", organizations.OrganizationViewSet, basename="organization")
router.register("users", users.UserViewSet, basename="user")
router.register("contacts", contacts.ContactViewSet, basename="contact")
router.register("domains", catalog.DomainViewSet, basename="domain")
router.register("peers", peers.PeerViewSet, basename="peer")
router.register("operations", operations.OperationViewSet, basename="operation")
router.register("hosting-spaces", catalog.HostingSpaceViewSet, basename="hosting-space")
router.register("hosting-plans", catalog.HostingPlanViewSet, basename="hosting-plan")
router.register("service-plans", catalog.ServicePlanViewSet, basename="service-plan")
router.register("tokens", tokens.TokenViewSet, basename="token")



@csrf_exempt  # nothing to protect: it only says no
def not_found(request, *args, **kwargs):
    """Any other path under /api/v1/ (a malformed id included) answers 404 in JSON."""
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


v1 = [
    *router.urls,
    path("events/", events.EventFeedView.as_view(), name="events"),
    path("me/", tokens.MeView.as_view(), name="me"),
    re_path(r"^[\s\S]*$", not_found),
]

urlpatterns = [
    path("v1/", include((v1, "api"))),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema",
                                                      template_name="api/docs.html"),
         name="api_docs"),
]
