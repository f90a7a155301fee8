"""Entitlements API: checks, snapshots, counters, leases, overrides, customer API keys.

The two hot paths (`/entitlements/check`, `/keys/verify`) parse their small bodies by hand
(validated explicitly below and in tests) instead of through DRF serializers.
"""

from __future__ import annotations

import time
import uuid

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
from billing.entitlements.cache import read_for_authed_check, read_for_authed_verify
from billing.entitlements.models import CustomerApiKey
from billing.entitlements.selectors import entitlement_snapshot, feature_usage
from billing.entitlements.services import (
    counter_change,
    customer_key_create,
    customer_key_hash,
    customer_key_revoke,
    customer_key_rotate,
    customer_key_verify,
    entitlement_check,
    lease_acquire,
    lease_release,
    lease_renew,
    override_delete,
    override_set,
)
from billing.memberships.exceptions import CustomerNotFound
from billing.memberships.selectors import customer_get
from billing.tiers.catalog import RATE_RE, WINDOWS
from kernel.api.errors import error_body
from kernel.api.fields import BIGINT_MAX, INT_MAX, StrictCharField
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response
from kernel.api.schema import Error
from kernel.errors import ApplicationError

MAX_QUANTITY = 1_000_000_000


class InvalidRequest(ApplicationError):
    code = "invalid_request"


def _check_object(data) -> dict:
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return data


def _body(request) -> dict:
    return _check_object(request.data)


def _string(data: dict, name: str, *, required: bool = True, max_length: int = 255) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise InvalidRequest(
            f"'{name}' must be a non-empty string of at most {max_length} characters.",
            details={"field": name},
        )
    return value


def _quantity(data: dict) -> int:
    value = data.get("quantity", 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUANTITY:
        raise InvalidRequest(
            f"'quantity' must be an integer from 1 to {MAX_QUANTITY}.", details={"field": "quantity"}
        )
    return value


DecisionSchema = inline_serializer(
    "EntitlementDecision",
    {
        "allowed": serializers.BooleanField(),
        "feature": serializers.CharField(),
        "kind": serializers.CharField(),
        "tier": serializers.CharField(allow_null=True),
        "limit": serializers.IntegerField(allow_null=True),
        "used": serializers.IntegerField(allow_null=True),
        "remaining": serializers.IntegerField(allow_null=True),
        "reason": serializers.ChoiceField(
            ["ok", "not_in_tier", "limit_reached", "rate_limited", "insufficient_credits"]
        ),
        "rate_limit": serializers.DictField(required=False),
    },
)


KeyVerifiedSchema = inline_serializer(
    "KeyVerified",
    {
        "valid": serializers.BooleanField(),
        "customer": serializers.CharField(),
        "tier": serializers.CharField(allow_null=True),
        "entitlement": inline_serializer(
            "KeyVerifiedDecision",
            {**DecisionSchema.fields},
            allow_null=True,
            help_text="The check of `feature`; null when no feature was asked about.",
        ),
        "rate_limit": serializers.DictField(
            allow_null=True, help_text="The rate bucket when a rate feature was checked, else null."
        ),
    },
)


class EntitlementCheckView(LeanJSONView):
    """May this customer use this feature now? Rate features consume from the bucket.
    Needs the `read` scope (it changes no data)."""

    @staticmethod
    def _inputs(data) -> tuple[str, str, int]:
        data = _check_object(data)
        return _string(data, "customer"), _string(data, "feature", max_length=64), _quantity(data)

    def prefetch(self, data, key_hash: str):
        try:
            customer, feature, quantity = self._inputs(data)
        except InvalidRequest:
            return None  # handle() reports the bad input, after authentication
        return read_for_authed_check(
            integrator_hash=key_hash, scope=self.required_scope, customer=customer, feature=feature,
            quantity=quantity, now=time.time(),
        )  # fmt: skip

    def handle(self, request, data, prefetched):
        customer, feature, quantity = self._inputs(data)
        decision = entitlement_check(
            customer=customer, feature=feature, quantity=quantity, prefetched=prefetched
        )
        return decision.as_dict(), 200, decision.rate.headers() if decision.rate else None

    @extend_schema(
        operation_id="entitlements_check",
        request=inline_serializer(
            "EntitlementCheck",
            {
                "customer": serializers.CharField(),
                "feature": serializers.CharField(),
                "quantity": serializers.IntegerField(default=1),
            },
        ),
        responses={
            200: DecisionSchema,
            400: OpenApiResponse(description="unknown_feature, invalid_request"),
            404: OpenApiResponse(description="unknown_customer"),
        },
    )
    @idempotency_exempt("a check creates nothing")
    def post(self, request):
        data = _body(request)
        decision = entitlement_check(
            customer=_string(data, "customer"),
            feature=_string(data, "feature", max_length=64),
            quantity=_quantity(data),
        )
        return Response(decision.as_dict(), headers=decision.rate.headers() if decision.rate else None)


def snapshot_as_dict(snapshot: dict) -> dict:
    features = {}
    for code, entry in snapshot["features"].items():
        item = {"kind": entry["kind"], "enabled": entry["enabled"], "override": entry["override"]}
        if entry["kind"] in ("limit", "metered"):
            used = feature_usage(entry)
            item.update(
                limit=entry["limit"],
                used=used,
                remaining=None if entry["limit"] is None else max(0, entry["limit"] - used),
            )
        elif entry["kind"] == "rate" and entry["rate"]:
            item.update(rate={"limit": entry["rate"][0], "window_seconds": entry["rate"][1]})
        features[code] = item
    return {"customer": snapshot["customer"], "tier": snapshot["tier"], "features": features}


class EntitlementSnapshotView(APIView):
    @extend_schema(
        operation_id="entitlements_snapshot",
        responses=inline_serializer(
            "EntitlementSnapshot",
            {
                "customer": serializers.CharField(),
                "tier": serializers.CharField(),
                "features": serializers.DictField(),
            },
        ),
    )
    def get(self, request, external_id: str):
        snapshot = entitlement_snapshot(external_id=external_id)
        if snapshot is None:
            raise CustomerNotFound(
                f"No customer with external_id '{external_id}'.", details={"customer": external_id}
            )
        return Response(snapshot_as_dict(snapshot))


class CounterInput(serializers.Serializer):
    delta = serializers.IntegerField(required=False, min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY)
    set = serializers.IntegerField(required=False, min_value=0, max_value=10**15)

    def validate(self, attrs):
        if ("delta" in attrs) == ("set" in attrs):
            raise serializers.ValidationError("Give exactly one of 'delta' or 'set'.")
        if attrs.get("delta") == 0:
            raise serializers.ValidationError({"delta": "Must not be zero."})
        return attrs

    def to_internal_value(self, data):
        for name in ("delta", "set"):  # no "3" or 2.5 for a counter: integers only
            if name in data and (isinstance(data[name], bool) or not isinstance(data[name], int)):
                raise serializers.ValidationError({name: "Must be an integer."})
        return super().to_internal_value(data)


UsageSchema = inline_serializer(
    "Usage",
    {
        "feature": serializers.CharField(),
        "used": serializers.IntegerField(),
        "limit": serializers.IntegerField(allow_null=True),
        "remaining": serializers.IntegerField(allow_null=True),
    },
)


class CounterView(APIView):
    """Move a limit counter: `{"delta": n}` (refused past the limit with `limit_reached`) or `{"set": n}`."""

    @extend_schema(
        operation_id="counters_change",
        request=CounterInput,
        responses={200: UsageSchema, 409: OpenApiResponse(description="limit_reached, counter_underflow")},
    )
    @idempotent
    def post(self, request, external_id: str, feature: str):
        data = CounterInput(data=_body(request))
        data.is_valid(raise_exception=True)
        usage = counter_change(
            customer=customer_get(external_id=external_id),
            feature=feature,
            delta=data.validated_data.get("delta"),
            value=data.validated_data.get("set"),
        )
        return Response(usage.as_dict())


class LeaseInput(serializers.Serializer):
    ttl = serializers.IntegerField(required=False, min_value=1, max_value=86400)


def lease_as_dict(lease, usage=None) -> dict:
    body = {
        "id": str(lease.pk),
        "feature": lease.feature.code,
        "acquired_at": lease.acquired_at,
        "expires_at": lease.expires_at,
        "released_at": lease.released_at,
    }
    if usage is not None:
        body.update(used=usage.used, limit=usage.limit)
    return body


class LeaseAcquireView(APIView):
    """Hold one slot of a concurrency limit for `ttl` seconds (default 300); renew to keep it."""

    @extend_schema(
        operation_id="leases_acquire",
        request=LeaseInput,
        responses={
            201: inline_serializer(
                "Lease", {"id": serializers.UUIDField(), "expires_at": serializers.DateTimeField()}
            ),
            409: OpenApiResponse(description="limit_reached"),
        },
    )
    @idempotent
    def post(self, request, external_id: str, feature: str):
        data = LeaseInput(data=_body(request) if request.body else {})
        data.is_valid(raise_exception=True)
        lease, usage = lease_acquire(
            customer=customer_get(external_id=external_id),
            feature=feature,
            ttl_seconds=data.validated_data.get("ttl"),
        )
        return Response(lease_as_dict(lease, usage), status=status.HTTP_201_CREATED)


def _lease_id(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRequest("Not a lease id.", details={"lease": value}) from None


class LeaseDetailView(APIView):
    @extend_schema(operation_id="leases_release", responses={204: None})
    def delete(self, request, external_id: str, feature: str, lease_id: str):
        lease_release(
            customer=customer_get(external_id=external_id), feature=feature, lease_id=_lease_id(lease_id)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeaseRenewView(APIView):
    @extend_schema(
        operation_id="leases_renew",
        request=LeaseInput,
        responses={
            200: inline_serializer(
                "LeaseRenewed", {"id": serializers.UUIDField(), "expires_at": serializers.DateTimeField()}
            )
        },
    )
    @idempotency_exempt("renewing twice extends the same lease")
    def post(self, request, external_id: str, feature: str, lease_id: str):
        data = LeaseInput(data=_body(request) if request.body else {})
        data.is_valid(raise_exception=True)
        lease = lease_renew(
            customer=customer_get(external_id=external_id),
            feature=feature,
            lease_id=_lease_id(lease_id),
            ttl_seconds=data.validated_data.get("ttl"),
        )
        return Response(lease_as_dict(lease))


class OverrideInput(serializers.Serializer):
    enabled = serializers.BooleanField(required=False, allow_null=True)
    limit = serializers.JSONField(
        required=False, help_text='An integer >= 0, "unlimited", or null to inherit.'
    )
    rate = StrictCharField(required=False, allow_null=True, help_text="Such as 600/minute.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    note = StrictCharField(required=False, allow_blank=True, max_length=200)

    def validate_limit(self, value):
        if (
            value is None
            or value == "unlimited"
            or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= BIGINT_MAX)
        ):
            return value
        raise serializers.ValidationError(f'Must be an integer from 0 to {BIGINT_MAX}, "unlimited" or null.')

    def validate_rate(self, value):
        if value is None:
            return None
        match = RATE_RE.match(value)
        if not match or len(match.group(1)) > 10 or not 1 <= int(match.group(1)) <= INT_MAX:
            raise serializers.ValidationError("Must look like 600/minute (per second, minute, hour or day).")
        return int(match.group(1)), WINDOWS[match.group(2)]


class OverrideView(APIView):
    """A per-customer exception: grant/deny a feature, raise a limit, change a rate."""

    @extend_schema(
        operation_id="overrides_set",
        request=OverrideInput,
        responses=inline_serializer(
            "EntitlementSnapshotAfterOverride",
            {"customer": serializers.CharField(), "features": serializers.DictField()},
        ),
    )
    def put(self, request, external_id: str, feature: str):
        data = OverrideInput(data=_body(request))
        data.is_valid(raise_exception=True)
        values = data.validated_data
        rate = values.get("rate")
        override_set(
            customer=customer_get(external_id=external_id),
            feature=feature,
            enabled=values.get("enabled"),
            limit_value=values["limit"] if isinstance(values.get("limit"), int) else None,
            unlimited=values.get("limit") == "unlimited",
            rate_limit=rate[0] if rate else None,
            rate_window_seconds=rate[1] if rate else None,
            expires_at=values.get("expires_at"),
            note=values.get("note", ""),
        )
        return Response(snapshot_as_dict(entitlement_snapshot(external_id=external_id)))

    @extend_schema(operation_id="overrides_delete", responses={204: None})
    def delete(self, request, external_id: str, feature: str):
        override_delete(customer=customer_get(external_id=external_id), feature=feature)
        return Response(status=status.HTTP_204_NO_CONTENT)


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
