"""Coupons API: `/api/v1/coupons` (create, list), `/api/v1/coupons/{code}` and its deactivation."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotent
from billing.discounts.models import CouponDuration
from billing.discounts.selectors import coupon_get, coupon_list
from billing.discounts.services import MAX_AMOUNT_OFF, MAX_PERIODS, coupon_create, coupon_deactivate
from kernel.api.fields import INT_MAX, StrictCharField, StrictRegexField
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response
from kernel.decimals import decimal_text


class CouponOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    percent_off = serializers.SerializerMethodField(help_text="Decimal string, or null for amount_off.")
    amount_off = serializers.IntegerField(allow_null=True, help_text="Minor units of `currency`.")
    currency = serializers.SerializerMethodField(help_text="With amount_off; null for percent_off.")
    duration = serializers.ChoiceField(choices=CouponDuration.values)
    duration_in_periods = serializers.IntegerField(allow_null=True)
    max_redemptions = serializers.IntegerField(allow_null=True)
    times_redeemed = serializers.IntegerField()
    expires_at = serializers.DateTimeField(allow_null=True)
    tiers = serializers.SerializerMethodField(help_text="Tier codes it is restricted to; empty: every tier.")
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_percent_off(self, coupon) -> str | None:
        return decimal_text(coupon.percent_off)

    def get_tiers(self, coupon) -> list[str]:
        return sorted(t.code for t in coupon.tiers.all())

    def get_currency(self, coupon) -> str | None:
        return coupon.currency or None


class CouponCreateInput(serializers.Serializer):
    code = StrictRegexField(
        r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", help_text="Letters, digits, - and _; case-insensitive."
    )
    name = StrictCharField(required=False, allow_blank=True, max_length=200, default="")
    percent_off = serializers.DecimalField(
        required=False, max_digits=7, decimal_places=4, min_value=0, max_value=100,
        help_text="0 < percent_off ≤ 100 (a decimal string or number); or amount_off.",
    )  # fmt: skip
    amount_off = serializers.IntegerField(required=False, min_value=1, max_value=MAX_AMOUNT_OFF)
    currency = StrictRegexField(r"^[A-Za-z]{3}$", required=False, help_text="With amount_off.")
    duration = serializers.ChoiceField(choices=CouponDuration.values)
    duration_in_periods = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PERIODS, help_text="With duration `repeating`."
    )
    max_redemptions = serializers.IntegerField(required=False, min_value=1, max_value=INT_MAX)
    expires_at = serializers.DateTimeField(required=False)
    tiers = serializers.ListField(
        child=StrictCharField(max_length=64), required=False, max_length=100, default=list
    )

    def validate(self, attrs):
        if ("percent_off" in attrs) == ("amount_off" in attrs):
            raise serializers.ValidationError("Give exactly one of 'percent_off' or 'amount_off'.")
        if "percent_off" in attrs and attrs["percent_off"] <= 0:
            raise serializers.ValidationError({"percent_off": "Must be greater than 0."})
        if ("amount_off" in attrs) != ("currency" in attrs):
            raise serializers.ValidationError("'amount_off' and 'currency' go together.")
        if (attrs["duration"] == CouponDuration.REPEATING) != ("duration_in_periods" in attrs):
            raise serializers.ValidationError(
                "Give 'duration_in_periods' with, and only with, duration 'repeating'."
            )
        return attrs


NOT_FOUND = OpenApiResponse(description="unknown_coupon")


class CouponListCreateView(APIView):
    @extend_schema(
        operation_id="coupons_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_schema("CouponPage", CouponOutput)},
    )
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=coupon_list(), serializer_class=CouponOutput
        )

    @extend_schema(
        operation_id="coupons_create",
        request=CouponCreateInput,
        responses={
            201: CouponOutput,
            409: OpenApiResponse(description="coupon_exists"),
            422: OpenApiResponse(description="coupon_not_applicable (an unknown tier)"),
        },
    )
    @idempotent
    def post(self, request):
        data = CouponCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        coupon = coupon_create(tier_codes=values.pop("tiers"), **values)
        return Response(CouponOutput(coupon_get(code=coupon.code)).data, status=status.HTTP_201_CREATED)


class CouponDetailView(APIView):
    @extend_schema(operation_id="coupons_get", responses={200: CouponOutput, 404: NOT_FOUND})
    def get(self, request, code: str):
        return Response(CouponOutput(coupon_get(code=code)).data)


class CouponDeactivateView(APIView):
    """Stop offering the coupon: no new redemptions (customers who hold it keep their discount)."""

    @extend_schema(
        operation_id="coupons_deactivate", request=None, responses={200: CouponOutput, 404: NOT_FOUND}
    )
    @idempotent
    def post(self, request, code: str):
        return Response(CouponOutput(coupon_deactivate(coupon=coupon_get(code=code))).data)
