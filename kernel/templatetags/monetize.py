from django import template

from kernel.decimals import grouped
from kernel.money import format_amount, format_unit_amount

register = template.Library()


@register.simple_tag
def money(amount, currency):
    return format_amount(amount, currency)


@register.simple_tag
def unit_money(amount, currency):
    """A unit price in minor units, possibly fractional: 0.25 (usd) → "$0.0025"."""
    return format_unit_amount(amount if amount not in (None, "") else 0, currency)


@register.filter
def quantity(value):
    """A decimal quantity with thousands separators: 12501 → "12,501", 2.50 → "2.5"."""
    return "" if value in (None, "") else grouped(value)


@register.filter
def percent_of(used, limit):
    """Width of a usage bar, 0-100."""
    if not limit:
        return 100 if used else 0
    return max(0, min(100, round(100 * (used or 0) / limit)))


@register.filter
def period(start, end):
    """A date range, the year said once when both ends share it: "Nov 1 – Dec 1, 2025"."""
    if not start or not end:
        return ""
    if start.year == end.year:
        return f"{start:%b} {start.day} – {end:%b} {end.day}, {end.year}"
    return f"{start:%b} {start.day}, {start.year} – {end:%b} {end.day}, {end.year}"
