"""What needs staff: failed payments (past-due memberships, open invoices with a failed attempt),
usage not yet accepted by a provider (meter sync), and webhook health (provider events in the
inbox that did not apply, our endpoints that fail). One to three queries each, daily counts grouped
in the database."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Case, Count, DateField, Exists, F, OuterRef, Q, Sum, When
from django.db.models.functions import TruncDate

from billing.events.models import Delivery, DeliveryStatus, WebhookEndpoint
from billing.inbox.models import InboxEvent, InboxStatus
from billing.invoicing.models import Invoice, InvoicePayment, InvoiceStatus
from billing.memberships.models import Membership, MembershipStatus, Payment, PaymentKind
from billing.metering.models import MeterSyncReport, MeterSyncRun, ReportStatus
from console.overview.range import DateRange

LIST_LIMIT = 10
INBOX_PROBLEMS = (InboxStatus.DEAD, InboxStatus.FAILED, InboxStatus.UNMATCHED)
DELIVERY_PROBLEMS = (DeliveryStatus.DEAD, DeliveryStatus.FAILED)


def _daily(queryset, field: str, period: DateRange, **filters) -> dict[dt.date, int]:
    """Rows of `queryset` per UTC day of `field` within `period` (one GROUP BY query)."""
    rows = (
        queryset.filter(**{f"{field}__gte": period.since, f"{field}__lt": period.until}, **filters)
        .annotate(day=TruncDate(field, tzinfo=dt.UTC))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    return dict(rows)


def _problems(queryset, field: str, period: DateRange, statuses) -> tuple[dict[str, int], dict[dt.date, int]]:
    """Rows of `queryset` in `statuses`: how many of each status (now), and how many per UTC day of
    `field` within `period`, in one GROUP BY query (the day is NULL outside the range)."""
    in_range = Q(**{f"{field}__gte": period.since, f"{field}__lt": period.until})
    rows = (
        queryset.filter(status__in=statuses)
        .annotate(day=Case(When(in_range, then=TruncDate(field, tzinfo=dt.UTC)), output_field=DateField()))
        .values("status", "day")
        .annotate(n=Count("pk"))
        .values_list("status", "day", "n")
    )
    totals: dict[str, int] = defaultdict(int)
    daily: dict[dt.date, int] = defaultdict(int)
    for status, day, n in rows:
        totals[status] += n
        if day is not None:
            daily[day] += n
    return totals, daily


def failed_payment_figures(*, period: DateRange) -> dict:
    """Past-due memberships and open invoices with a failed payment attempt (now, with the first
    of each to open), and the failed charges on each day of `period`."""
    past_due = Membership.objects.filter(status=MembershipStatus.PAST_DUE)
    failed_attempt = InvoicePayment.objects.filter(invoice=OuterRef("pk"), payment__kind=PaymentKind.FAILED)
    invoices = Invoice.objects.filter(Exists(failed_attempt), status=InvoiceStatus.OPEN)
    due = (
        invoices.values("currency")
        .annotate(amount=Sum(F("total") - F("amount_paid") - F("amount_credited")), n=Count("pk"))
        .order_by("currency")
    )
    failed = _daily(Payment.objects.all(), "occurred_at", period, kind=PaymentKind.FAILED)
    dates = period.dates()
    return {
        "past_due": past_due.count(),
        "invoices": sum(row["n"] for row in due),
        "amount_due": [{"currency": row["currency"].lower(), "amount": row["amount"]} for row in due],
        "failed_charges": sum(failed.values()),
        "past_due_memberships": [
            {
                "membership": m.pk,
                "customer": m.customer.external_id,
                "email": m.customer.email,
                "tier": m.tier.name,
                "since": m.past_due_since,
            }
            for m in past_due.select_related("customer", "tier").order_by("past_due_since", "pk")[:LIST_LIMIT]
        ],
        "open_invoices": [
            {
                "invoice": inv.pk,
                "number": inv.number,
                "customer": inv.customer.external_id,
                "currency": inv.currency.lower(),
                "amount_due": inv.total - inv.amount_paid - inv.amount_credited,
                "due_at": inv.due_at,
            }
            for inv in invoices.select_related("customer").order_by("due_at", "pk")[:LIST_LIMIT]
        ],
        "series": [{"date": d, "failed_charges": failed.get(d, 0)} for d in dates],
    }


def usage_sync_figures(*, period: DateRange) -> dict:
    """Usage reports still waiting for a provider (pending, now), those refused in `period`, the
    last meter sync run, and units reported and failures per day of `period` (by run start)."""
    pending, refused = Q(status=ReportStatus.PENDING), Q(status=ReportStatus.REFUSED)
    reports = MeterSyncReport.objects.filter(
        pending | (refused & Q(created_at__gte=period.since, created_at__lt=period.until))
    ).aggregate(
        pending_n=Count("pk", filter=pending),
        pending_units=Sum("quantity", filter=pending),
        refused_n=Count("pk", filter=refused),
        refused_units=Sum("quantity", filter=refused),
    )
    runs = (
        MeterSyncRun.objects.filter(started_at__gte=period.since, started_at__lt=period.until)
        .annotate(day=TruncDate("started_at", tzinfo=dt.UTC))
        .values("day")
        .annotate(units=Sum("units"), failures=Sum("failures"))
        .values_list("day", "units", "failures")
    )
    by_day = {day: (units or 0, failures or 0) for day, units, failures in runs}
    last = MeterSyncRun.objects.order_by("-started_at", "-pk").first()
    return {
        "pending_reports": reports["pending_n"],
        "pending_units": reports["pending_units"] or 0,
        "refused_reports": reports["refused_n"],
        "refused_units": reports["refused_units"] or 0,
        "last_run": None
        if last is None
        else {
            "started_at": last.started_at,
            "finished_at": last.finished_at,
            "status": last.status,
            "customers": last.customers,
            "failures": last.failures,
        },
        "series": [
            {"date": d, "units": by_day.get(d, (0, 0))[0], "failures": by_day.get(d, (0, 0))[1]}
            for d in period.dates()
        ],
    }


def webhook_figures(*, period: DateRange) -> dict:
    """Provider events that did not apply (dead, failing, unmatched: now, and per day received),
    our deliveries that fail (now, and per day created), and the endpoints that fail or were
    disabled."""
    inbox, inbox_daily = _problems(InboxEvent.objects.all(), "received_at", period, INBOX_PROBLEMS)
    deliveries, delivery_daily = _problems(Delivery.objects.all(), "created_at", period, DELIVERY_PROBLEMS)
    endpoints = WebhookEndpoint.objects.filter(Q(is_active=False) | Q(consecutive_failures__gt=0)).order_by(
        "-consecutive_failures", "pk"
    )
    return {
        "inbox_dead": inbox.get(InboxStatus.DEAD, 0),
        "inbox_failed": inbox.get(InboxStatus.FAILED, 0),
        "inbox_unmatched": inbox.get(InboxStatus.UNMATCHED, 0),
        "deliveries_dead": deliveries.get(DeliveryStatus.DEAD, 0),
        "deliveries_failed": deliveries.get(DeliveryStatus.FAILED, 0),
        "failing_endpoints": [
            {
                "id": e.pk,
                "url": e.url,
                "is_active": e.is_active,
                "consecutive_failures": e.consecutive_failures,
                "disabled_reason": e.disabled_reason,
            }
            for e in endpoints[:LIST_LIMIT]
        ],
        "series": [
            {"date": d, "inbox": inbox_daily.get(d, 0), "deliveries": delivery_daily.get(d, 0)}
            for d in period.dates()
        ],
    }
