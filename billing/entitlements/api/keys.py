"""End-user API keys: `/customers/{id}/api-keys` (create, list, revoke, rotate) and `/keys/verify`
(hot: parsed by hand like the check)."""

from __future__ import annotations

import time

from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotency_exempt, idempotent
from accounts.api.lean import LeanJSONView
from billing.entitlements.api._common import (
    InvalidRequest,
    KeyVerifiedSchema,
    _body,
    _check_object,
    _quantity,
    _string,
)
from billing.entitlements.cache import read_for_authed_verify
from billing.entitlements.models import CustomerApiKey
from billing.entitlements.services import (
    customer_key_create,
    customer_key_hash,
    customer_key_revoke,
    customer_key_rotate,
    customer_key_verify,
)
from billing.memberships.selectors import customer_get
from kernel.api.errors import error_body
from kernel.api.fields import StrictCharField
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response
from kernel.api.schema import Error


class CustomerKeyOutput(serializers.ModelSerializer):
    class Meta:
        model = CustomerApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]


class CustomerKeyInput(serializers.Serializer):
    name = StrictCharField(required=False, allow_blank=True, max_length=100)


def _key_created(key, raw) -> dict:
    return {**CustomerKeyOutput(key).data, "key": raw}


class CustomerKeyListCreateView(APIView):
    """End-user API keys of a customer. The key is in the creating response only (a replay of the
    same Idempotency-Key returns `"key": null`)."""

    @extend_schema(
        operation_id="customer_keys_list",
        parameters=PAGE_PARAMETERS,
        responses=page_schema("CustomerKeyPage", CustomerKeyOutput),
    )
    def get(self, request, external_id: str):
        keys = customer_get(external_id=external_id).api_keys.all()
        return paginated_response(
            request=request, view=self, queryset=keys, serializer_class=CustomerKeyOutput
        )

    @extend_schema(
        operation_id="customer_keys_create",
        request=CustomerKeyInput,
        responses={
            201: inline_serializer(
                "CustomerKeyCreated",
                {
                    "id": serializers.IntegerField(),
                    "key": serializers.CharField(),
                    "prefix": serializers.CharField(),
                },
            )
        },
    )
    @idempotent(redact=("key",))
    def post(self, request, external_id: str):
        data = CustomerKeyInput(data=_body(request) if request.body else {})
        data.is_valid(raise_exception=True)
        key, raw = customer_key_create(
            customer=customer_get(external_id=external_id), name=data.validated_data.get("name", "")
        )
        return Response(_key_created(key, raw), status=status.HTTP_201_CREATED)


def _customer_key(external_id: str, key_id: int) -> CustomerApiKey:
    from billing.entitlements.exceptions import CustomerKeyNotFound

    key = CustomerApiKey.objects.filter(pk=key_id, customer__external_id=external_id).first()
    if key is None:
        raise CustomerKeyNotFound("No such API key for this customer.", details={"id": key_id})
    return key


class CustomerKeyDetailView(APIView):
    @extend_schema(operation_id="customer_keys_revoke", responses={204: None})
    def delete(self, request, external_id: str, key_id: int):
        customer_key_revoke(key=_customer_key(external_id, key_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerKeyRotateView(APIView):
    @extend_schema(
        operation_id="customer_keys_rotate",
        request=None,
        responses={
            201: inline_serializer(
                "CustomerKeyRotated", {"id": serializers.IntegerField(), "key": serializers.CharField()}
            )
        },
    )
    @idempotent(redact=("key",))
    def post(self, request, external_id: str, key_id: int):
        key, raw = customer_key_rotate(key=_customer_key(external_id, key_id))
        return Response(_key_created(key, raw), status=status.HTTP_201_CREATED)


# 402: the customer must buy credits (the gateway can pass it on as "payment required")
_STATUS_FOR_REASON = {
    "ok": 200,
    "not_in_tier": 403,
    "limit_reached": 403,
    "rate_limited": 429,
    "insufficient_credits": 402,
}


class KeyVerifyView(LeanJSONView):
    """One call per gateway request: is the end-user key valid here, and may its customer use
    `feature` now? 200 yes; 401 invalid key; 403 not in tier / limit reached; 402 insufficient credits; 429 rate limited
    (with Retry-After). Rate-limit headers are set whenever a rate feature was checked."""

    @extend_schema(
        operation_id="keys_verify",
        request=inline_serializer(
            "KeyVerify",
            {
                "key": serializers.CharField(),
                "feature": serializers.CharField(required=False),
                "quantity": serializers.IntegerField(default=1),
            },
        ),
        responses={
            200: KeyVerifiedSchema,
            401: OpenApiResponse(
                description='The key is invalid or revoked: `{"valid": false, "error": {...}}`.'
            ),
            402: OpenApiResponse(KeyVerifiedSchema, description="Insufficient credits."),
            403: OpenApiResponse(
                PolymorphicProxySerializer(
                    "KeyVerifyForbidden",
                    serializers=[KeyVerifiedSchema, Error],
                    resource_type_field_name=None,
                ),
                description="Not in the tier or limit reached (a verification), or the integrator key lacks "
                "the scope (an error).",
            ),
            429: OpenApiResponse(
                PolymorphicProxySerializer(
                    "KeyVerifyRateLimited",
                    serializers=[KeyVerifiedSchema, Error],
                    resource_type_field_name=None,
                ),
                description="The customer's rate limit (a verification, with Retry-After) or the API's (an error).",
            ),
        },
    )
    @idempotency_exempt("a verification creates nothing")
    def post(self, request):  # served by LeanJSONView.dispatch → handle(); declared for the schema
        """Is this end-user key valid here, and may its customer use `feature` now? 200 yes; 401
        invalid key; 403 not in tier / limit reached; 429 rate limited (Retry-After)."""

    @staticmethod
    def _inputs(data) -> tuple[str, str | None, int]:
        data = _check_object(data)
        key = data.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidRequest("'key' must be a non-empty string.", details={"field": "key"})
        return key, _string(data, "feature", required=False, max_length=64), _quantity(data)

    def prefetch(self, data, key_hash: str):
        try:
            key, feature, quantity = self._inputs(data)
        except InvalidRequest:
            return None  # handle() reports the bad input, after authentication
        if not key.startswith("sk-") or len(key) > 200:
            return None  # not a key format we issue: the service says invalid without Redis
        return read_for_authed_verify(
            integrator_hash=key_hash, scope=self.required_scope, key_hash=customer_key_hash(key),
            feature=feature, quantity=quantity, now=time.time(),
        )  # fmt: skip

    def handle(self, request, data, prefetched):
        key, feature, quantity = self._inputs(data)
        result = customer_key_verify(raw_key=key, feature=feature, quantity=quantity, prefetched=prefetched)
        if not result.valid:
            return (
                {"valid": False, **error_body("invalid_api_key", "The key is invalid or revoked.")},
                401,
                None,
            )
        body = {
            "valid": True,
            "customer": result.customer,
            "tier": result.snapshot["tier"],
            "entitlement": None,
            "rate_limit": None,
        }
        headers, code = None, 200
        if result.decision is not None:
            body["entitlement"] = result.decision.as_dict()
            code = _STATUS_FOR_REASON[result.decision.reason]
            if result.decision.rate is not None:
                body["rate_limit"] = result.decision.rate.as_dict()
                headers = result.decision.rate.headers()
        return body, code, headers
