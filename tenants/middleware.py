"""Host → tenant routing.

django-tenants' middleware with two changes: the host is matched case-insensitively, the domain lookup is cached in-process for
TENANT_CACHE_SECONDS (it runs on every request, hot paths included), and an unknown host gets a
404 straight away -- JSON under /api/, plain text elsewhere -- instead of falling through to
another tenant's URLs.
"""

import time

from django.conf import settings
from django.http import HttpResponseNotFound, JsonResponse
from django_tenants.middleware.main import TenantMainMiddleware

_cache: dict[str, tuple[float, object]] = {}


def tenant_cache_clear() -> None:
    _cache.clear()


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

    def no_tenant_found(self, request, hostname):
        message = "No tenant is served at this host."
        if request.path.startswith("/api/"):
            return JsonResponse(
                {"error": {"code": "unknown_host", "message": message, "details": {}}}, status=404
            )
        return HttpResponseNotFound(message, content_type="text/plain")
