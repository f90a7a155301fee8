"""Host → tenant routing.

django-tenants' middleware with two changes: the host is matched case-insensitively, the domain lookup is cached in-process for
TENANT_CACHE_SECONDS (it runs on every request, hot paths included), and an unknown host gets a
404 straight away -- JSON under /api/, plain text elsewhere -- instead of falling through to
another tenant's URLs. A suspended tenant's host answers 403 `tenant_suspended` (JSON under /api/,
a page elsewhere), except provider webhooks, which still land in its inbox.
"""

import time

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from django.template.loader import render_to_string
from django_tenants.middleware.main import TenantMainMiddleware

_cache: dict[str, tuple[float, object]] = {}


def tenant_cache_clear() -> None:
    _cache.clear()


def tenant_cached(hostname: str):
    """The tenant this process routed `hostname` (lower case, no port) to within the last
    TENANT_CACHE_SECONDS, or None: the fast lane (monetize/hotpath.py) serves only hosts the
    middleware below has validated and looked up."""
    hit = _cache.get(hostname)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    return None


class TenantMiddleware(TenantMainMiddleware):
    @staticmethod
    def hostname_from_request(request):
        # host names are case-insensitive (RFC 9110); domains are stored in lower case
        return TenantMainMiddleware.hostname_from_request(request).lower()

    def get_tenant(self, domain_model, hostname):
        now = time.monotonic()
        hit = _cache.get(hostname)
        if hit is not None and hit[0] > now:
            return hit[1]
        tenant = super().get_tenant(domain_model, hostname)
        _cache[hostname] = (now + settings.TENANT_CACHE_SECONDS, tenant)
        return tenant

    def process_request(self, request):
        response = super().process_request(request)
        if response is not None:
            return response
        tenant = getattr(request, "tenant", None)
        if (
            tenant is not None
            and getattr(tenant, "suspended_at", None)
            and not request.path.startswith("/webhooks/")
        ):
            message = f"{tenant.name} is suspended by the operator of this Monetize installation."
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"error": {"code": "tenant_suspended", "message": message, "details": {}}}, status=403
                )
            return HttpResponse(render_to_string("tenants/suspended.html", {"message": message}), status=403)
        return None

    def no_tenant_found(self, request, hostname):
        message = "No tenant is served at this host."
        if request.path.startswith("/api/"):
            return JsonResponse(
                {"error": {"code": "unknown_host", "message": message, "details": {}}}, status=404
            )
        return HttpResponseNotFound(message, content_type="text/plain")
