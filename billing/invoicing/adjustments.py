"""Discounts and taxes of an invoice (pure functions, no ORM): what the lines cost, what the customer's
coupons take off and what each tax rate adds or carves out, in integer minor units.

The rules, line by line:
- A discount applies to the lines it is for (a coupon restricted to tiers: the lines of those tiers'
  prices; otherwise every line), each in turn on what earlier discounts left.
  `percent_off`: each line's share is `amount × p / 100`, rounded once, half-up (a credit line's
  share is negative: a discounted plan's unused time is credited at the discounted price).
  `amount_off`: min(amount_off, what its lines come to) spread over its positive lines in
  proportion to their amounts (largest remainder: the shares add up to the cent). An amount off in
  another currency applies nothing.
- A discount never takes more than its lines come to, nor more than the invoice has left: the
  discount is never negative and never exceeds the subtotal, so the total is never negative.
- Credits pay for usage (where the tenant gave credits a value in the invoice's currency, Stripe's
  billing credits, Lago's wallets): after coupons, before tax, on usage lines only. They take
  min(what the usable balance is worth, rounded down; what the usage lines have left), spread over
  the usage lines in proportion (largest remainder), and use ceil(amount / value of a credit)
  micro-credits, never more than the balance. A line's `discount` share includes its credits.
- Taxes per line on the line's amount after discounts, each rounded once, half-up. With inclusive
  rates totalling R, a rate r takes `net × r / (100 + R)`: an inclusive rate's tax is carved out of
  the amount and changes no total; an exclusive rate's is added (with R = 0: `net × r / 100`).
- An invoice that bills nothing (its lines net to zero or less) gets no discount and no tax.
Zero-decimal currencies (krw, jpy) need nothing special: amounts are minor units throughout.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Line:
    """An invoice line as adjustments see it: its amount and the tier of its price (None: no price)."""

    amount: int
    tier_id: int | None = None
    usage: bool = False  # a usage charge: credits may pay for it


@dataclass(frozen=True)
class Credits:
    """A customer's usable credits and what one credit is worth in the invoice's currency."""

    balance: int  # micro-credits
    unit_amount: Decimal  # minor units per credit, > 0


@dataclass(frozen=True)
class Discount:
    """A coupon as held by the customer. `tier_ids` None: every line."""

    key: Hashable
    code: str
    name: str = ""
    percent_off: Decimal | None = None
    amount_off: int | None = None
    currency: str = ""
    tier_ids: frozenset[int] | None = None


@dataclass(frozen=True)
class Rate:
    key: Hashable
    name: str
    percent: Decimal
    inclusive: bool = False
    country: str = ""


@dataclass(frozen=True)
class LineAdjustment:
    discount: int  # coupons' and credits' share
    taxes: tuple[int, ...]  # per rate, in the order of the rates

    @property
    def tax(self) -> int:
        return sum(self.taxes)


@dataclass(frozen=True)
class AppliedDiscount:
    discount: Discount
    amount: int


@dataclass(frozen=True)
class AppliedTax:
    rate: Rate
    taxable: int  # the lines' amounts after discounts, without inclusive taxes
    amount: int


@dataclass(frozen=True)
class Adjusted:
    subtotal: int
    discount: int
    tax: int  # every rate's, inclusive ones included
    tax_inclusive: int  # the part of `tax` already inside the amounts
    total: int  # subtotal - discount - credits_applied + exclusive tax
    lines: tuple[LineAdjustment, ...]
    discounts: tuple[AppliedDiscount, ...]
    taxes: tuple[AppliedTax, ...]
    credits_applied: int = 0  # minor units the customer's credits paid (not part of `discount`)
    credits_used: int = 0  # micro-credits that took


MICROS = Decimal(1_000_000)


def credits_value(credits: Credits, limit: int) -> tuple[int, int]:
    """(amount, micro-credits): what the credits pay of `limit` minor units, and what that uses."""
    if credits.balance <= 0 or credits.unit_amount <= 0 or limit <= 0:
        return 0, 0
    worth = int(Decimal(credits.balance) * credits.unit_amount / MICROS)  # rounded down
    amount = min(worth, limit)
    if amount <= 0:
        return 0, 0
    used = (Decimal(amount) * MICROS / credits.unit_amount).to_integral_value(rounding=ROUND_CEILING)
    return amount, min(int(used), credits.balance)


def half_up(value: Decimal) -> int:
    """The one rounding: to the minor unit, halves away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _allocate(target: int, weights: dict[int, int]) -> dict[int, int]:
    """Split `target` ≥ 0 over positive weights in proportion (largest remainder, ties to the first
    line); each share is at most its weight when target ≤ sum(weights)."""
    total = sum(weights.values())
    if target <= 0 or total <= 0:
        return dict.fromkeys(weights, 0)
    shares = {i: target * w // total for i, w in weights.items()}
    left = target - sum(shares.values())
    for i in sorted(weights, key=lambda i: (-(target * weights[i] % total), i))[:left]:
        shares[i] += 1
    return shares


def adjust(
    *,
    currency: str,
    lines: Sequence[Line],
    discounts: Sequence[Discount] = (),
    rates: Sequence[Rate] = (),
    credits: Credits | None = None,
) -> Adjusted:
    amounts = [int(line.amount) for line in lines]
    raw = sum(amounts)
    subtotal = max(raw, 0)
    taken = [0] * len(amounts)
    applied: list[AppliedDiscount] = []
    for discount in discounts:
        left = [a - t for a, t in zip(amounts, taken, strict=True)]
        mine = [
            i
            for i, line in enumerate(lines)
            if discount.tier_ids is None or (line.tier_id is not None and line.tier_id in discount.tier_ids)
        ]
        limit = min(sum(left[i] for i in mine), sum(left))
        wrong_currency = discount.amount_off is not None and discount.currency.lower() != currency.lower()
        if limit <= 0 or wrong_currency:
            applied.append(AppliedDiscount(discount, 0))
            continue
        positive = {i: left[i] for i in mine if left[i] > 0}
        if discount.percent_off is not None:
            shares = {i: half_up(Decimal(left[i]) * discount.percent_off / HUNDRED) for i in mine}
            share_sum = sum(shares.values())
            if not 0 <= share_sum <= limit:  # rounding against a credit line: spread the bound instead
                shares = _allocate(min(max(share_sum, 0), limit), positive)
        else:
            shares = _allocate(min(int(discount.amount_off or 0), limit), positive)
        for i, share in shares.items():
            taken[i] += share
        applied.append(AppliedDiscount(discount, sum(shares.values())))
    discount_total = sum(taken)
    credits_applied = credits_used = 0
    if credits is not None:
        usage_left = {i: amounts[i] - taken[i] for i, line in enumerate(lines) if line.usage}
        positive = {i: left for i, left in usage_left.items() if left > 0}
        limit = min(sum(positive.values()), raw - discount_total)
        credits_applied, credits_used = credits_value(credits, limit)
        for i, share in _allocate(credits_applied, positive).items():
            taken[i] += share

    nets = [a - t for a, t in zip(amounts, taken, strict=True)]
    if raw - discount_total - credits_applied <= 0:
        rates = ()
    inclusive_percent = sum((r.percent for r in rates if r.inclusive), Decimal(0))
    per_rate: list[list[int]] = []
    for rate in rates:
        taxes = [half_up(Decimal(net) * rate.percent / (HUNDRED + inclusive_percent)) for net in nets]
        shortfall = -sum(taxes)
        for i in range(len(taxes) - 1, -1, -1):  # rounding on credit lines made it negative: floor at 0
            if shortfall <= 0:
                break
            if taxes[i] < 0:
                back = min(-taxes[i], shortfall)
                taxes[i] += back
                shortfall -= back
        per_rate.append(taxes)
    tax_inclusive = sum(sum(t) for r, t in zip(rates, per_rate, strict=True) if r.inclusive)
    tax_exclusive = sum(sum(t) for r, t in zip(rates, per_rate, strict=True) if not r.inclusive)
    taxable = subtotal - discount_total - credits_applied - tax_inclusive
    return Adjusted(
        subtotal=subtotal,
        discount=discount_total,
        tax=tax_inclusive + tax_exclusive,
        tax_inclusive=tax_inclusive,
        total=subtotal - discount_total - credits_applied + tax_exclusive,
        lines=tuple(
            LineAdjustment(discount=taken[i], taxes=tuple(t[i] for t in per_rate))
            for i in range(len(amounts))
        ),
        discounts=tuple(applied),
        taxes=tuple(AppliedTax(r, taxable, sum(t)) for r, t in zip(rates, per_rate, strict=True)),
        credits_applied=credits_applied,
        credits_used=credits_used,
    )
