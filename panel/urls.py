from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from .views import healthz

admin.site.site_header = "Hosted Organizations — provider administration"
admin.site.site_title = "Hosted Organizations"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]
