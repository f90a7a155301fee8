"""Decimals as text: plain digits, never an exponent (`Decimal("1E+2")` is "100", 0.2500 is "0.25")."""

from decimal import Decimal


def decimal_text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    value = Decimal(value)
    return f"{value.normalize():f}" if value != value.to_integral() else str(int(value))


def grouped(value: Decimal) -> str:
    """12501 → "12,501"; 2.5 → "2.5" (thousands separators for display)."""
    whole, _, fraction = decimal_text(value).partition(".")
    return f"{int(whole):,}" + (f".{fraction}" if fraction else "")
