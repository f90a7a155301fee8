"""Per-customer overrides of a feature: `/customers/{id}/overrides/{feature}`."""

from __future__ import annotations

from drf_spectacular.utils import (
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.entitlements.api._common import _body
from billing.entitlements.api.check import snapshot_as_dict
from billing.entitlements.selectors import entitlement_snapshot
from billing.entitlements.services import (
    override_delete,
    override_set,
)
from billing.memberships.selectors import customer_get
from billing.tiers.catalog import RATE_RE, WINDOWS
from kernel.api.fields import BIGINT_MAX, INT_MAX, StrictCharField


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
