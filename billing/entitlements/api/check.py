"""The entitlement check and the snapshot: `/entitlements/check` (hot: its small body is parsed by
hand, validated explicitly here and in tests), `/customers/{id}/entitlements`."""

from __future__ import annotations

import time

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotency_exempt
from accounts.api.lean import LeanJSONView
from billing.entitlements.api._common import (
    DecisionSchema,
    InvalidRequest,
    _body,
    _check_object,
    _quantity,
    _string,
)
from billing.entitlements.cache import read_for_authed_check
from billing.entitlements.selectors import entitlement_snapshot, feature_usage
from billing.entitlements.services import (
    entitlement_check,
)
from billing.memberships.exceptions import CustomerNotFound


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
