"""URLs on the bare host: the operator's console and admin."""

from django.contrib import admin
from django.urls import path

from monetize.metrics_view import metrics
from tenants import views as tenant_views

admin.site.site_header = "Monetize administration"

urlpatterns = [
    path("", tenant_views.console, name="console"),
    path(
        "tenants/<slug:slug>/<slug:action>/",
        tenant_views.tenant_action,
        name="tenant-action",
    ),
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
]

handler400 = "monetize.handlers.bad_request"
handler403 = "monetize.handlers.permission_denied"
handler404 = "monetize.handlers.not_found"
handler500 = "monetize.handlers.server_error"
