"""URLs on a tenant's host."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import views as account_views
from billing.entitlements import views as entitlement_views
from billing.inbox import views as webhook_views
from billing.invoicing import views as provider_views
from billing.memberships import views as membership_views
from billing.metering import views as metering_views
from console import views as console_views
from console.developers import views as developer_views
from monetize.api import views as api_views
from tenants import views as tenant_views

api_v1 = [
    path("me", api_views.MeView.as_view(), name="me"),
    path("ping", api_views.PingView.as_view(), name="ping"),
    path("", include("monetize.urls_api")),
]

urlpatterns = [
    path("", account_views.home, name="home"),
    path("dashboard/", console_views.overview, name="dashboard"),
    path("developers/", include("console.developers.urls")),
    path("settings/api-keys/", developer_views.legacy_api_keys, name="api-keys"),
    path("settings/", account_views.tenant_settings, name="tenant-settings"),
    path("brand/logo.png", tenant_views.tenant_logo, name="tenant-logo"),
    path("pricing/", membership_views.pricing, name="pricing"),
    path("billing/checkout/", membership_views.start_checkout, name="start-checkout"),
    path("billing/membership/", membership_views.manage_membership, name="manage-membership"),
    path("account/plan/", entitlement_views.plan, name="plan"),
    path("account/plan/state/", membership_views.plan_state, name="plan-state"),
    path("", include("billing.invoicing.pages.urls")),  # /account/billing/, staff /invoices/
    path("reconciliation/", include("billing.ledger.reconciliation.urls")),  # staff
    path("", include("console.creators.urls")),  # staff: /creators/, /creators/payouts/
    path("", include("console.customers.urls")),  # staff /customers/
    path("catalog/", include("console.catalog.urls")),  # owner/admin: the catalog editor
    path("usage/", metering_views.tenant_usage, name="tenant-usage"),
    path("usage/ai/", metering_views.tenant_ai_costs, name="tenant-ai-costs"),
    path("webhooks/<slug:provider>/", webhook_views.receive, name="webhooks"),
    path("sandbox/checkout/<str:checkout_id>/", provider_views.sandbox_checkout, name="sandbox-checkout"),
    path("", include("billing.ledger.creators.urls")),  # /creator/…, /channels/…, /account/supporting/
    path("sandbox/payment-method/", provider_views.sandbox_payment_method, name="sandbox-payment-method"),
    path("toss/", include("billing.invoicing.toss_views")),  # checkout, success and fail pages
    path("stripe/", include("billing.invoicing.stripe_views")),  # engine mode: the card-saving checkout
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

handler400 = "monetize.handlers.bad_request"
handler403 = "monetize.handlers.permission_denied"
handler404 = "monetize.handlers.not_found"
handler500 = "monetize.handlers.server_error"
