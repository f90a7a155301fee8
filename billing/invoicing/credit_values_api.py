"""Credit values API: `GET /api/v1/credit-values`, `PUT|DELETE /api/v1/credit-values/{currency}`.
A currency with a value: customers' usable credits pay the usage lines of its invoices."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.invoicing.credit_values import credit_value_list, credit_value_remove, credit_value_set
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response
from kernel.decimals import decimal_text


class CreditValueOutput(serializers.Serializer):
    currency = serializers.CharField(help_text="Lowercase ISO 4217.")
    unit_amount_decimal = serializers.SerializerMethodField(
        help_text="Minor units of the currency one credit pays (decimal string)."
    )

    def get_unit_amount_decimal(self, value) -> str:
        return decimal_text(value.unit_amount_decimal)


class CreditValueInput(serializers.Serializer):
    unit_amount_decimal = serializers.DecimalField(
        max_digits=20, decimal_places=12, min_value=0,
        help_text='Minor units one credit pays, e.g. "1" (1 credit = 1 cent) or "0.25".',
    )  # fmt: skip

    def validate_unit_amount_decimal(self, value):
        if value <= 0:
            raise serializers.ValidationError("Must be greater than 0.")
        return value


class CreditValueListView(APIView):
    @extend_schema(
        operation_id="credit_values_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_schema("CreditValuePage", CreditValueOutput)},
    )
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=credit_value_list(), serializer_class=CreditValueOutput
        )


class CreditValueDetailView(APIView):
    @extend_schema(
        operation_id="credit_values_set",
        request=CreditValueInput,
        responses={200: CreditValueOutput},
        description="Credits pay for usage in this currency at this value (invoices finalized from now on).",
    )
    def put(self, request, currency: str):
        data = CreditValueInput(data=request.data)
        data.is_valid(raise_exception=True)
        value = credit_value_set(
            currency=currency, unit_amount_decimal=data.validated_data["unit_amount_decimal"]
        )
        return Response(CreditValueOutput(value).data)

    @extend_schema(
        operation_id="credit_values_remove",
        request=None,
        responses={204: None, 404: OpenApiResponse(description="unknown_credit_value")},
    )
    def delete(self, request, currency: str):
        credit_value_remove(currency=currency)
        return Response(status=status.HTTP_204_NO_CONTENT)
