"""The discount and tax of an invoice, or of the upcoming invoice: the customer's live coupon and its
tax rates fed to the pure rules of billing.invoicing.adjustments. A draft keeps the result (its
lines' shares, one record per coupon and per tax rate); finalizing recomputes it under the
redemptions' locks and counts one period of each redemption that discounted the invoice, so a
`once` coupon discounts one finalized invoice even when two drafts were made while it was live.
The upcoming invoice runs the same code on the same lines, so preview and invoice agree to the cent.

Credits pay for usage where the tenant gave a credit a value in the invoice's currency
(`CreditValue`): a draft and the upcoming invoice show what the usable balance would pay now;
finalizing locks the balance (after the redemptions, before the numbering row) and spends exactly
what the invoice applied (billing.metering.credit_spend), once per invoice.

Invoices collected by a provider (mirrored from Stripe, Polar, Lemon Squeezy) are never adjusted
here: the provider computed their discount and tax (merchant-of-record providers their own tax).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.utils import timezone

from billing.invoicing.adjustments import Adjusted, Credits, Discount, Line, Rate, adjust
from billing.invoicing.models import (
    CreditValue,
    Invoice,
    InvoiceDiscount,
    InvoiceLine,
    InvoiceTax,
    LineKind,
    TaxRate,
)
from billing.invoicing.taxes import tax_rates_for
from billing.memberships.models import CouponRedemption, Customer
from billing.metering.credit_spend import InvoiceSpend, credits_spend_on_invoices, credits_usable
from billing.tiers.models import Price


def credit_values() -> dict[str, Decimal]:
    """What one credit pays per currency (minor units), where credits pay for usage."""
    return dict(CreditValue.objects.values_list("currency", "unit_amount_decimal"))


def _line(line, tier_of: dict) -> Line:
    return Line(amount=line.amount, tier_id=tier_of.get(line.price_id), usage=line.kind == LineKind.USAGE)


def _spend(invoice: Invoice, micros: int) -> InvoiceSpend:
    customer = invoice.customer
    return InvoiceSpend(
        customer_id=customer.pk, external_id=customer.external_id, invoice_id=invoice.pk, micros=micros
    )


def _credits(*, customer: Customer, currency: str, lines: Sequence, lock: bool = False) -> Credits | None:
    """The customer's credits as they may pay these lines (None: they pay nothing here)."""
    if not any(line.kind == LineKind.USAGE and line.amount > 0 for line in lines):
        return None
    value = credit_values().get(currency.lower())
    if value is None:
        return None
    balance = credits_usable(customer_ids=[customer.pk], lock=lock)[customer.pk]
    return Credits(balance=balance, unit_amount=value)


def live_redemptions(*, customer: Customer, lock: bool = False) -> list[CouponRedemption]:
    """The customer's discounts that may still discount an invoice (with `lock`: locked, pk order)."""
    rows = (
        CouponRedemption.objects.filter(customer=customer, ended_at__isnull=True)
        .select_related("coupon")
        .prefetch_related("coupon__tiers")
        .order_by("id")
    )
    if lock:
        rows = rows.select_for_update(of=("self",))
    return [r for r in rows if r.periods_remaining is None or r.periods_remaining > 0]


def _discount(redemption: CouponRedemption) -> Discount:
    coupon = redemption.coupon
    tier_ids = frozenset(t.pk for t in coupon.tiers.all())
    return Discount(
        key=redemption.pk,
        code=coupon.code,
        name=coupon.name,
        percent_off=coupon.percent_off,
        amount_off=coupon.amount_off,
        currency=coupon.currency,
        tier_ids=tier_ids or None,
    )


def adjustments_for(
    *,
    customer: Customer,
    currency: str,
    lines: Sequence,
    redemptions: list[CouponRedemption] | None = None,
    lock_credits: bool = False,
) -> Adjusted:
    """The adjustments of `lines` (invoice lines or line drafts: `kind`, `amount`, `price_id`) for
    `customer`; `lock_credits`: lock its credits (a spend follows)."""
    if redemptions is None:
        redemptions = live_redemptions(customer=customer)
    discounts = [_discount(r) for r in redemptions]
    price_ids = {line.price_id for line in lines if line.price_id}
    tier_of = (  # only a coupon restricted to tiers needs to know each line's tier
        dict(Price.objects.filter(pk__in=price_ids).values_list("pk", "tier_id"))
        if price_ids and any(d.tier_ids for d in discounts)
        else {}
    )
    return adjust(
        currency=currency,
        lines=[_line(line, tier_of) for line in lines],
        discounts=discounts,
        rates=[
            Rate(key=r.pk, name=r.name, percent=r.percent, inclusive=r.inclusive, country=r.country)
            for r in tax_rates_for(customer=customer)
        ],
        credits=_credits(customer=customer, currency=currency, lines=lines, lock=lock_credits),
    )


def invoice_adjust(*, invoice: Invoice, consume: bool = False) -> Adjusted:
    """Set a draft's subtotal, discount, tax and total and rewrite its records (the caller saves the
    invoice). `consume` (finalization, the invoice locked by the caller): lock the redemptions
    first, and count one period of each that discounted this invoice, ending it when none is left."""
    redemptions = live_redemptions(customer=invoice.customer, lock=consume)
    lines = list(invoice.lines.order_by("id"))
    adjusted = adjustments_for(
        customer=invoice.customer, currency=invoice.currency, lines=lines, redemptions=redemptions,
        lock_credits=consume,
    )  # fmt: skip
    invoice.subtotal, invoice.discount = adjusted.subtotal, adjusted.discount
    invoice.tax, invoice.total = adjusted.tax, adjusted.total
    invoice.credits_applied, invoice.credits_used = adjusted.credits_applied, adjusted.credits_used
    for line, share in zip(lines, adjusted.lines, strict=True):
        line.discount_amount, line.tax_amount = share.discount, share.tax
    InvoiceLine.objects.bulk_update(lines, ["discount_amount", "tax_amount"])
    InvoiceDiscount.objects.filter(invoice=invoice).delete()
    InvoiceTax.objects.filter(invoice=invoice).delete()
    by_pk = {r.pk: r for r in redemptions}
    InvoiceDiscount.objects.bulk_create(
        [
            InvoiceDiscount(
                invoice=invoice,
                redemption=by_pk[applied.discount.key],
                coupon_code=applied.discount.code,
                coupon_name=applied.discount.name,
                amount=applied.amount,
            )
            for applied in adjusted.discounts
            if applied.amount > 0
        ]
    )
    InvoiceTax.objects.bulk_create(
        [
            InvoiceTax(
                invoice=invoice,
                tax_rate_id=applied.rate.key,
                name=applied.rate.name,
                percent=applied.rate.percent,
                inclusive=applied.rate.inclusive,
                country=applied.rate.country,
                taxable_amount=applied.taxable,
                amount=applied.amount,
            )
            for applied in adjusted.taxes
        ]
    )
    if consume:
        credits_spend_on_invoices(
            spends=[_spend(invoice, adjusted.credits_used)] if adjusted.credits_used else []
        )
        now = timezone.now()
        for applied in adjusted.discounts:
            if applied.amount <= 0:
                continue
            redemption = by_pk[applied.discount.key]
            redemption.periods_applied += 1
            if redemption.periods_remaining == 0:
                redemption.ended_at = now
            redemption.save(update_fields=["periods_applied", "ended_at"])
    return adjusted


class BatchAdjuster:
    """The adjustments of invoices issued at once (a billing run), in a few queries: the customers'
    live redemptions (locked, pk order: before the numbering row, as a single finalization locks
    them), the tax rates and the prices' tiers read once. Each invoice adjusted uses its
    redemptions' periods in order, so two invoices of one customer in a batch share a `once`
    coupon as two finalizations would; `save` writes the records and the periods used."""

    def __init__(self, *, customers: Sequence[Customer], lines: Sequence) -> None:
        self._redemptions: dict[int, list[CouponRedemption]] = {}
        for redemption in (
            CouponRedemption.objects.filter(customer__in={c.pk for c in customers}, ended_at__isnull=True)
            .select_related("coupon")
            .prefetch_related("coupon__tiers")
            .select_for_update(of=("self",))
            .order_by("id")
        ):
            self._redemptions.setdefault(redemption.customer_id, []).append(redemption)
        self._rates = list(TaxRate.objects.filter(active=True).order_by("id"))
        self._values = credit_values()
        # credits lock after the redemptions and before the numbering row, as a finalization does
        self._credits = (
            credits_usable(customer_ids=[c.pk for c in customers], lock=True)
            if self._values and any(line.kind == LineKind.USAGE and line.amount > 0 for line in lines)
            else {}
        )
        price_ids = {line.price_id for line in lines if line.price_id}
        self._tier_of = (
            dict(Price.objects.filter(pk__in=price_ids).values_list("pk", "tier_id")) if price_ids else {}
        )
        self._used: set[int] = set()

    def adjust(self, *, customer: Customer, currency: str, lines: Sequence) -> Adjusted:
        """The invoice's adjustments; the redemptions that discounted it use one period each."""
        live = [
            r
            for r in self._redemptions.get(customer.pk, [])
            if r.periods_remaining is None or r.periods_remaining > 0
        ]
        rates = [] if customer.tax_exempt else [r for r in self._rates if r.country in ("", customer.country)]
        value = self._values.get(currency.lower())
        credits = (
            Credits(balance=self._credits.get(customer.pk, 0), unit_amount=value)
            if value is not None
            else None
        )
        adjusted = adjust(
            currency=currency,
            lines=[_line(line, self._tier_of) for line in lines],
            discounts=[_discount(r) for r in live],
            rates=[
                Rate(key=r.pk, name=r.name, percent=r.percent, inclusive=r.inclusive, country=r.country)
                for r in rates
            ],
            credits=credits,
        )
        if adjusted.credits_used:  # a second invoice of the customer in this batch draws on what is left
            self._credits[customer.pk] -= adjusted.credits_used
        by_pk = {r.pk: r for r in live}
        for applied in adjusted.discounts:
            if applied.amount > 0:
                redemption = by_pk[applied.discount.key]
                redemption.periods_applied += 1
                self._used.add(redemption.pk)
        return adjusted

    def save(self, *, issued: Sequence[tuple[Invoice, Adjusted]]) -> None:
        """Write the invoices' discount and tax records (the invoices exist), the periods used and
        the credits spent."""
        credits_spend_on_invoices(
            spends=[
                _spend(invoice, adjusted.credits_used)
                for invoice, adjusted in issued
                if adjusted.credits_used
            ]
        )
        InvoiceDiscount.objects.bulk_create(
            [
                InvoiceDiscount(
                    invoice=invoice,
                    redemption_id=d.discount.key,
                    coupon_code=d.discount.code,
                    coupon_name=d.discount.name,
                    amount=d.amount,
                )  # fmt: skip
                for invoice, adjusted in issued
                for d in adjusted.discounts
                if d.amount > 0
            ],
            batch_size=2000,
        )
        InvoiceTax.objects.bulk_create(
            [
                InvoiceTax(
                    invoice=invoice,
                    tax_rate_id=t.rate.key,
                    name=t.rate.name,
                    percent=t.rate.percent,
                    inclusive=t.rate.inclusive,
                    country=t.rate.country,
                    taxable_amount=t.taxable,
                    amount=t.amount,
                )  # fmt: skip
                for invoice, adjusted in issued
                for t in adjusted.taxes
            ],
            batch_size=2000,
        )
        now = timezone.now()
        used = [r for rs in self._redemptions.values() for r in rs if r.pk in self._used]
        for redemption in used:
            if redemption.periods_remaining == 0:
                redemption.ended_at = now
        CouponRedemption.objects.bulk_update(used, ["periods_applied", "ended_at"])
