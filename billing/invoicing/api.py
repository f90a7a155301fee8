"""Billing engine API: `GET /api/v1/prices/{code}/quote` (the pricing calculator)."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.invoicing.selectors import price_quote


def decimal_text(value: Decimal | None) -> str | None:
    """A decimal as plain digits ("1000", "0.75"), never an exponent."""
    if value is None:
        return None
    return f"{value.normalize():f}" if value != value.to_integral() else str(int(value))


class QuoteSliceOutput(serializers.Serializer):
    first = serializers.CharField(help_text="First unit of the slice (decimal string).")
    last = serializers.CharField(allow_null=True, help_text="Last unit of the tier; null: no end.")
    quantity = serializers.CharField(help_text="Units (packages, for package prices) billed in the slice.")
    unit_amount = serializers.CharField(help_text="Minor units per unit; may be fractional.")
    flat_amount = serializers.IntegerField(help_text="The tier's flat amount, minor units.")
    amount = serializers.CharField(help_text="Exact, before the line's one rounding (minor units).")


class QuoteOutput(serializers.Serializer):
    price = serializers.CharField()
    model = serializers.CharField()
    currency = serializers.CharField()
    quantity = serializers.CharField(help_text="Decimal string.")
    amount = serializers.IntegerField(help_text="Minor units, rounded once half-up.")
    breakdown = QuoteSliceOutput(many=True)


class PriceQuoteView(APIView):
    """What `quantity` units of an active price cost, with the tier-by-tier breakdown (graduated,
    volume, package, per unit; fractional unit amounts rounded once per line, half-up)."""

    @extend_schema(
        operation_id="prices_quote",
        parameters=[
            OpenApiParameter(
                "quantity", str, required=True, description="Units: an integer or decimal string ≥ 0."
            )
        ],
        responses={
            200: QuoteOutput,
            400: OpenApiResponse(description="invalid_quantity"),
            404: OpenApiResponse(description="unknown_price"),
        },
    )
    def get(self, request, code: str):
        price, rated = price_quote(code=code, quantity=request.query_params.get("quantity", ""))
        return Response(
            {
                "price": price.code,
                "model": price.model,
                "currency": rated.currency,
                "quantity": decimal_text(rated.quantity),
                "amount": rated.amount,
                "breakdown": [
                    {
                        "first": decimal_text(s.first),
                        "last": decimal_text(s.last),
                        "quantity": decimal_text(s.quantity),
                        "unit_amount": decimal_text(s.unit_amount),
                        "flat_amount": s.flat_amount,
                        "amount": decimal_text(s.amount),
                    }
                    for s in rated.breakdown
                ],
            }
        )
