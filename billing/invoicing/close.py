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

from billing.invoicing.charges import INTERVAL_WORDS, fee_line, period_charges
from billing.invoicing.models import BillingReason, Invoice, InvoiceStatus, LineKind
from billing.invoicing.services import LineDraft, invoice_draft_create, invoice_finalize
from billing.memberships.models import Customer, Membership
from billing.memberships.services import customer_upsert
from billing.tiers.models import Price


@dataclass(frozen=True)
class EngineSubscription:
    """What an engine knows of one of its subscriptions (no model of ours: the engines keep their
    own rows)."""

    provider: str
    subscription_id: str
    customer: str  # our Customer.external_id
    price_code: str
    quantity: int


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S")


def _key(sub: EngineSubscription, what: str, when: dt.datetime) -> str:
    return f"{sub.provider}:{sub.subscription_id}:{what}:{_stamp(when)}"


def _context(sub: EngineSubscription) -> tuple[Customer, Membership | None, Price]:
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
    *, sub: EngineSubscription, period_start: dt.datetime, period_end: dt.datetime, attempt: int = 1
) -> Invoice:
    """The first period's fee, billed when the subscription starts (after a trial: at the trial's
    end, by `period_close`). An engine whose first charge was refused voids that invoice; the
    customer's next card is a new `attempt` with an invoice of its own."""
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


def period_close(
    *,
    sub: EngineSubscription,
    period_start: dt.datetime,
    period_end: dt.datetime,
    renews: bool,
    bill_usage: bool = True,
    ended_price_code: str = "",
) -> Invoice:
    """The invoice that closes [period_start, period_end): the period's usage on the usage prices
    of the tier it was spent on (`ended_price_code`'s, when a change takes over at this renewal;
    none for a trial: `bill_usage=False`) and, when the subscription `renews`, the next period's
    fee at its price. Closing the same period again returns the first invoice."""
    customer, membership, price = _context(sub)
    ended = price
    if ended_price_code and ended_price_code != price.code:
        ended = Price.objects.select_related("tier").filter(code=ended_price_code).first() or price
    charges = period_charges(
        customer=sub.customer,
        tier=ended.tier,
        currency=price.currency,
        fee_price=price if renews else None,
        quantity=sub.quantity,
        period_start=period_start,
        period_end=period_end,
    )
    lines = [line for line in charges.lines if bill_usage or line.kind != LineKind.USAGE]
    invoice, _ = invoice_draft_create(
        customer=customer,
        membership=membership,
        currency=price.currency,
        lines=lines,
        billing_reason=BillingReason.SUBSCRIPTION_CYCLE,
        period_start=period_start,
        period_end=period_end,
        period_key=_key(sub, "close", period_end),
    )
    return _issue(invoice)


def proration_invoice(
    *,
    sub: EngineSubscription,
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
