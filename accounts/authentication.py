"""DRF authentication for integrators: `Authorization: Bearer mk_test_…`."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from accounts.selectors import api_key_authenticate


class InvalidApiKey(exceptions.AuthenticationFailed):
    error_code = "invalid_api_key"
    default_detail = "The API key is invalid, revoked or expired."


def bearer_secret(request) -> str | None:
    """The key in `Authorization: Bearer <key>`; None without the header."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise InvalidApiKey("Use `Authorization: Bearer <api key>`.")
    return raw.strip()


def principal_for_secret(raw: str, *, cached: dict | None = None):
    principal = api_key_authenticate(raw_key=raw, cached=cached)
    if principal is None:
        raise InvalidApiKey()
    return principal


class IntegratorKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        raw = bearer_secret(request)
        if raw is None:
            return None
        principal = principal_for_secret(raw)
        return principal, principal

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class IntegratorKeyScheme(OpenApiAuthenticationExtension):
    target_class = IntegratorKeyAuthentication
    name = "IntegratorKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An integrator API key (`mk_test_…` / `mk_live_…`) of this tenant.",
        }
