"""Reads behind one customer's page: its header figures (the list's own columns, so the two agree),
membership and history, usage per meter this period with a daily series, credits and their ledger,
invoices, payments and credit notes, its discount, end-user API keys, the entitlement snapshot with overrides,
and a timeline of the outbound events about it and the provider webhooks that changed it. About
twenty queries whatever the customer's history (every list is bounded; nothing per row)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Q

from billing.entitlements.models import CustomerApiKey, EntitlementOverride
from billing.entitlements.selectors import snapshot_build
from billing.events.models import OutboundEvent
from billing.inbox.models import InboxEvent
from billing.invoicing.credit_notes import CREDITABLE
from billing.invoicing.models import CreditNote, Invoice
from billing.memberships.models import (
    LIVE_STATUSES,
    CouponRedemption,
    Customer,
    Membership,
    MembershipHistory,
    Payment,
)
from billing.memberships.selectors import customer_discount, entitled_membership
from billing.metering.credit_models import MICROS
from billing.metering.credit_selectors import credit_balance, credit_ledger_recent
from billing.metering.models import Aggregation, Meter
from billing.metering.rollups import customer_rollup_sql
from billing.metering.selectors import current_period, period_usage
from billing.tiers.models import Feature
from console.customers.selectors import customer_rows, default_tier, list_features, list_tiers

RECENT = 20  # rows of each history list on the page
TIMELINE = 40


@dataclass
class CustomerPage:
    customer: Customer  # with the list's columns (tier_name, membership_status, mrr, …)
    membership: Membership | None
    history: list[MembershipHistory]
    tiers: list
    period: tuple[dt.datetime, dt.datetime]
    usage: list[dict]
    credits: dict
    credit_ledger: list
    invoices: list[Invoice]
    creditable_invoices: list[Invoice]
    payments: list[Payment]
    credit_notes: list[CreditNote]
    api_keys: list[CustomerApiKey]
    entitlements: list[dict]
    features: list[Feature]
    timeline: list[dict] = field(default_factory=list)
    discount: CouponRedemption | None = None


def customer_row(*, external_id: str, tiers: list | None = None) -> Customer | None:
    """One customer with the list's columns, or None (unknown here: other tenants' customers live
    in other schemas, so they are unknown too)."""
    tiers = list_tiers() if tiers is None else tiers
    return customer_rows(default_tier=default_tier(tiers)).filter(external_id=external_id).first()


def _daily_usage(*, customer: str, meters: list[Meter], start: dt.datetime, end: dt.datetime) -> dict:
    """{meter id: {day: value}} from the hourly rollups (pending deltas included), two queries."""
    day = "date_trunc('day', hour AT TIME ZONE 'UTC')::date"
    found: dict[int, dict] = {m.pk: {} for m in meters}
    column = {
        Aggregation.COUNT: 0,
        Aggregation.SUM: 1,
        Aggregation.MAX: 2,
        Aggregation.MIN: 3,
        Aggregation.LATEST: 4,
    }
    plain = [m for m in meters if m.aggregation != Aggregation.UNIQUE_COUNT]
    unique = [m for m in meters if m.aggregation == Aggregation.UNIQUE_COUNT]
    aggregation = {m.pk: m.aggregation for m in meters}
    with connection.cursor() as cursor:
        if plain:
            source, params = customer_rollup_sql([customer])
            cursor.execute(
                f"SELECT meter_id, {day}, sum(count), sum(sum), max(max), min(min), "
                f"(array_agg(latest ORDER BY latest_ts DESC))[1] FROM {source} AS r "
                f"WHERE meter_id = ANY(%s) AND hour >= %s AND hour < %s GROUP BY 1, 2",
                [*params, [m.pk for m in plain], start, end],
            )
            for meter_id, when, *values in cursor.fetchall():
                found[meter_id][when] = values[column[aggregation[meter_id]]]
        if unique:
            cursor.execute(
                f"SELECT meter_id, {day}, count(DISTINCT value) FROM metering_rollup_value "
                "WHERE meter_id = ANY(%s) AND customer = %s AND hour >= %s AND hour < %s GROUP BY 1, 2",
                [[m.pk for m in unique], customer, start, end],
            )
            for meter_id, when, value in cursor.fetchall():
                found[meter_id][when] = value
    return found


def _usage(customer: Customer, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> list[dict]:
    meters = list(Meter.objects.filter(active=True).select_related("feature").order_by("code"))
    if not meters:
        return []
    totals = period_usage(customer=customer.external_id, meters=meters, start=start, end=end)
    last = min(end, now)
    daily = _daily_usage(customer=customer.external_id, meters=meters, start=start, end=last)
    days, current = [], start.date()
    while current <= last.date() and len(days) < 400:
        days.append(current)
        current += dt.timedelta(days=1)
    rows = []
    for meter in meters:
        values = daily[meter.pk]
        series = [
            {"date": d.isoformat(), "value": float(values[d]) if values.get(d) is not None else 0}
            for d in days
        ]
        rows.append(
            {"meter": meter, "total": totals.get(meter.pk), "series": series, "has_usage": bool(values)}
        )
    return rows


def _credits_of(micros: int) -> Decimal:
    return Decimal(micros) / MICROS


def _credits(customer: Customer) -> dict:
    """The balance, what is usable now and unpaid usage, in credits (Decimals, for the quantity filter)."""
    balance = credit_balance(customer=customer)
    return {key: _credits_of(balance[f"{key}_micros"]) for key in ("balance", "available", "overage")}


def _entitlements(customer: Customer, features: list[Feature], entitled: Membership | None) -> list[dict]:
    snapshot = snapshot_build(customer=customer, membership=entitled)
    overrides = {
        o.feature_id: o
        for o in EntitlementOverride.objects.filter(customer=customer).select_related("feature")
    }
    rows = []
    for feature in features:
        entry = snapshot["features"].get(feature.code)
        if entry is None:
            continue
        rows.append({"feature": feature, **entry, "override_row": overrides.get(feature.pk)})
    return rows


def _timeline(customer: Customer, history: list[MembershipHistory], payments: list[Payment]) -> list[dict]:
    """The newest outbound events about the customer and the provider webhooks its membership
    history and payments name, merged newest first."""
    items = [
        {"at": event.created_at, "kind": "event", "title": event.type, "id": event.id, "status": "sent"}
        for event in OutboundEvent.objects.filter(customer=customer.external_id).order_by("-created_at")[
            :TIMELINE
        ]
    ]
    event_ids = {row.event_id for row in history if row.event_id} | {
        p.event_id for p in payments if p.event_id
    }
    if event_ids:
        for event in InboxEvent.objects.filter(event_id__in=event_ids).order_by("-id")[:TIMELINE]:
            items.append(
                {
                    "at": event.received_at,
                    "kind": "webhook",
                    "title": f"{event.provider}: {event.event_type or 'event'}",
                    "id": event.event_id,
                    "status": event.status,
                }
            )
    return sorted(items, key=lambda item: item["at"], reverse=True)[:TIMELINE]


def customer_page(*, customer: Customer, tiers: list, now: dt.datetime) -> CustomerPage:
    """Everything the customer page shows (see the module docstring). `customer` comes from
    customer_row; `tiers` is the catalog it was read with."""
    # a customer has a handful of memberships: read them all (by the customer index), pick here
    memberships = sorted(
        Membership.objects.filter(customer_id=customer.pk).select_related("tier", "price").order_by(),
        key=lambda m: (m.status in LIVE_STATUSES, m.pk),
        reverse=True,
    )
    # the plan is the platform's membership; creators' channel memberships show in the history
    membership = next((m for m in memberships if m.creator_id is None), None)
    history = (
        list(
            MembershipHistory.objects.filter(membership_id__in=[m.pk for m in memberships])
            .select_related("tier")
            .order_by("-at", "-id")[:RECENT]
        )
        if memberships
        else []
    )
    entitled = entitled_membership(customer=customer)  # read once: the period's and the snapshot's
    start, end = current_period(customer=customer, membership=entitled)
    invoices = list(Invoice.objects.filter(customer=customer).order_by("-id")[:RECENT])
    payments = list(Payment.objects.filter(customer=customer).order_by("-occurred_at", "-id")[:RECENT])
    features = list_features()
    return CustomerPage(
        customer=customer,
        membership=membership,
        history=history,
        tiers=tiers,
        period=(start, end),
        usage=_usage(customer, start, end, now),
        credits=_credits(customer),
        credit_ledger=[
            {
                "at": entry.created_at,
                "kind": entry.get_kind_display(),
                "amount": _credits_of(entry.amount),
                "balance": _credits_of(entry.balance_after),
                "reason": (entry.details or {}).get("reason") or entry.reference,
            }
            for entry in credit_ledger_recent(customer=customer, limit=RECENT)
        ],
        invoices=invoices,
        creditable_invoices=creditable_invoices(customer=customer),
        payments=payments,
        credit_notes=list(
            CreditNote.objects.filter(invoice__customer=customer)
            .select_related("invoice")
            .order_by("-id")[:RECENT]
        ),
        api_keys=list(
            CustomerApiKey.objects.filter(customer=customer).order_by("-created_at", "-id")[:RECENT]
        ),
        entitlements=_entitlements(customer, features, entitled),
        features=features,
        timeline=_timeline(customer, history, payments),
        discount=customer_discount(customer=customer),
    )


def creditable_invoices(*, customer: Customer) -> list[Invoice]:
    """The customer's invoices a credit note (and a refund) may be issued on, newest first."""
    return list(
        Invoice.objects.filter(customer=customer, status__in=CREDITABLE)
        .filter(~Q(number=""))
        .order_by("-id")[:50]
    )
