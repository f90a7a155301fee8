"""Period close: the invoice a subscription's period produces when it ends, made exactly once.

Our subscription engines (the sandbox and TossPayments: providers that only charge a saved
payment method) close a period when it ends: one invoice with the ended period's usage charges
(in arrears, rated from the meters' rollups; none for a trial) and the next period's fee (in
advance; none when the subscription ends), finalized at once; the engine then collects its
`amount_due`. A subscription's first invoice is its first period's fee; a plan change that takes
effect now is invoiced as a proration.

Each invoice has a key (`<provider>:<subscription>:<what>:<when>`) that is unique in the database,
so closing the same period twice -- a retried beat, two workers, a crash after the invoice was
written and before it was charged -- finds the first invoice instead of making another; a crash
between the draft and its finalization is resumed by finalizing the draft that is there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from billing.invoicing.charges import INTERVAL_WORDS, INTERVALS, fee_line, usage_line, usage_window
from billing.invoicing.models import BillingReason, Invoice, InvoiceStatus, LineKind
from billing.invoicing.services import (
    InvoiceSpec,
    LineDraft,
    invoice_draft_create,
    invoice_finalize,
    invoices_issue_many,
)
from billing.memberships.models import Customer, Membership
from billing.memberships.services import checkout_coupon_redeem, customer_upsert
from billing.metering.models import Meter
from billing.metering.selectors import period_usage_many
from billing.tiers.models import Price


@dataclass(frozen=True)
class BilledSubscription:
    """What an engine knows of one of its subscriptions (no model of ours: the engines keep their
    own rows)."""

    provider: str
    subscription_id: str
    customer: str  # our Customer.external_id
    price_code: str
    quantity: int


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S")


def _key(sub: BilledSubscription, what: str, when: dt.datetime) -> str:
    return f"{sub.provider}:{sub.subscription_id}:{what}:{_stamp(when)}"


def _context(sub: BilledSubscription) -> tuple[Customer, Membership | None, Price]:
    customer = Customer.objects.filter(external_id=sub.customer).first()
    if customer is None:
        customer, _ = customer_upsert(external_id=sub.customer)
    membership = Membership.objects.filter(
        provider=sub.provider, provider_subscription_id=sub.subscription_id
    ).first()
    price = Price.objects.select_related("tier").get(code=sub.price_code)
    return customer, membership, price


def _issue(invoice: Invoice) -> Invoice:
    """Finalize a draft (also one a crash left behind); a finalized invoice is returned as is."""
    if invoice.status == InvoiceStatus.DRAFT:
        return invoice_finalize(invoice_id=invoice.pk)
    return invoice


def first_invoice(
    *,
    sub: BilledSubscription,
    period_start: dt.datetime,
    period_end: dt.datetime,
    attempt: int = 1,
    checkout_id: str = "",
) -> Invoice:
    """The first period's fee, billed when the subscription starts (after a trial: at the trial's
    end, by `period_close`). An engine whose first charge was refused voids that invoice; the
    customer's next card is a new `attempt` with an invoice of its own. The coupon of the checkout
    (`checkout_id`) is redeemed first, so this invoice carries its discount."""
    if checkout_id:
        checkout_coupon_redeem(checkout_id=checkout_id)
    customer, membership, price = _context(sub)
    invoice, _ = invoice_draft_create(
        customer=customer,
        membership=membership,
        currency=price.currency,
        lines=[fee_line(price=price, quantity=sub.quantity, start=period_start, end=period_end)],
        billing_reason=BillingReason.SUBSCRIPTION_CREATE,
        period_start=period_start,
        period_end=period_end,
        period_key=_key(sub, "start" if attempt == 1 else f"start-{attempt}", period_start),
    )
    return _issue(invoice)


@dataclass(frozen=True)
class PeriodToClose:
    """One ended period: [period_start, period_end) of `sub`; `renews`: the next period's fee is
    billed in advance; `bill_usage`: False for a trial; `ended_price_code`: the price the period
    was spent on, when a change takes over at this renewal (its tier's usage prices rate it)."""

    sub: BilledSubscription
    period_start: dt.datetime
    period_end: dt.datetime
    renews: bool
    bill_usage: bool = True
    ended_price_code: str = ""

    @property
    def key(self) -> str:
        return _key(self.sub, "close", self.period_end)


def period_close(
    *,
    sub: BilledSubscription,
    period_start: dt.datetime,
    period_end: dt.datetime,
    renews: bool,
    bill_usage: bool = True,
    ended_price_code: str = "",
) -> Invoice:
    """The invoice that closes one period (see PeriodToClose); closing it again returns the first."""
    item = PeriodToClose(sub, period_start, period_end, renews, bill_usage, ended_price_code)
    return period_close_many([item])[0]


def period_close_many(items: list[PeriodToClose]) -> list[Invoice]:
    """Close many periods at once (a billing run): customers, memberships, prices, meters and the
    usage of every customer of a window are read in one query each, and the invoices are issued
    together (invoices_issue_many). Returns one invoice per item, in order; a period closed before
    returns its first invoice."""
    if not items:
        return []
    customers = {
        c.external_id: c for c in Customer.objects.filter(external_id__in={i.sub.customer for i in items})
    }
    for item in items:
        if item.sub.customer not in customers:
            customers[item.sub.customer], _ = customer_upsert(external_id=item.sub.customer)
    memberships = {
        (m.provider, m.provider_subscription_id): m
        for m in Membership.objects.filter(
            provider__in={i.sub.provider for i in items},
            provider_subscription_id__in={i.sub.subscription_id for i in items},
        )
    }
    codes = {i.sub.price_code for i in items} | {i.ended_price_code for i in items if i.ended_price_code}
    prices = {p.code: p for p in Price.objects.select_related("tier").filter(code__in=codes)}
    usage_of: dict[tuple[int, str], list[Price]] = {}
    for price in (
        Price.objects.filter(tier__in={p.tier_id for p in prices.values()}, active=True)
        .exclude(meter="")
        .select_related("tier")
        .order_by("id")
    ):
        usage_of.setdefault((price.tier_id, price.currency), []).append(price)
    meters = {
        m.code: m for m in Meter.objects.filter(code__in={p.meter for ps in usage_of.values() for p in ps})
    }
    windows: dict[tuple[dt.datetime, dt.datetime], set[str]] = {}
    for item in items:
        if item.bill_usage:
            windows.setdefault(usage_window(item.period_start, item.period_end), set()).add(item.sub.customer)
    usage: dict[tuple[dt.datetime, dt.datetime], dict] = {
        (start, end): period_usage_many(
            customers=sorted(who), meters=list(meters.values()), start=start, end=end, exact=True
        )
        if meters and start < end
        else {}
        for (start, end), who in windows.items()
    }
    specs = []
    for item in items:
        price = prices[item.sub.price_code]
        ended = prices.get(item.ended_price_code or item.sub.price_code, price)
        lines = []
        if item.bill_usage:
            window = usage_window(item.period_start, item.period_end)
            for usage_price in usage_of.get((ended.tier_id, ended.currency), []):
                meter = meters.get(usage_price.meter)
                used = usage[window].get((item.sub.customer, meter.pk)) if meter else None
                lines.append(
                    usage_line(
                        price=usage_price, meter=meter, quantity=max(Decimal(used or 0), Decimal(0)),
                        start=item.period_start, end=item.period_end,
                    )
                )  # fmt: skip
        if item.renews and price.interval in INTERVALS:
            next_end = item.period_end + INTERVALS[price.interval]
            lines.append(
                fee_line(price=price, quantity=item.sub.quantity, start=item.period_end, end=next_end)
            )
        specs.append(
            InvoiceSpec(
                customer=customers[item.sub.customer],
                membership=memberships.get((item.sub.provider, item.sub.subscription_id)),
                currency=price.currency,
                lines=lines,
                period_key=item.key,
                billing_reason=BillingReason.SUBSCRIPTION_CYCLE,
                period_start=item.period_start,
                period_end=item.period_end,
            )
        )
    return invoices_issue_many(specs)


def proration_invoice(
    *,
    sub: BilledSubscription,
    old_price_code: str,
    old_quantity: int,
    amount: int,
    at: dt.datetime,
    period_end: dt.datetime,
) -> Invoice:
    """A plan change that takes effect now, charged at once (Stripe's `always_invoice`): the
    difference for the rest of the period, already computed by the engine (rounded in the
    customer's favour)."""
    customer, membership, price = _context(sub)
    old = Price.objects.select_related("tier").filter(code=old_price_code).first()
    word = INTERVAL_WORDS.get(price.interval, price.interval)
    was = f"{old.tier.name} × {old_quantity}" if old is not None else old_price_code
    line = LineDraft(
        kind=LineKind.PRORATION,
        description=f"Change from {was} to {price.tier.name} ({word}) × {sub.quantity}, rest of the period",
        amount=amount,
        quantity=Decimal(1),
        unit_amount=Decimal(amount),
        price_id=price.pk,
        period_start=at,
        period_end=period_end,
        proration=True,
    )
    invoice, _ = invoice_draft_create(
        customer=customer,
        membership=membership,
        currency=price.currency,
        lines=[line],
        billing_reason=BillingReason.SUBSCRIPTION_UPDATE,
        period_start=at,
        period_end=period_end,
        period_key=_key(sub, "change", at),
    )
    return _issue(invoice)
