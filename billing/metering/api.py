"""Metering API: `POST /api/v1/events` (ingestion, lean), meters, usage queries."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.idempotency import idempotency_exempt, idempotent
from accounts.api.lean import LeanJSONView
from billing.memberships.selectors import customer_get
from billing.metering.exceptions import InvalidBatch, InvalidUsageQuery, UnknownMeter
from billing.metering.ingest import events_ingest
from billing.metering.models import Aggregation, Meter
from billing.metering.selectors import WINDOWS, month_start, usage_series, usage_total
from billing.metering.services import meter_create
from kernel.api.fields import StrictCharField
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response, single_page
from kernel.requestlog import request_log_note
from kernel.timestamps import TimestampError, timestamp_parse


def _outcome(inserted: int, duplicates: int, rejected: list[dict]) -> dict:
    """The request log's note for one ingestion call: counts and the rejection codes (never the
    events themselves, nor the messages, which may quote them)."""
    codes: dict[str, int] = {}
    for row in rejected:
        codes[row["code"]] = codes.get(row["code"], 0) + 1
    return {"inserted": inserted, "duplicates": duplicates, "rejected": len(rejected), "codes": codes}


class EventsView(LeanJSONView):
    """Ingest one usage event or `{"events": [...]}` (up to METERING_MAX_BATCH). Answers 202 with
    `{"inserted", "duplicates", "rejected": [{"index", "code", "message"}]}` once the accepted events
    are committed. Event ids de-duplicate exactly (a replayed batch inserts nothing), so no
    Idempotency-Key is needed. Needs the `write` scope."""

    required_scope = "write"
    allow_nul = True  # validation rejects an event holding a NUL alone

    def handle(self, request, data, prefetched):
        if isinstance(data, dict) and "events" in data:
            events = data["events"]
            if not isinstance(events, list):
                raise InvalidBatch("'events' must be a list of event objects.")
        elif isinstance(data, dict):
            events = [data]
        else:
            raise InvalidBatch('Send one event object or {"events": [...]}.')
        create = getattr(connection.tenant, "unknown_usage_customer", "reject") == "create"
        result = events_ingest(events=events, create_customers=create)
        request_log_note(request, _outcome(result.inserted, result.duplicates, result.rejected))
        return result.as_dict(), status.HTTP_202_ACCEPTED, None

    @extend_schema(
        operation_id="events_ingest",
        request=inline_serializer(
            "UsageEvents",
            {
                "events": serializers.ListField(
                    child=inline_serializer(
                        "UsageEvent",
                        {
                            "id": serializers.CharField(help_text="Idempotency key, unique per tenant."),
                            "customer": serializers.CharField(help_text="The customer's external id."),
                            "type": serializers.CharField(),
                            "timestamp": serializers.DateTimeField(help_text="RFC 3339 with an offset."),
                            "value": serializers.FloatField(default=1),
                            "properties": serializers.DictField(required=False),
                        },
                    )
                )
            },
        ),
        responses={
            202: inline_serializer(
                "IngestResult",
                {
                    "inserted": serializers.IntegerField(),
                    "duplicates": serializers.IntegerField(),
                    "rejected": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: OpenApiResponse(description="invalid_batch, invalid_json"),
            413: OpenApiResponse(description="batch_too_large, payload_too_large"),
        },
    )
    @idempotency_exempt("each event's id is its idempotency key: a replayed batch inserts nothing")
    def post(self, request):  # pragma: no cover - documentation only; dispatch() serves the request
        raise NotImplementedError


class MeterOutput(serializers.ModelSerializer):
    feature = serializers.CharField(source="feature.code", allow_null=True, default=None)

    class Meta:
        model = Meter
        fields = ["code", "name", "event_type", "aggregation", "value_property", "filters", "allow_negative",
                  "unit", "feature", "active", "created_at"]  # fmt: skip


class MeterInput(serializers.Serializer):
    code = StrictCharField(max_length=64)
    name = StrictCharField(max_length=200, required=False, default="")
    event_type = StrictCharField(max_length=100)
    aggregation = serializers.ChoiceField(choices=Aggregation.values)
    value_property = StrictCharField(max_length=100, required=False, default="")
    filters = serializers.DictField(required=False, default=dict)
    allow_negative = serializers.BooleanField(required=False, default=False)
    unit = StrictCharField(max_length=32, required=False, default="")
    feature = StrictCharField(max_length=64, required=False, allow_null=True, default=None)


class MeterListCreateView(APIView):
    """The tenant's meters; POST creates one and aggregates the stored events it matches."""

    @extend_schema(
        operation_id="meters_list",
        parameters=PAGE_PARAMETERS,
        responses=page_schema("MeterPage", MeterOutput),
    )
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=Meter.objects.select_related("feature"),
            serializer_class=MeterOutput, ordering="code",
        )  # fmt: skip

    @extend_schema(operation_id="meters_create", request=MeterInput, responses={201: MeterOutput})
    @idempotent
    def post(self, request):
        data = MeterInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        meter = meter_create(feature_code=values.pop("feature"), **values)
        return Response(MeterOutput(meter).data, status=status.HTTP_201_CREATED)


QUERY_LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def query_time(params, key: str, default: dt.datetime) -> dt.datetime:
    """An RFC 3339 query parameter with an offset (a '+' arrives as ' '), or `default`."""
    raw = params.get(key)
    if not raw:
        return default
    try:
        value = timestamp_parse(raw.replace(" ", "+"))  # a '+' in a query string arrives as ' '
    except TimestampError as exc:
        raise InvalidUsageQuery(f"'{key}': {exc.message}", details={"field": key}) from None
    if value >= QUERY_LATEST:  # rounding up to the next hour, day or month must stay within year 9999
        raise InvalidUsageQuery(f"'{key}' must be before {QUERY_LATEST:%Y-%m-%d}.", details={"field": key})
    return value


def _query(request) -> tuple[Meter, dt.datetime, dt.datetime, str]:
    params = request.query_params
    code = params.get("meter")
    if not code:
        raise InvalidUsageQuery("Name a meter: ?meter=<code>.", details={"field": "meter"})
    meter = Meter.objects.filter(code=code).first()
    if meter is None:
        raise UnknownMeter(f"No meter '{code}'.", details={"meter": code})
    now = timezone.now()
    start = query_time(params, "from", month_start(now))
    end = query_time(params, "to", now)
    window = params.get("window", "day")
    if window not in WINDOWS:
        raise InvalidUsageQuery(f"'window' is one of {', '.join(WINDOWS)}.", details={"field": "window"})
    return meter, start, end, window


USAGE_PARAMETERS = [
    OpenApiParameter("meter", str, required=True),
    OpenApiParameter("from", dt.datetime, description="RFC 3339; default: the start of this month (UTC)"),
    OpenApiParameter("to", dt.datetime, description="RFC 3339; default: now"),
    OpenApiParameter("window", str, enum=list(WINDOWS), description="default: day"),
]


class UsageBucket(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    value = serializers.FloatField(allow_null=True)


class UsageOutput(serializers.Serializer):
    customer = serializers.CharField(required=False)
    meter = serializers.CharField()
    aggregation = serializers.CharField()
    window = serializers.CharField()
    total = serializers.FloatField(allow_null=True)
    data = UsageBucket(many=True)


def _usage_body(meter, start, end, window, customer: str | None) -> dict:
    series = usage_series(meter=meter, start=start, end=end, window=window, customer=customer)
    return {
        "meter": meter.code,
        "aggregation": meter.aggregation,
        "window": window,
        "from": series[0]["start"] if series else start,
        "to": series[-1]["end"] if series else end,
        "total": usage_total(meter=meter, start=start, end=end, customer=customer),
        "data": series,
    }


class CustomerUsageView(APIView):
    """One customer's usage of a meter per window (from the hourly rollups)."""

    @extend_schema(operation_id="usage_customer", parameters=USAGE_PARAMETERS, responses=UsageOutput)
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        meter, start, end, window = _query(request)
        return Response(
            {"customer": customer.external_id, **_usage_body(meter, start, end, window, customer.external_id)}
        )


class TenantUsageView(APIView):
    """The whole tenant's usage of a meter per window (staff reporting)."""

    @extend_schema(operation_id="usage_tenant", parameters=USAGE_PARAMETERS, responses=UsageOutput)
    def get(self, request):
        meter, start, end, window = _query(request)
        return Response(_usage_body(meter, start, end, window, None))


class UnsyncedUsageView(APIView):
    """Usage not yet accepted by a provider: reports still pending and what the next nightly sync
    would send, per customer, meter and period (never silently dropped). `?customer=` narrows it."""

    @extend_schema(
        operation_id="usage_unsynced",
        parameters=[OpenApiParameter("customer", str)],
        responses=page_schema(
            "UnsyncedUsagePage",
            inline_serializer(
                "UnsyncedRow",
                {"customer": serializers.CharField(), "meter": serializers.CharField(),
                 "period_start": serializers.DateTimeField(), "period_end": serializers.DateTimeField(),
                 "quantity": serializers.IntegerField(), "kind": serializers.CharField()},
                many=True,
            ),
        ),
    )  # fmt: skip
    def get(self, request):
        from billing.metering.sync import usage_unsynced

        external_id = request.query_params.get("customer")
        customer = customer_get(external_id=external_id) if external_id else None
        return single_page(usage_unsynced(customer=customer))
