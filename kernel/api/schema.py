"""The OpenAPI schema documents every status code the API answers with, each error in the one shape
`{"error": {"code", "message", "details"}}` (kernel.api.errors), so clients and schemathesis can hold
the API to it (tests/api/test_schemathesis.py)."""

from drf_spectacular.openapi import AutoSchema as _AutoSchema
from rest_framework import serializers


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `unknown_customer`.")
    message = serializers.CharField()
    details = serializers.DictField(help_text="Context, e.g. `fields` for validation errors.")


class Error(serializers.Serializer):
    error = ErrorDetail()


# answers any authenticated operation can give: bad input, no or wrong key, missing scope, unknown
# object, a state that refuses it, an Accept we cannot serve, rate limiting, and a dependency (PostgreSQL, Redis) that is down
COMMON_ERRORS = {
    400: "Invalid request (`invalid_request`, `malformed_json`, or a domain code).",
    401: "No or invalid integrator key (`unauthenticated`).",
    403: "The key lacks the scope this operation needs (`forbidden`).",
    404: "No such object (`not_found`, `unknown_customer`, …).",
    409: "Conflict: the object's state refuses it (`limit_reached`, …) or an Idempotency-Key was reused.",
    406: "The Accept header asks for something other than JSON (`not_acceptable`).",
    429: "Rate limited (`rate_limited`, with Retry-After).",
    503: "A dependency is unavailable; retry after Retry-After.",
}
# and operations that take a body: bodies too large, and media types other than JSON
BODY_ERRORS = {
    413: "The request body is too large (`payload_too_large`).",
    415: "The body is not JSON (`unsupported_media_type`).",
}


class AutoSchema(_AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        errors = dict(COMMON_ERRORS)
        if self.method in ("POST", "PUT", "PATCH"):
            errors |= BODY_ERRORS
        for code, description in errors.items():
            responses.setdefault(str(code), {"description": description})
        for code, response in responses.items():
            # an error documented by description only (OpenApiResponse(description=...)) gets the shape
            if int(code) >= 400 and not response.get("content"):
                response.update(self._get_response_for_code(Error, code, direction=direction))
                response["description"] = response.get("description") or errors.get(int(code), "")
        return responses
