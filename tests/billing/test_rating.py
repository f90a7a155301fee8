"""Rating (billing/invoicing/rating.py): hand-computed examples for every model, and properties that
hold for any table and quantity (hypothesis)."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.invoicing.exceptions import RatingError
from billing.invoicing.rating import PriceTerms, TierRow, rate

D = Decimal


def graduated(*rows, model="graduated"):
    return PriceTerms(
        model=model,
        currency="usd",
        tiers=tuple(TierRow(up_to=u, unit_amount=D(a), flat_amount=f) for u, a, f in rows),
    )


# --- examples, computed by hand -------------------------------------------------------------------


def test_flat_ignores_the_quantity():
    assert rate(PriceTerms(model="flat", currency="usd", unit_amount=D(2900)), 7).amount == 2900


def test_per_seat_and_per_unit_multiply():
    assert rate(PriceTerms(model="per_seat", currency="usd", unit_amount=D(1500)), 4).amount == 6000
    assert rate(PriceTerms(model="per_unit", currency="usd", unit_amount=D(3)), 12_345).amount == 37_035


def test_graduated_charges_each_slice_at_its_tier_plus_reached_flat_amounts():
    # 1,000 included; 1,001–10,000 at 2; beyond at 1 plus a 500 flat fee once reached
    terms = graduated((1000, 0, 0), (10_000, 2, 0), (None, 1, 500))
    assert rate(terms, 1000).amount == 0
    assert rate(terms, 1001).amount == 2
    rated = rate(terms, 12_500)
    assert rated.amount == 9000 * 2 + 2500 * 1 + 500 == 21_000
    assert [s.quantity for s in rated.breakdown] == [1000, 9000, 2500]
    assert [s.first for s in rated.breakdown] == [1, 1001, 10_001]


def test_volume_prices_the_whole_quantity_at_the_tier_it_lands_in():
    terms = graduated((100, 10, 0), (1000, 8, 100), (None, 5, 0), model="volume")
    assert rate(terms, 100).amount == 1000
    assert rate(terms, 101).amount == 101 * 8 + 100
    assert rate(terms, 5000).amount == 25_000
    assert len(rate(terms, 5000).breakdown) == 1


def test_package_rounds_partial_packages_up_or_down():
    up = PriceTerms(model="package", currency="usd", unit_amount=D(500), package_size=1000)
    down = PriceTerms(
        model="package", currency="usd", unit_amount=D(500), package_size=1000, package_rounding="down"
    )
    assert rate(up, 1).amount == 500
    assert rate(up, 2000).amount == 1000
    assert rate(up, 2001).amount == 1500
    assert rate(down, 2999).amount == 1000
    assert rate(down, 999).amount == 0


def test_fractional_unit_amounts_are_rounded_once_per_line_half_up():
    # 0.25 cents per token: 3 tokens = 0.75 → 1 cent; slice by slice it would have been 0 + 0 + 0
    terms = PriceTerms(model="per_unit", currency="usd", unit_amount=D("0.25"))
    assert rate(terms, 3).amount == 1
    assert rate(terms, 2).amount == 1  # 0.5 rounds half-up
    assert rate(terms, 1).amount == 0
    # graduated slices at 0.4 and 0.3: 0.4 + 0.3 = 0.7 → 1, not round(0.4) + round(0.3) = 0
    terms = graduated((1, "0.4", 0), (None, "0.3", 0))
    rated = rate(terms, 2)
    assert rated.exact_amount == D("0.7") and rated.amount == 1


def test_zero_decimal_currencies_stay_whole_units():
    terms = PriceTerms(model="per_unit", currency="krw", unit_amount=D("12.5"))
    rated = rate(terms, 3)
    assert rated.amount == 38 and rated.currency == "krw"  # 37.5 won → 38 won


def test_a_zero_quantity_pays_only_flat_fees_and_the_first_tiers_flat_amount():
    for model in ("per_unit", "per_seat"):
        assert rate(PriceTerms(model=model, currency="usd", unit_amount=D(9)), 0).amount == 0
    assert rate(PriceTerms(model="package", currency="usd", unit_amount=D(9), package_size=5), 0).amount == 0
    # "flat fee and overages": the first tier's flat amount is the platform fee, owed at zero usage
    assert rate(graduated((10, 0, 700), (None, 1, 50)), 0).amount == 700
    assert rate(graduated((10, 5, 700), (None, 1, 50), model="volume"), 0).amount == 700
    assert rate(PriceTerms(model="flat", currency="usd", unit_amount=D(900)), 0).amount == 900


@pytest.mark.parametrize("quantity", [-1, 1.5, "abc", "NaN", "Infinity", True, None])
def test_bad_quantities_are_refused(quantity):
    with pytest.raises(RatingError):
        rate(PriceTerms(model="per_unit", currency="usd", unit_amount=D(1)), quantity)


@pytest.mark.parametrize(
    "terms",
    [
        PriceTerms(model="nope", currency="usd"),
        PriceTerms(model="graduated", currency="usd"),
        graduated((10, 1, 0), (5, 1, 0)),  # up_to not increasing
        graduated((None, 1, 0), (10, 1, 0)),  # open-ended tier not last
        graduated((10, -1, 0), (None, 1, 0)),
        PriceTerms(model="package", currency="usd", unit_amount=D(1), package_size=0),
        PriceTerms(model="per_unit", currency="usd", unit_amount=1.5),
    ],
)
def test_broken_terms_are_refused(terms):
    with pytest.raises(RatingError):
        rate(terms, 1)


def test_a_quantity_above_a_bounded_table_is_refused():
    with pytest.raises(RatingError) as exc:
        rate(graduated((10, 1, 0), (20, 1, 0)), 21)
    assert exc.value.code == "quantity_above_tiers"


# --- properties ---------------------------------------------------------------------------------

amounts = st.one_of(
    st.integers(min_value=0, max_value=10_000).map(D),
    st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False),
)


@st.composite
def tables(draw):
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=100_000), min_size=0, max_size=5)))
    rows = [
        TierRow(
            up_to=b, unit_amount=draw(amounts), flat_amount=draw(st.integers(min_value=0, max_value=5000))
        )
        for b in bounds
    ]
    rows.append(TierRow(up_to=None, unit_amount=draw(amounts), flat_amount=draw(st.integers(0, 5000))))
    return tuple(rows)


quantities = st.integers(min_value=0, max_value=1_000_000)


@settings(max_examples=300, deadline=None)
@given(tables(), quantities, quantities)
def test_graduated_is_monotone_and_the_sum_of_its_slices(table, q1, q2):
    terms = PriceTerms(model="graduated", currency="usd", tiers=table)
    low, high = sorted((q1, q2))
    a, b = rate(terms, low), rate(terms, high)
    assert 0 <= a.exact_amount <= b.exact_amount and a.amount <= b.amount
    assert b.exact_amount == sum(s.quantity * s.unit_amount + s.flat_amount for s in b.breakdown)
    assert sum(s.quantity for s in b.breakdown) == high


@settings(max_examples=300, deadline=None)
@given(tables(), quantities)
def test_volume_picks_exactly_one_tier(table, q):
    rated = rate(PriceTerms(model="volume", currency="usd", tiers=table), q)
    (only,) = rated.breakdown
    assert only.quantity == q and (only.last is None or q <= only.last)
    assert q == 0 and only.first == 1 or only.first <= q
    assert rated.amount >= 0


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10_000), st.integers(0, 100_000), quantities, st.sampled_from(["up", "down"]))
def test_package_never_bills_a_partial_package(size, unit, q, rounding):
    terms = PriceTerms(
        model="package", currency="usd", unit_amount=D(unit), package_size=size, package_rounding=rounding
    )
    rated = rate(terms, q)
    packages = sum(s.quantity for s in rated.breakdown)
    assert rated.amount == packages * unit
    assert (packages - 1) * size < q <= packages * size if rounding == "up" and q else packages * size <= q


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["flat", "per_seat", "per_unit", "graduated", "volume", "package"]),
    tables(),
    amounts,
    quantities,
)
def test_no_model_returns_a_negative_amount(model, table, unit, q):
    terms = PriceTerms(model=model, currency="usd", unit_amount=unit, tiers=table, package_size=100)
    assert rate(terms, q).amount >= 0
