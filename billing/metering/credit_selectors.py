"""Reads of credits: balances, grants, the ledger, AI costs (writes live in credits.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models
from django.db.models import Min, Q, Sum
from django.utils import timezone

from billing.memberships.models import Customer
from billing.metering.credit_models import (
    MICROS,
    CreditAccount,
    CreditGrant,
    CreditLedgerEntry,
    CreditRequirement,
    credits_text,
)
from billing.metering.credits import burn_order


def credits_available(*, customer_id: int, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Micro-credits usable now, and when that next changes by itself (a grant starts or expires)."""
    live = CreditGrant.objects.filter(customer_id=customer_id, remaining__gt=0)
    usable = Q(effective_at__lte=now) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    row = live.aggregate(
        available=Sum("remaining", filter=usable),
        next_expiry=Min("expires_at", filter=usable),
        next_start=Min("effective_at", filter=Q(effective_at__gt=now)),
    )
    changes = [when for when in (row["next_expiry"], row["next_start"]) if when is not None]
    return row["available"] or 0, min(changes) if changes else None


def credits_for_snapshot(
    *, customer: Customer, now: dt.datetime
) -> tuple[int, dict[str, int], dt.datetime | None]:
    """(usable micro-credits, {feature code: minimum}, when the balance next changes by itself)."""
    requirements = dict(CreditRequirement.objects.values_list("feature__code", "minimum"))
    available, change = credits_available(customer_id=customer.pk, now=now)
    return available, requirements, change


def credit_balance(*, customer: Customer) -> dict:
    account = CreditAccount.objects.filter(customer=customer).first()
    available, _ = credits_available(customer_id=customer.pk, now=timezone.now())
    balance = account.balance if account else 0
    overage = account.overage if account else 0
    return {
        "balance": credits_text(balance), "balance_micros": balance,
        "available": credits_text(available), "available_micros": available,
        "overage": credits_text(overage), "overage_micros": overage,
    }  # fmt: skip


def credit_grants_active(*, customer: Customer) -> list[CreditGrant]:
    now = timezone.now()
    grants = CreditGrant.objects.filter(customer=customer, remaining__gt=0).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    return sorted(grants, key=burn_order)


def credit_ledger_recent(*, customer: Customer, limit: int = 50) -> list[CreditLedgerEntry]:
    return list(CreditLedgerEntry.objects.filter(customer=customer).order_by("-id")[:limit])


def _hours(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    floor = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    ceil = end.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return floor, ceil if ceil == end else ceil + dt.timedelta(hours=1)


def ai_costs(
    *, customer: Customer | None, start: dt.datetime, end: dt.datetime, by_customer: bool = False
) -> list[dict]:
    """Per provider and model (and customer, with by_customer): events, tokens and credits of AI
    events in [start, end) rounded out to whole hours, for one customer or (None) the tenant,
    from the hourly AI usage rollup. Each event was priced at its own timestamp."""
    from billing.metering.credit_models import AiUsage

    rows = AiUsage.objects.filter(hour__gte=_hours(start, end)[0], hour__lt=_hours(start, end)[1])
    if customer is not None:
        rows = rows.filter(customer=customer.external_id)
    group = ["provider", "model", *(["customer"] if by_customer else [])]
    totals = (
        rows.values(*group)
        .annotate(
            n=models.Sum("events"), tin=models.Sum("input_tokens"), tout=models.Sum("output_tokens"),
            micros=models.Sum("credits"), unpriced=models.Sum("unpriced_events"),
        )
        .order_by(*(["-micros"] if by_customer else []), *group)
    )  # fmt: skip
    return [
        {**({"customer": t["customer"]} if by_customer else {}), "provider": t["provider"], "model": t["model"],
         "events": t["n"], "input_tokens": t["tin"], "output_tokens": t["tout"],
         "credits": str((Decimal(t["micros"]) / MICROS).quantize(Decimal("0.000001"))), "unpriced_events": t["unpriced"]}
        for t in totals
    ]  # fmt: skip


def ai_credits_by_day(
    *, start: dt.datetime, end: dt.datetime, top: int = 5
) -> tuple[list[dt.date], list[dict]]:
    """Credits burned per day by the `top` models (the rest summed as "Other") in [start, end), from
    the hourly AI rollup: (days, [{"label", "values"}]) aligned for a chart. One query."""
    from django.db.models.functions import TruncDate

    from billing.metering.credit_models import AiUsage

    low, high = _hours(start, end)
    rows = (
        AiUsage.objects.filter(hour__gte=low, hour__lt=high)
        .annotate(day=TruncDate("hour", tzinfo=dt.UTC))
        .values("day", "provider", "model")
        .annotate(micros=models.Sum("credits"))
    )
    days = [low.date() + dt.timedelta(days=i) for i in range((high - low).days + 1)]
    days = [d for d in days if dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC) < high]
    totals: dict[str, Decimal] = {}
    cells: dict[tuple[str, dt.date], Decimal] = {}
    for row in rows:
        name = f"{row['provider']}/{row['model']}" if row["provider"] else row["model"]
        credits = Decimal(row["micros"] or 0) / MICROS
        totals[name] = totals.get(name, Decimal(0)) + credits
        cells[(name, row["day"])] = cells.get((name, row["day"]), Decimal(0)) + credits
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    shown, rest = ranked[:top], ranked[top:]
    series = [{"label": name, "values": [cells.get((name, d), Decimal(0)) for d in days]} for name in shown]
    if rest:
        series.append(
            {
                "label": "Other",
                "values": [sum((cells.get((n, d), Decimal(0)) for n in rest), Decimal(0)) for d in days],
            }
        )
    return days, series
