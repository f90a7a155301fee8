"""Money: integer minor units next to a lowercase ISO-4217 currency. Never floats.

The exponent table covers the currencies our providers settle; anything else has two decimals.
"""

import re
from decimal import Decimal

ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "isk",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "krw": "₩", "inr": "₹", "cad": "CA$", "aud": "A$"}


def exponent(currency: str) -> int:
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def format_amount(amount: int, currency: str) -> str:
    """1900, "usd" → "$19.00"; 39000, "krw" → "₩39,000" (exact integer arithmetic)."""
    places = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(int(amount)), 10**places) if places else (abs(int(amount)), 0)
    number = f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
    symbol = SYMBOLS.get(currency.lower())
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency.upper()}"


def format_unit_amount(minor: Decimal | int | str, currency: str) -> str:
    """A unit amount (minor units, possibly fractional) in major units with the decimals it needs:
    0.25 cents → "$0.0025", 1900 → "$19.00"."""
    minor = Decimal(minor)
    if minor == minor.to_integral():
        return format_amount(int(minor), currency)
    places = exponent(currency)
    major = minor.scaleb(-places)
    digits = max(places, -major.normalize().as_tuple().exponent)
    number = f"{major:,.{digits}f}"
    symbol = SYMBOLS.get(currency.lower())
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


def parse_amount(text: str, currency: str) -> int:
    """What a person typed, in major units, as minor units: "1,234.5" usd → 123450, "39,000" krw →
    39000. Exact (integer arithmetic); refuses more decimals than the currency has, signs, exponents
    and anything that is not a plain number (ValueError, with a message to show)."""
    cleaned = str(text).strip().replace(",", "").replace(" ", "")
    symbol = SYMBOLS.get(currency.lower(), "")
    if symbol and cleaned.startswith(symbol):
        cleaned = cleaned[len(symbol) :]
    number = re.fullmatch(r"(\d*)(?:\.(\d+))?", cleaned, re.ASCII)
    if number is None or not (number[1] or number[2]):
        raise ValueError("Enter an amount such as 12.50.")
    whole, fraction = number[1] or "0", number[2] or ""
    places = exponent(currency)
    if len(fraction) > places:
        unit = f"has {places} decimals" if places else "has no decimals"
        raise ValueError(f"{currency.upper()} {unit}.")
    return int(whole) * 10**places + int(fraction.ljust(places, "0") or 0)
