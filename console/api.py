"""`GET /api/v1/reports/overview?from=&to=`: the overview's figures, the same numbers the staff's
home page shows (console.overview). Amounts are integer minor units per lowercase currency."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from console.overview.range import MAX_RANGE_DAYS, range_parse
from console.overview.selectors import overview_get

_S = serializers


class OverviewMrrPoint(_S.Serializer):
    date = _S.DateField()
    amount = _S.IntegerField()


class OverviewMrrOutput(_S.Serializer):
    currency = _S.CharField()
    amount = _S.IntegerField(help_text="MRR on the range's last day, minor units.")
    arr = _S.IntegerField(help_text="MRR x 12.")
    series = OverviewMrrPoint(many=True)


class OverviewSubscriptionPoint(_S.Serializer):
    date = _S.DateField()
    active = _S.IntegerField()
    trialing = _S.IntegerField()
    past_due = _S.IntegerField()
    paused = _S.IntegerField()
    new = _S.IntegerField()
    churned = _S.IntegerField()


class OverviewSubscriptionsOutput(_S.Serializer):
    active = _S.IntegerField(help_text="On the range's last day.")
    trialing = _S.IntegerField()
    past_due = _S.IntegerField()
    paused = _S.IntegerField()
    new = _S.IntegerField(help_text="Became trialing, active or past due during the range.")
    churned = _S.IntegerField(help_text="Canceled or expired during the range.")
    series = OverviewSubscriptionPoint(many=True)


class OverviewNetPoint(_S.Serializer):
    date = _S.DateField()
    net = _S.IntegerField()


class OverviewRevenueOutput(_S.Serializer):
    currency = _S.CharField()
    charges = _S.IntegerField(help_text="Debits to cash:<provider> by provider charges.")
    refunds = _S.IntegerField(help_text="Entries of the ledger's `refunds` account.")
    chargebacks = _S.IntegerField(help_text="Entries of the ledger's `chargebacks` account.")
    net = _S.IntegerField(help_text="charges - refunds - chargebacks (fees not taken off).")
    fees = _S.IntegerField(help_text="Entries of the ledger's `provider_fees` account.")
    series = OverviewNetPoint(many=True)


class OverviewAmountOutput(_S.Serializer):
    currency = _S.CharField()
    amount = _S.IntegerField()


class OverviewPastDueOutput(_S.Serializer):
    membership = _S.IntegerField()
    customer = _S.CharField()
    email = _S.CharField(allow_blank=True)
    tier = _S.CharField()
    since = _S.DateTimeField(allow_null=True)


class OverviewOpenInvoiceOutput(_S.Serializer):
    invoice = _S.IntegerField()
    number = _S.CharField(allow_blank=True)
    customer = _S.CharField()
    currency = _S.CharField()
    amount_due = _S.IntegerField()
    due_at = _S.DateTimeField(allow_null=True)


class OverviewFailedPoint(_S.Serializer):
    date = _S.DateField()
    failed_charges = _S.IntegerField()


class OverviewFailedPaymentsOutput(_S.Serializer):
    past_due = _S.IntegerField(help_text="Memberships past due now.")
    invoices = _S.IntegerField(help_text="Open invoices with a failed payment attempt, now.")
    amount_due = OverviewAmountOutput(many=True)
    failed_charges = _S.IntegerField(help_text="Failed charges during the range.")
    past_due_memberships = OverviewPastDueOutput(many=True, help_text="The first 10, longest past due first.")
    open_invoices = OverviewOpenInvoiceOutput(many=True, help_text="The first 10, earliest due first.")
    series = OverviewFailedPoint(many=True)


class OverviewSyncRunOutput(_S.Serializer):
    started_at = _S.DateTimeField()
    finished_at = _S.DateTimeField(allow_null=True)
    status = _S.CharField()
    customers = _S.IntegerField()
    failures = _S.IntegerField()


class OverviewSyncPoint(_S.Serializer):
    date = _S.DateField()
    units = _S.IntegerField()
    failures = _S.IntegerField()


class OverviewUsageSyncOutput(_S.Serializer):
    pending_reports = _S.IntegerField(help_text="Usage reports not yet accepted by a provider, now.")
    pending_units = _S.IntegerField()
    refused_reports = _S.IntegerField(help_text="Reports a provider refused during the range.")
    refused_units = _S.IntegerField()
    last_run = OverviewSyncRunOutput(allow_null=True)
    series = OverviewSyncPoint(many=True)


class OverviewEndpointOutput(_S.Serializer):
    id = _S.IntegerField()
    url = _S.CharField()
    is_active = _S.BooleanField()
    consecutive_failures = _S.IntegerField()
    disabled_reason = _S.CharField(allow_blank=True)


class OverviewWebhookPoint(_S.Serializer):
    date = _S.DateField()
    inbox = _S.IntegerField()
    deliveries = _S.IntegerField()


class OverviewWebhooksOutput(_S.Serializer):
    inbox_dead = _S.IntegerField()
    inbox_failed = _S.IntegerField()
    inbox_unmatched = _S.IntegerField()
    deliveries_dead = _S.IntegerField()
    deliveries_failed = _S.IntegerField()
    failing_endpoints = OverviewEndpointOutput(many=True)
    series = OverviewWebhookPoint(many=True)


class OverviewOutput(_S.Serializer):
    from_ = _S.DateField()
    to = _S.DateField()
    as_of = _S.DateTimeField(help_text="When the figures were computed (they are kept up to a minute).")
    mrr = OverviewMrrOutput(many=True)
    subscriptions = OverviewSubscriptionsOutput()
    revenue = OverviewRevenueOutput(many=True)
    failed_payments = OverviewFailedPaymentsOutput()
    usage_sync = OverviewUsageSyncOutput()
    webhooks = OverviewWebhooksOutput()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class OverviewReportView(APIView):
    """The overview's figures over whole UTC days `from`..`to` (both included; default the last 30
    days), each with a point per day. Computed at most a minute ago (`as_of`)."""

    @extend_schema(
        operation_id="reports_overview",
        parameters=[
            OpenApiParameter(
                "from", dt.date, description="First day, YYYY-MM-DD (default: 29 days before `to`)."
            ),
            OpenApiParameter(
                "to", dt.date, description="Last day, YYYY-MM-DD, included (default: today, UTC)."
            ),
        ],
        responses={
            200: OverviewOutput,
            400: OpenApiResponse(description=f"invalid_report_range (more than {MAX_RANGE_DAYS} days, …)"),
        },
    )
    def get(self, request):
        params = request.query_params
        period = range_parse(start=params.get("from"), end=params.get("to"))
        return Response(OverviewOutput(overview_get(period=period)).data)
