"""`GET /api/v1/reports/revenue`: billed, collected, deferred and recognized revenue per UTC day or
calendar month (billing.ledger.reports), as JSON or, with `?format=csv` or `Accept: text/csv`, CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.ledger.exceptions import ReportQueryInvalid
from billing.ledger.reports import FIGURES, INTERVALS, report_periods, revenue_report

MAX_PERIODS = {"day": 366, "month": 120}
_CURRENCY = re.compile(r"^[a-z]{3}$")
COLUMNS = ("period_start", "period_end", "currency", *FIGURES)


class CSVRenderer(renderers.BaseRenderer):
    """The report's rows as CSV, one line per period and currency, a header first."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in (data or {}).get("periods", []):
            writer.writerow([row[column] for column in COLUMNS])
        return out.getvalue().encode()


class RevenuePeriodOutput(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateField(help_text="Exclusive: the day after the period's last day.")
    currency = serializers.CharField()
    billed = serializers.IntegerField(help_text="Invoices finalized in the period and not voided since.")
    collected = serializers.IntegerField(help_text="Charges received in the period.")
    deferred = serializers.IntegerField(help_text="Deferred revenue at the period's end.")
    recognized = serializers.IntegerField(help_text="Revenue recognized in the period.")


# "from" is a Python keyword: the serializer is built from a dict so the schema names it as it is sent
RevenueReportOutput = type(
    "RevenueReportOutput",
    (serializers.Serializer,),
    {
        "from": serializers.DateField(),
        "to": serializers.DateField(),
        "interval": serializers.ChoiceField(choices=INTERVALS),
        "currency": serializers.CharField(allow_null=True, help_text="The currency asked for, or null: all."),
        "periods": RevenuePeriodOutput(many=True),
    },
)


def _date(params, key: str) -> dt.date:
    raw = params.get(key)
    if not raw:
        raise ReportQueryInvalid(f"'{key}' is required (YYYY-MM-DD).", details={"field": key})
    try:
        return dt.date.fromisoformat(raw) if len(raw) == 10 else dt.date.fromisoformat("bad")
    except ValueError:
        raise ReportQueryInvalid(f"'{key}' is a date, YYYY-MM-DD.", details={"field": key}) from None


class RevenueReportView(APIView):
    """Billed, collected, deferred and recognized revenue per UTC day or calendar month, from the
    ledger. All amounts are positive minor units. `from` and `to` are both included."""

    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    @extend_schema(
        operation_id="reports_revenue",
        parameters=[
            OpenApiParameter("from", dt.date, required=True, description="First day (YYYY-MM-DD, UTC)."),
            OpenApiParameter("to", dt.date, required=True, description="Last day, included (YYYY-MM-DD)."),
            OpenApiParameter(
                "interval",
                str,
                enum=list(INTERVALS),
                description="`day` (default, at most 366) or `month` (at most 120).",
            ),
            OpenApiParameter("currency", str, description="A lowercase currency code: only that currency."),
            OpenApiParameter(
                "format",
                str,
                enum=["json", "csv"],
                description="`csv` for CSV (the same as `Accept: text/csv`); JSON by default.",
            ),  # fmt: skip
        ],
        responses={
            (200, "application/json"): RevenueReportOutput,
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description="A header `" + ",".join(COLUMNS) + "`, then one line per period and currency.",
            ),
            400: OpenApiResponse(description="invalid_report_query"),
        },
    )
    def get(self, request):
        params = request.query_params
        start, end = _date(params, "from"), _date(params, "to")
        if end < start:
            raise ReportQueryInvalid("'to' must not be before 'from'.", details={"field": "to"})
        interval = params.get("interval") or "day"
        if interval not in INTERVALS:
            raise ReportQueryInvalid("'interval' is `day` or `month`.", details={"field": "interval"})
        currency = params.get("currency") or None
        if currency is not None and not _CURRENCY.match(currency):
            raise ReportQueryInvalid(
                "'currency' is a lowercase three-letter code.", details={"field": "currency"}
            )
        limit = MAX_PERIODS[interval]
        if (end - start).days > limit * 31 or len(
            report_periods(start=start, end=end, interval=interval)
        ) > limit:
            raise ReportQueryInvalid(
                f"At most {limit} periods of a {interval} at once.",
                details={"field": "to", "max_periods": limit},
            )
        rows = revenue_report(start=start, end=end, interval=interval, currency=currency)
        report = {"from": start, "to": end, "interval": interval, "currency": currency, "periods": rows}
        return Response(RevenueReportOutput(report).data)

    def handle_exception(self, exc):
        # an error is JSON whatever was asked for (a CSV client reads the status and the error body)
        self.request.accepted_renderer = renderers.JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return super().handle_exception(exc)
