import pytest

from kernel.money import exponent, format_amount


@pytest.mark.parametrize(
    "amount, currency, text",
    [(1900, "usd", "$19.00"), (5, "eur", "€0.05"), (39000, "krw", "₩39,000"), (1234, "jpy", "¥1,234"),
     (1234567, "usd", "$12,345.67"), (-250, "gbp", "-£2.50"), (1500, "kwd", "1.500 KWD"), (100, "chf", "1.00 CHF")],
)  # fmt: skip
def test_format_amount_is_exact(amount, currency, text):
    assert format_amount(amount, currency) == text


def test_exponents():
    assert (exponent("usd"), exponent("KRW"), exponent("jpy"), exponent("bhd")) == (2, 0, 0, 3)


@pytest.mark.parametrize(
    "minor, currency, text",
    [("0.25", "usd", "$0.0025"), ("1900", "usd", "$19.00"), ("123456.5", "usd", "$1,234.565"),
     ("0.5", "krw", "₩0.5"), ("2", "chf", "0.02 CHF")],
)  # fmt: skip
def test_unit_amounts_keep_the_decimals_they_need(minor, currency, text):
    from decimal import Decimal

    from kernel.money import format_unit_amount

    assert format_unit_amount(Decimal(minor), currency) == text


def test_template_filters_for_quantities_and_periods():
    import datetime as dt

    from kernel.templatetags.monetize import period, quantity

    assert (quantity("12501"), quantity("2.50"), quantity(None)) == ("12,501", "2.5", "")
    assert period(dt.date(2025, 11, 1), dt.date(2025, 12, 1)) == "Nov 1 – Dec 1, 2025"
    assert period(dt.date(2025, 12, 1), dt.date(2026, 1, 1)) == "Dec 1, 2025 – Jan 1, 2026"
    assert period(None, dt.date(2026, 1, 1)) == ""
