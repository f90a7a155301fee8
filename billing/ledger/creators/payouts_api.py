"""Payouts API: `GET|POST /api/v1/creators/{handle}/payouts`, `GET …/payouts/{id}`."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotent
from billing.ledger.creators.api import AmountField
from billing.ledger.creators.models import PayoutState
from billing.ledger.creators.payouts import payout_get, payout_list, payout_request
from billing.ledger.creators.selectors import creator_get
from kernel.api.fields import BIGINT_MAX, StrictRegexField
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response

NOT_FOUND = OpenApiResponse(description="unknown_creator / unknown_payout")


class PayoutOutput(serializers.Serializer):
    id = serializers.IntegerField()
    creator = serializers.CharField(source="creator.handle")
    amount = serializers.IntegerField(help_text="Minor units.")
    currency = serializers.CharField()
    status = serializers.ChoiceField(
        choices=PayoutState.values, help_text="requested → processing → paid | failed"
    )
    provider = serializers.CharField()
    provider_transfer_id = serializers.CharField(allow_blank=True)
    provider_payout_id = serializers.CharField(allow_blank=True)
    failure_message = serializers.CharField(allow_blank=True)
    requested_at = serializers.DateTimeField()
    processing_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)


class PayoutInput(serializers.Serializer):
    amount = AmountField(
        required=False, min_value=1, max_value=BIGINT_MAX,
        help_text="Minor units; default: everything available in `currency`.",
    )  # fmt: skip
    currency = StrictRegexField(r"^[A-Za-z]{3}$", help_text="Lowercase ISO 4217.")


class CreatorPayoutsView(APIView):
    @extend_schema(
        operation_id="creator_payouts_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_schema("PayoutPage", PayoutOutput), 404: NOT_FOUND},
    )
    def get(self, request, handle: str):
        creator = creator_get(handle=handle)
        return paginated_response(
            request=request, view=self, queryset=payout_list(creator=creator), serializer_class=PayoutOutput
        )

    @extend_schema(
        operation_id="creator_payouts_create",
        request=PayoutInput,
        responses={
            201: PayoutOutput,
            404: NOT_FOUND,
            409: OpenApiResponse(
                description="payouts_not_enabled / insufficient_balance / payout_below_minimum"
            ),
        },
        description="Pay the creator's available balance (or `amount` of it) out to their connected "
        "account; the transfer follows in the background (`payout.paid` / `payout.failed` events).",
    )
    @idempotent
    def post(self, request, handle: str):
        creator = creator_get(handle=handle)
        data = PayoutInput(data=request.data)
        data.is_valid(raise_exception=True)
        payout = payout_request(
            creator=creator,
            currency=data.validated_data["currency"].lower(),
            amount=data.validated_data.get("amount"),
        )
        return Response(PayoutOutput(payout).data, status=status.HTTP_201_CREATED)


class CreatorPayoutDetailView(APIView):
    @extend_schema(operation_id="creator_payouts_get", responses={200: PayoutOutput, 404: NOT_FOUND})
    def get(self, request, handle: str, payout_id: int):
        return Response(
            PayoutOutput(payout_get(creator=creator_get(handle=handle), payout_id=payout_id)).data
        )
