"""Meter sync, reads: usage not (yet) accepted by a provider."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from billing.metering.models import Meter
from billing.metering.sync.plan import (
    CHUNK,
    _Customer,
    _deltas_many,
    _load,
)

# --- reads ---------------------------------------------------------------------------------------


def usage_unsynced(*, customer=None, now: dt.datetime | None = None) -> list[dict]:
    """Usage not (yet) accepted by a provider: pending reports, and what the next run would report
    (closed periods of any age included). `customer`: one Customer, or None for the tenant."""
    from billing.memberships.models import Customer

    now = now or timezone.now()
    meters = list(Meter.objects.filter(active=True).order_by("pk"))
    ids = (
        [customer.pk]
        if customer is not None
        else list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    )
    rows = []
    for offset in range(0, len(ids), CHUNK):
        items = _load(customer_ids=ids[offset : offset + CHUNK], now=now, late_since=None)
        for item in items:
            rows.extend(_row(item.customer, r.meter, r.state, r.quantity, "pending") for r in item.pending)

        def unblocked(item: _Customer) -> list[Meter]:
            blocked = {r.meter_id for r in item.pending}
            return [m for m in meters if m.pk not in blocked]

        deltas = _deltas_many(items=items, meters_of=unblocked, now=now, late_since=None)
        for item in items:
            rows.extend(
                _row(item.customer, d.meter, d.state, d.delta, d.role)
                for d in deltas[item.customer.pk]
                if d.delta
            )
    return rows


def _row(customer, meter, state, quantity: int, kind: str) -> dict:
    return {
        "customer": customer.external_id,
        "meter": meter.code,
        "period_start": state.period_start,
        "period_end": state.period_end,
        "quantity": quantity,
        "kind": kind,
    }
