"""Reads for the Developers page: webhook endpoints and their deliveries, the provider-event inbox,
the recent API calls and usage events. Every list is bounded (a page of PAGE_SIZE rows, keyset on
the id, newest first); a missing id raises Http404, which is also what another tenant's id gets
(its rows live in another schema)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q
from django.http import Http404
from django.utils import timezone

from accounts.models import IntegratorApiKey
from accounts.selectors import api_key_list
from billing.events.models import Delivery, DeliveryStatus, WebhookEndpoint
from billing.inbox.models import InboxEvent, InboxStatus
from billing.metering.models import UsageEvent
from kernel.requestlog import request_log_recent

PAGE_SIZE = 50
PREVIEW_CHARS = 4000
USAGE_WINDOW = dt.timedelta(days=2)
INBOX_REPLAYABLE = (InboxStatus.FAILED, InboxStatus.DEAD, InboxStatus.UNMATCHED)


@dataclass(frozen=True)
class Page:
    rows: list
    next_before: int | None  # the `before` of the next (older) page, None on the last one


def _page(queryset, *, before: int | None) -> Page:
    if before is not None:
        queryset = queryset.filter(pk__lt=before)
    rows = list(queryset.order_by("-pk")[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return Page(rows=rows, next_before=rows[-1].pk if more else None)


def _checked(pk: int, message: str) -> int:
    """An id the database can hold (a bigint), else the 404 an unknown id gets."""
    if not 0 < pk < 2**63:
        raise Http404(message)
    return pk


def json_preview(value) -> str:
    """Pretty JSON, cut at PREVIEW_CHARS (a page never ships a megabyte payload)."""
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "\n… (truncated)"


def developers_summary() -> dict:
    """The figures of the Developers home: keys, endpoints, inbox trouble (four queries)."""
    keys = api_key_list().filter(revoked_at__isnull=True).count()
    endpoints = WebhookEndpoint.objects.aggregate(
        total=Count("pk"),
        failing=Count("pk", filter=Q(is_active=False) | Q(consecutive_failures__gt=0)),
    )
    deliveries_dead = Delivery.objects.filter(status=DeliveryStatus.DEAD).count()
    inbox = InboxEvent.objects.aggregate(
        failed=Count("pk", filter=Q(status=InboxStatus.FAILED)),
        dead=Count("pk", filter=Q(status=InboxStatus.DEAD)),
        unmatched=Count("pk", filter=Q(status=InboxStatus.UNMATCHED)),
    )
    return {"active_keys": keys, "endpoints": endpoints, "deliveries_dead": deliveries_dead, "inbox": inbox}


def api_key_get(*, key_id: int) -> IntegratorApiKey:
    key = api_key_list().filter(pk=_checked(key_id, "No such key.")).first()
    if key is None:
        raise Http404("No such key.")
    return key


def endpoint_list() -> list[dict]:
    """Every endpoint (a tenant has at most WEBHOOK_ENDPOINTS_MAX) with its delivery counts."""
    rows = WebhookEndpoint.objects.annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.SUCCEEDED)),
        open=Count(
            "deliveries", filter=Q(deliveries__status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
        ),
        dead=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.DEAD)),
    ).order_by("pk")
    return list(rows)


def endpoint_get(*, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=_checked(endpoint_id, "No such webhook endpoint.")).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    return endpoint


def delivery_list(*, endpoint: WebhookEndpoint, status: str = "", before: int | None = None) -> Page:
    deliveries = Delivery.objects.filter(endpoint=endpoint).select_related("event")
    if status:
        deliveries = deliveries.filter(status=status)
    return _page(deliveries, before=before)


def delivery_get(*, endpoint_id: int, delivery_id: int) -> Delivery:
    """One delivery of one endpoint, with its event and attempt log (404 when either is not ours)."""
    delivery = (
        Delivery.objects.select_related("event", "endpoint")
        .filter(
            pk=_checked(delivery_id, "No such delivery."),
            endpoint_id=_checked(endpoint_id, "No such delivery."),
        )
        .first()
    )
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery


def delivery_attempts(*, delivery: Delivery) -> list:
    return list(delivery.log.order_by("-pk")[:PAGE_SIZE])


def inbox_list(
    *,
    provider: str = "",
    status: str = "",
    event_type: str = "",
    received_from: dt.date | None = None,
    received_to: dt.date | None = None,
    before: int | None = None,
) -> Page:
    """The inbox newest first, filtered; the payload is left out of the list's query."""
    events = InboxEvent.objects.defer("payload")
    if provider:
        events = events.filter(provider=provider)
    if status:
        events = events.filter(status=status)
    if event_type:
        events = events.filter(event_type__icontains=event_type)
    if received_from:
        events = events.filter(received_at__gte=_day_start(received_from))
    if received_to:
        events = events.filter(received_at__lt=_day_start(received_to + dt.timedelta(days=1)))
    return _page(events, before=before)


def inbox_providers() -> list[str]:
    """The providers that have sent this tenant events (the inbox filter's choices)."""
    return sorted(InboxEvent.objects.order_by().values_list("provider", flat=True).distinct())


def inbox_event_get(*, inbox_id: int) -> InboxEvent:
    event = InboxEvent.objects.filter(pk=_checked(inbox_id, "No such provider event.")).first()
    if event is None:
        raise Http404("No such provider event.")
    return event


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def api_calls_recent(*, outcome: str = "", method: str = "", limit: int = 200) -> list[dict]:
    """The tenant's recent integrator API calls from the request log, newest first. `outcome`:
    "ok" (2xx/3xx) or "error" (4xx/5xx)."""
    rows = request_log_recent(schema=connection.schema_name, limit=limit)
    if outcome == "ok":
        rows = [row for row in rows if row.get("status", 0) < 400]
    elif outcome == "error":
        rows = [row for row in rows if row.get("status", 0) >= 400]
    if method:
        rows = [row for row in rows if row.get("method") == method]
    for row in rows:
        row["at"] = dt.datetime.fromtimestamp(row.get("at", 0), tz=dt.UTC)
    return rows


def ingest_calls_recent(*, calls: list[dict]) -> list[dict]:
    """The ingestion calls among `calls`, each with its outcome note (accepted, duplicates,
    rejected and the rejection codes)."""
    return [row for row in calls if row.get("note") and row.get("path", "").rstrip("/").endswith("/events")]


def usage_events_recent(*, customer: str = "", limit: int = PAGE_SIZE) -> list[UsageEvent]:
    """Accepted usage events received lately, newest first. Read within USAGE_WINDOW of event time
    (the table is partitioned and BRIN-indexed on `ts`), so the query stays bounded at any size."""
    since = timezone.now() - USAGE_WINDOW
    events = UsageEvent.objects.filter(ts__gte=since)
    if customer:
        events = events.filter(customer=customer)
    return list(events.order_by("-received_at")[:limit])
