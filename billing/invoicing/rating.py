"""Rating: what a price costs for a quantity, in integer minor units, with its breakdown.

Pure functions over dataclasses: no ORM, no I/O, no floats. Amounts are minor units of the price's
currency (cents; whole won and yen for zero-decimal currencies, whose minor unit is the unit itself).

Models (what Stripe, Lago and Kill Bill call them):
- `flat`: the unit amount, whatever the quantity (a plan fee).
- `per_seat` / `per_unit`: unit amount × quantity (seats; metered usage billed in arrears).
- `graduated`: each slice of the quantity at its own tier's unit amount, plus the flat amount of every
  tier the quantity reaches into. `[{up_to: 1000, unit: 0}, {up_to: None, unit: 2}]` is "1,000 included,
  then 2 each".
- `volume`: the whole quantity at the unit amount of the one tier it lands in, plus that tier's flat
  amount.
- `package`: whole packages of `package_size` units at the unit amount each; a partial package is
  rounded up (the default) or down (`package_rounding="down"`, "only full packages are billed").

A zero quantity lands in the first tier of a graduated or volume table, so that tier's flat amount is
charged (Stripe's "flat fee and overages": a first tier `{up_to: 50000, unit_amount: 0, flat_amount:
99900}` is a $999 platform fee with 50,000 units included, paid whatever the usage). Per unit, per seat
and package prices cost nothing for nothing; `flat` always costs its amount.

Unit amounts may be fractional (`unit_amount_decimal`, e.g. `Decimal("0.25")` cents per token). Slices
are computed exactly as decimals and the line is rounded **once**, half-up to the minor unit, so a line
never carries the rounding of each of its slices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from billing.invoicing.exceptions import RatingError
from kernel.decimals import decimal_text

MODELS = ("flat", "per_seat", "per_unit", "graduated", "volume", "package")
PACKAGE_ROUNDING = ("up", "down")


@dataclass(frozen=True)
class TierRow:
    """One row of a graduated or volume table: units up to `up_to` (inclusive; None = no end)."""

    up_to: int | None
    unit_amount: Decimal = Decimal(0)
    flat_amount: int = 0


@dataclass(frozen=True)
class PriceTerms:
    """The terms rating needs, copied from a catalog Price (or a quote request)."""

    model: str
    currency: str
    unit_amount: Decimal = Decimal(0)
    tiers: tuple[TierRow, ...] = ()
    package_size: int | None = None
    package_rounding: str = "up"


@dataclass(frozen=True)
class Slice:
    """One part of the breakdown: `quantity` units from `first` to `last` at `unit_amount`, plus
    `flat_amount`; `amount` is exact (not rounded: the line is rounded once)."""

    first: Decimal
    last: Decimal | None
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: int
    amount: Decimal


@dataclass(frozen=True)
class Rated:
    """The rated line: `amount` in minor units (rounded once, half-up) and how it was reached."""

    amount: int
    currency: str
    quantity: Decimal
    exact_amount: Decimal
    breakdown: tuple[Slice, ...] = field(default_factory=tuple)


def decimal_amount(value, *, name: str = "unit_amount", code: str | None = None) -> Decimal:
    """A non-negative unit amount from an int, a Decimal or a decimal string (never a float)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise RatingError(
            f"{name} must be an integer or a decimal string, not {type(value).__name__}.", code=code
        )
    try:
        amount = Decimal(value) if isinstance(value, int | str) else value
    except InvalidOperation:
        raise RatingError(f"{name} is not a number: {str(value)[:40]!r}.", code=code) from None
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise RatingError(f"{name} must be a finite number ≥ 0.", code=code)
    return amount


def quantity_of(value) -> Decimal:
    """A non-negative quantity from an int, a Decimal or a decimal string (never a float)."""
    return decimal_amount(value, name="quantity", code="invalid_quantity")


def round_minor(exact: Decimal) -> int:
    """Half-up to the minor unit: the one rounding of a line."""
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def terms_check(terms: PriceTerms) -> None:
    if terms.model not in MODELS:
        raise RatingError(f"Unknown pricing model '{terms.model}'.", details={"model": terms.model})
    decimal_amount(terms.unit_amount)
    if terms.model in ("graduated", "volume"):
        if not terms.tiers:
            raise RatingError(f"A {terms.model} price needs a tiers table.")
        previous = 0
        for index, row in enumerate(terms.tiers):
            decimal_amount(row.unit_amount, name=f"tiers[{index}].unit_amount")
            if (
                isinstance(row.flat_amount, bool)
                or not isinstance(row.flat_amount, int)
                or row.flat_amount < 0
            ):
                raise RatingError(f"tiers[{index}].flat_amount must be an integer ≥ 0.")
            last = index == len(terms.tiers) - 1
            if row.up_to is None:
                if not last:
                    raise RatingError(f"Only the last tier may be open-ended (tiers[{index}]).")
            elif isinstance(row.up_to, bool) or not isinstance(row.up_to, int) or row.up_to <= previous:
                raise RatingError(f"tiers[{index}].up_to must be an integer above the previous tier's.")
            else:
                previous = row.up_to
    if terms.model == "package":
        size = terms.package_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise RatingError("A package price needs a package_size ≥ 1.")
        if terms.package_rounding not in PACKAGE_ROUNDING:
            raise RatingError("package_rounding is 'up' or 'down'.")


def rate(terms: PriceTerms, quantity) -> Rated:
    """The amount of `quantity` units under `terms` (see the module docstring for each model)."""
    terms_check(terms)
    q = quantity_of(quantity)
    unit = decimal_amount(terms.unit_amount)
    if terms.model == "flat":
        slices = (Slice(Decimal(1), Decimal(1), Decimal(1), unit, 0, unit),)
    elif terms.model in ("per_seat", "per_unit"):
        slices = (Slice(Decimal(1), q, q, unit, 0, q * unit),) if q else ()
    elif terms.model == "graduated":
        slices = _graduated(terms.tiers, q)
    elif terms.model == "volume":
        slices = _volume(terms.tiers, q)
    else:
        slices = _package(terms, q, unit)
    exact = sum((s.amount for s in slices), Decimal(0))
    return Rated(
        amount=round_minor(exact), currency=terms.currency, quantity=q, exact_amount=exact, breakdown=slices
    )


def _graduated(tiers: tuple[TierRow, ...], q: Decimal) -> tuple[Slice, ...]:
    slices, floor = [], Decimal(0)
    for index, row in enumerate(tiers):
        if q <= floor and index:  # a zero quantity still lands in (and pays the flat of) the first tier
            break
        top = q if row.up_to is None else min(q, Decimal(row.up_to))
        units = top - floor
        unit = decimal_amount(row.unit_amount)
        last = None if row.up_to is None else Decimal(row.up_to)
        slices.append(Slice(floor + 1, last, units, unit, row.flat_amount, units * unit + row.flat_amount))
        floor = top
    if q > floor:
        raise RatingError(f"Quantity {q} is above the last tier ({floor}).", code="quantity_above_tiers")
    return tuple(slices)


def _volume(tiers: tuple[TierRow, ...], q: Decimal) -> tuple[Slice, ...]:
    floor = Decimal(0)
    for row in tiers:
        if row.up_to is None or q <= row.up_to:
            unit = decimal_amount(row.unit_amount)
            last = None if row.up_to is None else Decimal(row.up_to)
            return (Slice(floor + 1, last, q, unit, row.flat_amount, q * unit + row.flat_amount),)
        floor = Decimal(row.up_to)
    raise RatingError(f"Quantity {q} is above the last tier ({floor}).", code="quantity_above_tiers")


def _package(terms: PriceTerms, q: Decimal, unit: Decimal) -> tuple[Slice, ...]:
    size = Decimal(terms.package_size)
    whole, partial = divmod(q, size)
    packages = whole + (1 if partial and terms.package_rounding == "up" else 0)
    if not packages:
        return ()
    return (Slice(Decimal(1), q, packages, unit, 0, packages * unit),)


def breakdown_rows(rated: Rated) -> list[dict]:
    """The breakdown as JSON-ready rows (decimal strings), as invoice lines and quotes show it."""
    return [
        {
            "first": decimal_text(s.first),
            "last": decimal_text(s.last),
            "quantity": decimal_text(s.quantity),
            "unit_amount": decimal_text(s.unit_amount),
            "flat_amount": s.flat_amount,
            "amount": decimal_text(s.amount),
        }  # fmt: skip
        for s in rated.breakdown
    ]
