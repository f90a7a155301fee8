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
