"""Counters and leases: `/customers/{id}/counters/{feature}`, `/customers/{id}/leases/{feature}`…"""

from __future__ import annotations

import uuid

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotency_exempt, idempotent
from billing.entitlements.api._common import MAX_QUANTITY, InvalidRequest, _body
from billing.entitlements.services import (
    counter_change,
    lease_acquire,
    lease_release,
    lease_renew,
)
from billing.memberships.selectors import customer_get


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
