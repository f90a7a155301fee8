"""Reconciliation API (read-only): the runs, newest first, and one run with its differences.
Amounts are minor units of the item's currency; a provider's refund is negative, as in its books."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.ledger.reconciliation.models import ItemKind, RunStatus
from billing.ledger.reconciliation.selectors import (
    reconciliation_items,
    reconciliation_run_get,
    reconciliation_run_list,
)
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response


class RunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField()
    day = serializers.DateField(help_text="The UTC day compared.")
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    provider_count = serializers.IntegerField(help_text="The provider's charges and refunds that day.")
    ledger_count = serializers.IntegerField(help_text="Our recorded charges and refunds that day.")
    matched_count = serializers.IntegerField()
    difference_count = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ItemKind.choices)
    provider_ref = serializers.CharField(
        allow_blank=True, help_text="The provider's id of the charge or refund."
    )
    provider_entry = serializers.CharField(allow_blank=True, help_text="Its balance transaction's id.")
    payment_id = serializers.IntegerField(allow_null=True, help_text="Our payment's id, when we have one.")
    currency = serializers.CharField(allow_blank=True)
    provider_amount = serializers.IntegerField(allow_null=True)
    provider_fee = serializers.IntegerField(allow_null=True)
    our_amount = serializers.IntegerField(allow_null=True)
    our_fee = serializers.IntegerField(allow_null=True)
    ledger_amount = serializers.IntegerField(
        allow_null=True, help_text="What our ledger moved on cash:<provider> for it (null: never posted)."
    )
    occurred_at = serializers.DateTimeField(allow_null=True)
    details = serializers.DictField()


class RunDetailOutput(RunOutput):
    items = ItemOutput(many=True, source="differences")


BAD_QUERY = OpenApiResponse(description="invalid_reconciliation_query")


class ReconciliationRunListView(APIView):
    """Reconciliation runs, newest first; filtered by provider and status."""

    @extend_schema(
        operation_id="reconciliation_runs_list",
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("provider", str, description="`stripe`, `sandbox`, …"),
            OpenApiParameter("status", str, enum=list(RunStatus.values)),
        ],
        responses={200: page_schema("ReconciliationRunPage", RunOutput), 400: BAD_QUERY},
    )
    def get(self, request):
        params = request.query_params
        runs = reconciliation_run_list(
            provider=params.get("provider") or None, status=params.get("status") or None
        )
        return paginated_response(request=request, view=self, queryset=runs, serializer_class=RunOutput)


class ReconciliationRunDetailView(APIView):
    """One run with its unexplained differences (optionally of one kind)."""

    @extend_schema(
        operation_id="reconciliation_runs_get",
        parameters=[OpenApiParameter("kind", str, enum=list(ItemKind.values))],
        responses={
            200: RunDetailOutput,
            400: BAD_QUERY,
            404: OpenApiResponse(description="unknown_reconciliation_run"),
        },
    )
    def get(self, request, run_id: int):
        run = reconciliation_run_get(run_id=run_id)
        run.differences = list(reconciliation_items(run=run, kind=request.query_params.get("kind") or None))
        return Response(RunDetailOutput(run).data)
