"""What the entitlements API shares: the hand-parsing of the hot paths' small bodies (validated
explicitly, tested), and the schemas of their answers."""

from __future__ import annotations

from drf_spectacular.utils import (
    inline_serializer,
)
from rest_framework import serializers

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
