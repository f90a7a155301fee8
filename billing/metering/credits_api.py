"""Credits API: balance and grants per customer, burn rates, AI prices, AI cost report.

Amounts are given in credits (up to 6 decimal places) and answered both as a decimal string of
credits and as integer micro-credits (`*_micros`, 1 credit = 1,000,000)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotent
from billing.memberships.selectors import customer_get
from billing.metering.api import query_time
from billing.metering.credit_adjustments import MAX_REASON, credits_adjust
from billing.metering.credit_models import (
    AiPrice,
    BurnRate,
    CreditGrant,
    CreditLedgerEntry,
    GrantSource,
    credits_text,
)
from billing.metering.credit_selectors import (
    ai_costs,
    credit_balance,
    credit_grants_active,
    credit_ledger_recent,
)
from billing.metering.credits import (
    ai_price_create,
    burn_rate_create,
    credit_grant_create,
    credits_to_micros,
)
from billing.metering.exceptions import InvalidUsageQuery
from billing.metering.selectors import month_start
from kernel.api.fields import StrictCharField
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response


@extend_schema_field(OpenApiTypes.STR)
class _Credits(serializers.Field):
    """Micro-credits rendered as a decimal string of credits."""

    def to_representation(self, value):
        return credits_text(value)


class GrantOutput(serializers.ModelSerializer):
    amount = _Credits()
    remaining = _Credits()
    amount_micros = serializers.IntegerField(source="amount")
    remaining_micros = serializers.IntegerField(source="remaining")

    class Meta:
        model = CreditGrant
        fields = ["id", "amount", "remaining", "amount_micros", "remaining_micros", "priority", "effective_at",
                  "expires_at", "source", "reference", "created_at"]  # fmt: skip


class LedgerOutput(serializers.ModelSerializer):
    amount = _Credits()
    overage = _Credits()
    balance_after = _Credits()
    amount_micros = serializers.IntegerField(source="amount")
    overage_micros = serializers.IntegerField(source="overage")
    balance_after_micros = serializers.IntegerField(source="balance_after")

    class Meta:
        model = CreditLedgerEntry
        fields = ["id", "kind", "amount", "overage", "balance_after", "amount_micros", "overage_micros",
                  "balance_after_micros", "grant", "reference", "details", "created_at"]  # fmt: skip


class GrantInput(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=18, decimal_places=6, min_value=Decimal("0.000001"))
    priority = serializers.IntegerField(
        required=False, default=100, min_value=-1_000_000, max_value=1_000_000
    )
    effective_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    source = serializers.ChoiceField(choices=GrantSource.values, required=False, default=GrantSource.MANUAL)
    reference = StrictCharField(max_length=255, required=False, default="")

    def validate(self, attrs):
        start = attrs.get("effective_at") or timezone.now()
        if attrs.get("expires_at") is not None and attrs["expires_at"] <= start:
            raise serializers.ValidationError({"expires_at": "Must be after effective_at (default: now)."})
        return attrs


class CustomerCreditsView(APIView):
    """A customer's credit balance (all grants; `available`: usable now; `overage`: cost no grant
    covered), active grants in burn order and the 50 latest ledger entries."""

    @extend_schema(
        operation_id="credits_get",
        responses=inline_serializer(
            "CreditBalance",
            {
                "customer": serializers.CharField(), "balance": serializers.CharField(),
                "balance_micros": serializers.IntegerField(), "available": serializers.CharField(),
                "available_micros": serializers.IntegerField(), "overage": serializers.CharField(),
                "overage_micros": serializers.IntegerField(), "grants": GrantOutput(many=True),
                "ledger": LedgerOutput(many=True),
            },
        ),
    )  # fmt: skip
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        return Response(
            {
                "customer": customer.external_id,
                **credit_balance(customer=customer),
                "grants": GrantOutput(credit_grants_active(customer=customer), many=True).data,
                "ledger": LedgerOutput(credit_ledger_recent(customer=customer), many=True).data,
            }
        )


class CustomerGrantCreateView(APIView):
    """Grant credits (write scope). `reference` is the grant's idempotency key per customer: the
    same reference again answers the first grant with 200 (409 if its terms differ)."""

    @extend_schema(
        operation_id="credits_grant", request=GrantInput, responses={201: GrantOutput, 200: GrantOutput}
    )
    @idempotent
    def post(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = GrantInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        grant, created = credit_grant_create(
            customer=customer, amount=credits_to_micros(values.pop("amount")), **values
        )
        return Response(
            GrantOutput(grant).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class AdjustmentInput(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=18, decimal_places=6, help_text="Credits to add (positive) or take back (negative)."
    )
    reason = StrictCharField(max_length=MAX_REASON, help_text="Why: kept on the ledger entries.")
    reference = StrictCharField(max_length=255, required=False, default="")


class AdjustmentOutput(serializers.Serializer):
    reference = serializers.CharField()
    amount = _Credits()
    amount_micros = serializers.IntegerField(source="amount")
    balance = _Credits()
    balance_micros = serializers.IntegerField(source="balance")
    entries = LedgerOutput(many=True)


class CustomerCreditAdjustView(APIView):
    """Correct a customer's balance (write scope): `adjust` ledger entries. A positive amount adds
    credits in a grant of its own; a negative one takes them back from the usable grants in burn
    order (409 `insufficient_credits` if they hold too few). `reference` is the idempotency key:
    the same reference again answers the first adjustment with 200 (409 if the amount differs)."""

    @extend_schema(
        operation_id="credits_adjust",
        request=AdjustmentInput,
        responses={201: AdjustmentOutput, 200: AdjustmentOutput},
    )
    @idempotent
    def post(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = AdjustmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        adjustment = credits_adjust(
            customer=customer,
            amount=credits_to_micros(values["amount"]),
            reason=values["reason"],
            reference=values["reference"],
        )
        return Response(
            AdjustmentOutput(adjustment).data,
            status=status.HTTP_201_CREATED if adjustment.created else status.HTTP_200_OK,
        )


class BurnRateOutput(serializers.ModelSerializer):
    meter = serializers.CharField(source="meter.code")

    class Meta:
        model = BurnRate
        fields = ["id", "meter", "credits_per_unit", "effective_from", "created_at"]


class BurnRateInput(serializers.Serializer):
    meter = StrictCharField(max_length=64)
    credits_per_unit = serializers.DecimalField(max_digits=24, decimal_places=9, min_value=Decimal(0))
    effective_from = serializers.DateTimeField(required=False, allow_null=True, default=None)


class BurnRateListCreateView(APIView):
    """Burn rates with their history; POST appends a rate from `effective_from` (default now).
    Rates are never edited: an event is priced by the rate effective at its timestamp."""

    @extend_schema(
        operation_id="burn_rates_list",
        parameters=PAGE_PARAMETERS,
        responses=page_schema("BurnRatePage", BurnRateOutput),
    )
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=BurnRate.objects.select_related("meter"),
            serializer_class=BurnRateOutput, ordering="id",
        )  # fmt: skip

    @extend_schema(operation_id="burn_rates_create", request=BurnRateInput, responses={201: BurnRateOutput})
    @idempotent
    def post(self, request):
        data = BurnRateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        rate = burn_rate_create(
            meter_code=values["meter"],
            credits_per_unit=values["credits_per_unit"],
            effective_from=values["effective_from"],
        )
        return Response(BurnRateOutput(rate).data, status=status.HTTP_201_CREATED)


class AiPriceOutput(serializers.ModelSerializer):
    class Meta:
        model = AiPrice
        fields = ["id", "provider", "model", "input_per_1k", "output_per_1k", "effective_from", "created_at"]


class AiPriceInput(serializers.Serializer):
    provider = StrictCharField(max_length=64)
    model = StrictCharField(max_length=128)
    input_per_1k = serializers.DecimalField(max_digits=24, decimal_places=9, min_value=Decimal(0))
    output_per_1k = serializers.DecimalField(max_digits=24, decimal_places=9, min_value=Decimal(0))
    effective_from = serializers.DateTimeField(required=False, allow_null=True, default=None)


class AiPriceListCreateView(APIView):
    """The AI price table (credits per 1,000 input / output tokens) with its history; POST appends."""

    @extend_schema(
        operation_id="ai_prices_list",
        parameters=PAGE_PARAMETERS,
        responses=page_schema("AiPricePage", AiPriceOutput),
    )
    def get(self, request):
        return paginated_response(
            request=request,
            view=self,
            queryset=AiPrice.objects.all(),
            serializer_class=AiPriceOutput,
            ordering="id",
        )

    @extend_schema(operation_id="ai_prices_create", request=AiPriceInput, responses={201: AiPriceOutput})
    @idempotent
    def post(self, request):
        data = AiPriceInput(data=request.data)
        data.is_valid(raise_exception=True)
        price = ai_price_create(**data.validated_data)
        return Response(AiPriceOutput(price).data, status=status.HTTP_201_CREATED)


class AiCostRow(serializers.Serializer):  # noqa: N801  (documentation only)
    customer = serializers.CharField(required=False, help_text="with ?by=customer")
    provider = serializers.CharField()
    model = serializers.CharField()
    events = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    credits = serializers.CharField()
    unpriced_events = serializers.IntegerField()


class CustomerAiCostsView(APIView):
    """Per provider and model: events, input/output tokens and credits of the customer's AI events
    in [from, to) (default: this calendar month), priced at each event's timestamp."""

    @extend_schema(
        operation_id="ai_costs_customer",
        parameters=[OpenApiParameter("from", dt.datetime), OpenApiParameter("to", dt.datetime)],
        responses=inline_serializer(
            "AiCostsCustomer",
            {"customer": serializers.CharField(), "from": serializers.DateTimeField(), "to": serializers.DateTimeField(),
             "data": AiCostRow(many=True)},
        ),
    )  # fmt: skip
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        now = timezone.now()
        start = query_time(request.query_params, "from", month_start(now))
        end = query_time(request.query_params, "to", now)
        if end <= start:
            raise InvalidUsageQuery("'to' must be after 'from'.", details={"field": "to"})
        return Response(
            {
                "customer": customer.external_id,
                "from": start,
                "to": end,
                "data": ai_costs(customer=customer, start=start, end=end),
            }
        )


class TenantAiCostsView(APIView):
    """The tenant's AI costs per provider and model in [from, to) (default: this calendar month);
    `?by=customer` splits them per customer, costliest first (staff reporting)."""

    @extend_schema(
        operation_id="ai_costs_tenant",
        parameters=[OpenApiParameter("from", dt.datetime), OpenApiParameter("to", dt.datetime),
                    OpenApiParameter("by", str, enum=["model", "customer"])],
        responses=inline_serializer(
            "AiCostsTenant",
            {"from": serializers.DateTimeField(), "to": serializers.DateTimeField(), "by": serializers.CharField(),
             "data": AiCostRow(many=True)},
        ),
    )  # fmt: skip
    def get(self, request):
        now = timezone.now()
        start = query_time(request.query_params, "from", month_start(now))
        end = query_time(request.query_params, "to", now)
        if end <= start:
            raise InvalidUsageQuery("'to' must be after 'from'.", details={"field": "to"})
        by = request.query_params.get("by", "model")
        if by not in ("model", "customer"):
            raise InvalidUsageQuery("'by' is model or customer.", details={"field": "by"})
        data = ai_costs(customer=None, start=start, end=end, by_customer=by == "customer")
        return Response({"from": start, "to": end, "by": by, "data": data})
