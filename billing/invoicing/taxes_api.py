"""Tax rates API: `/api/v1/tax-rates` (create, list) and `/api/v1/tax-rates/{id}/deactivate`."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotent
from billing.invoicing.taxes import tax_rate_create, tax_rate_deactivate, tax_rate_get, tax_rate_list
from kernel.api.fields import StrictCharField, StrictRegexField
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response
from kernel.decimals import decimal_text


class TaxRateOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    percent = serializers.SerializerMethodField(help_text="Decimal string.")
    inclusive = serializers.BooleanField()
    country = serializers.CharField(allow_blank=True, help_text="ISO alpha-2; empty: every customer.")
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_percent(self, rate) -> str:
        return decimal_text(rate.percent)


class TaxRateCreateInput(serializers.Serializer):
    name = StrictCharField(max_length=100, help_text='Shown on invoices: "Tax (VAT, 20%)".')
    percent = serializers.DecimalField(max_digits=7, decimal_places=4, min_value=0, max_value=100)
    inclusive = serializers.BooleanField(
        default=False, help_text="Prices already include it: carved out of the amounts, not added."
    )
    country = StrictRegexField(
        r"^([A-Za-z]{2})?$", required=False, default="", allow_blank=True,
        help_text="Charged to customers of this country (ISO alpha-2); empty: every customer.",
    )  # fmt: skip

    def validate_percent(self, value):
        if value <= 0:
            raise serializers.ValidationError("Must be greater than 0.")
        return value


class TaxRateListFilters(serializers.Serializer):
    active = serializers.BooleanField(required=False, allow_null=True, default=None)


class TaxRateListCreateView(APIView):
    @extend_schema(
        operation_id="tax_rates_list",
        parameters=[
            OpenApiParameter("active", bool, description="Only active (or inactive) rates."),
            *PAGE_PARAMETERS,
        ],
        responses={200: page_schema("TaxRatePage", TaxRateOutput)},
    )
    def get(self, request):
        filters = TaxRateListFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return paginated_response(
            request=request,
            view=self,
            queryset=tax_rate_list(active=filters.validated_data.get("active")),
            serializer_class=TaxRateOutput,
        )

    @extend_schema(
        operation_id="tax_rates_create", request=TaxRateCreateInput, responses={201: TaxRateOutput}
    )
    @idempotent
    def post(self, request):
        data = TaxRateCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            TaxRateOutput(tax_rate_create(**data.validated_data)).data, status=status.HTTP_201_CREATED
        )


class TaxRateDeactivateView(APIView):
    """Charge the rate on no new invoice (invoices that charged it keep it)."""

    @extend_schema(
        operation_id="tax_rates_deactivate",
        request=None,
        responses={200: TaxRateOutput, 404: OpenApiResponse(description="unknown_tax_rate")},
    )
    @idempotent
    def post(self, request, tax_rate_id: int):
        return Response(
            TaxRateOutput(tax_rate_deactivate(tax_rate=tax_rate_get(tax_rate_id=tax_rate_id))).data
        )
