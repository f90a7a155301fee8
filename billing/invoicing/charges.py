"""What a period costs: the fee of the next period (billed in advance) and the usage of the period
(billed in arrears, rated from the meters' rollups), as invoice lines. The upcoming invoice and the
period close build their lines here, so a preview and the invoice it becomes agree to the cent."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from billing.invoicing.adjustments import Adjusted
from billing.invoicing.models import LineKind
from billing.invoicing.rating import breakdown_rows, rate
from billing.invoicing.selectors import price_terms
from billing.invoicing.services import LineDraft
from billing.metering.models import Meter
from billing.metering.selectors import period_usage_many
from billing.tiers.models import Price, Tier
from kernel.decimals import grouped
from kernel.words import plural

INTERVALS = {"month": relativedelta(months=1), "year": relativedelta(years=1)}
INTERVAL_WORDS = {"month": "monthly", "year": "yearly"}


@dataclass(frozen=True)
class PeriodCharges:
    currency: str
    period_start: dt.datetime
    period_end: dt.datetime
    lines: list[LineDraft]
    # the customer's discount and taxes on these lines (billing.invoicing.totals); None: not computed
    adjusted: Adjusted | None = None

    @property
    def subtotal(self) -> int:
        return max(sum(line.amount for line in self.lines), 0)

    @property
    def discount(self) -> int:
        return self.adjusted.discount if self.adjusted else 0

    @property
    def tax(self) -> int:
        return self.adjusted.tax if self.adjusted else 0

    @property
    def total(self) -> int:
        return self.adjusted.total if self.adjusted else self.subtotal


def _floor_hour(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def usage_window(
    start: dt.datetime, end: dt.datetime, *, usage_until: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """The whole hours of rollups a period bills: both boundaries floored to the hour, so the hour
    a period turns over in is billed once, by the period it ends in (usage is rolled up by the
    hour). A preview (`usage_until`) counts everything so far, its current hour included."""
    window_end = _floor_hour(end)
    if usage_until is not None:
        until = _floor_hour(usage_until)
        until += dt.timedelta(hours=1) if until != usage_until else dt.timedelta(0)
        window_end = min(until, window_end)
    return _floor_hour(start), window_end


def usage_prices(*, tier: Tier, currency: str) -> list[Price]:
    """The tier's active usage prices (those naming a meter) in `currency`."""
    return list(
        Price.objects.filter(tier=tier, active=True, currency=currency).exclude(meter="").order_by("id")
    )


def fee_line(*, price: Price, quantity: int, start: dt.datetime, end: dt.datetime) -> LineDraft:
    terms = price_terms(price)
    rated = rate(terms, quantity)
    seats = f" × {quantity} seats" if price.model == "per_seat" and quantity != 1 else ""
    word = INTERVAL_WORDS.get(price.interval, price.interval)
    return LineDraft(
        kind=LineKind.FEE,
        description=f"{price.tier.name} ({word}){seats}",
        amount=rated.amount,
        quantity=Decimal(quantity),
        unit_amount=terms.unit_amount,
        price_id=price.pk,
        period_start=start,
        period_end=end,
        breakdown=breakdown_rows(rated),
    )


def usage_line(
    *, price: Price, meter: Meter | None, quantity: Decimal, start: dt.datetime, end: dt.datetime
) -> LineDraft:
    terms = price_terms(price)
    rated = rate(terms, quantity)
    unit = plural(meter.unit, quantity) if meter is not None and meter.unit else ""  # "12,501 tokens"
    name = meter.name if meter is not None else price.meter
    return LineDraft(
        kind=LineKind.USAGE,
        description=f"{name}: {grouped(quantity)}" + (f" {unit}" if unit else ""),
        amount=rated.amount,
        quantity=quantity,
        unit_amount=terms.unit_amount,
        price_id=price.pk,
        meter=price.meter,
        period_start=start,
        period_end=end,
        breakdown=breakdown_rows(rated),
    )


def period_charges(
    *,
    customer: str,
    tier: Tier,
    currency: str,
    fee_price: Price | None,
    quantity: int,
    period_start: dt.datetime,
    period_end: dt.datetime,
    usage_until: dt.datetime | None = None,
) -> PeriodCharges:
    """The lines of the invoice that closes [period_start, period_end): the usage prices of `tier`
    on the meters' usage over the period (up to `usage_until`, for a preview), then the fee of the
    next period when there is one (`fee_price`: a recurring price the membership renews on)."""
    prices = usage_prices(tier=tier, currency=currency)
    meters = {m.code: m for m in Meter.objects.filter(code__in={p.meter for p in prices})}
    start, end = usage_window(period_start, period_end, usage_until=usage_until)
    usage = (
        period_usage_many(
            customers=[customer], meters=list(meters.values()), start=start, end=end, exact=True
        )
        if meters and start < end
        else {}
    )
    lines = []
    for price in prices:
        meter = meters.get(price.meter)
        used = usage.get((customer, meter.pk)) if meter else None
        # a meter that may go negative (allow_negative) bills nothing below zero
        used = max(Decimal(used or 0), Decimal(0))
        lines.append(usage_line(price=price, meter=meter, quantity=used, start=period_start, end=period_end))
    if fee_price is not None and fee_price.interval in INTERVALS:
        next_end = period_end + INTERVALS[fee_price.interval]
        lines.append(fee_line(price=fee_price, quantity=quantity, start=period_end, end=next_end))
    return PeriodCharges(currency=currency, period_start=period_start, period_end=period_end, lines=lines)
