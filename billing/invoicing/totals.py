"""The discount and tax of an invoice, or of the upcoming invoice: the customer's live coupon and its
tax rates fed to the pure rules of billing.invoicing.adjustments. A draft keeps the result (its
lines' shares, one record per coupon and per tax rate); finalizing recomputes it under the
redemptions' locks and counts one period of each redemption that discounted the invoice, so a
`once` coupon discounts one finalized invoice even when two drafts were made while it was live.
The upcoming invoice runs the same code on the same lines, so preview and invoice agree to the cent.

Invoices collected by a provider (mirrored from Stripe, Polar, Lemon Squeezy) are never adjusted
here: the provider computed their discount and tax (merchant-of-record providers their own tax).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from billing.invoicing.adjustments import Adjusted, Discount, Line, Rate, adjust
from billing.invoicing.models import Invoice, InvoiceDiscount, InvoiceLine, InvoiceTax, TaxRate
from billing.invoicing.taxes import tax_rates_for
from billing.memberships.models import CouponRedemption, Customer
from billing.tiers.models import Price


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
    *, customer: Customer, currency: str, lines: Sequence, redemptions: list[CouponRedemption] | None = None
) -> Adjusted:
    """The adjustments of `lines` (invoice lines or line drafts: `amount`, `price_id`) for `customer`."""
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
        lines=[Line(amount=line.amount, tier_id=tier_of.get(line.price_id)) for line in lines],
        discounts=discounts,
        rates=[
            Rate(key=r.pk, name=r.name, percent=r.percent, inclusive=r.inclusive, country=r.country)
            for r in tax_rates_for(customer=customer)
        ],
    )


def invoice_adjust(*, invoice: Invoice, consume: bool = False) -> Adjusted:
    """Set a draft's subtotal, discount, tax and total and rewrite its records (the caller saves the
    invoice). `consume` (finalization, the invoice locked by the caller): lock the redemptions
    first, and count one period of each that discounted this invoice, ending it when none is left."""
    redemptions = live_redemptions(customer=invoice.customer, lock=consume)
    lines = list(invoice.lines.order_by("id"))
    adjusted = adjustments_for(
        customer=invoice.customer, currency=invoice.currency, lines=lines, redemptions=redemptions
    )
    invoice.subtotal, invoice.discount = adjusted.subtotal, adjusted.discount
    invoice.tax, invoice.total = adjusted.tax, adjusted.total
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
        adjusted = adjust(
            currency=currency,
            lines=[Line(amount=line.amount, tier_id=self._tier_of.get(line.price_id)) for line in lines],
            discounts=[_discount(r) for r in live],
            rates=[
                Rate(key=r.pk, name=r.name, percent=r.percent, inclusive=r.inclusive, country=r.country)
                for r in rates
            ],
        )
        by_pk = {r.pk: r for r in live}
        for applied in adjusted.discounts:
            if applied.amount > 0:
                redemption = by_pk[applied.discount.key]
                redemption.periods_applied += 1
                self._used.add(redemption.pk)
        return adjusted

    def save(self, *, issued: Sequence[tuple[Invoice, Adjusted]]) -> None:
        """Write the invoices' discount and tax records (the invoices exist) and the periods used."""
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
