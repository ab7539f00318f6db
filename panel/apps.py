from django.contrib.admin.apps import AdminConfig


class PanelAdminConfig(AdminConfig):
    """django.contrib.admin with the panel's site (`panel.admin_site.PanelAdminSite`) as
    `admin.site`, so every ModelAdmin registered there sits behind the second factor."""

    default_site = "panel.admin_site.PanelAdminSite"
