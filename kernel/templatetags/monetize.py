"""The template filters every page formats numbers, money and dates with (`{% load monetize %}`),
so no page formats a number by hand. README "Pages" lists them.

    {% money amount currency %} / {{ amount|money:currency }}   $1,234.50 · ₩39,000 · ¥500
    {% unit_money amount currency %}                            $0.0025 (fractional unit prices)
    {{ value|quantity }}                                        12,501 · 2.5
    {{ value|units:"build minute" }}                            1 build minute · 1,234 build minutes
    {{ value|units:"person|people" }}                           explicit plural
    {{ dt|when }} / {{ d|when:"date" }} / {{ d|when:"month" }}  <time> shown in the viewer's format
    {{ dt|ago }}                                                <time> "3 days ago", kept fresh
    {% badge status %}                                          status → coloured badge
    {% cell row column %}                                       a _table.html cell by column kind
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

from kernel.decimals import grouped
from kernel.money import format_amount, format_unit_amount
from kernel.words import plural

register = template.Library()
GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")  # "5,700", "-1,234.5"


def _empty(value) -> bool:
    return value is None or value == ""


@register.simple_tag(name="money")
def money_tag(amount, currency):
    return format_amount(amount, currency)


@register.filter(name="money")
def money_filter(amount, currency):
    """{{ invoice.total|money:invoice.currency }}; empty for a missing amount."""
    if _empty(amount) or not currency:
        return ""
    return format_amount(int(amount), currency)


@register.simple_tag
def unit_money(amount, currency):
    """A unit price in minor units, possibly fractional: 0.25 (usd) → "$0.0025"."""
    return format_unit_amount(amount if amount not in (None, "") else 0, currency)


def _decimal(value) -> Decimal | None:
    """A number from a number or its text; thousands separators are read ("5,700": a figure a
    display helper has already formatted still gets its unit right)."""
    if _empty(value) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if GROUPED.fullmatch(text):
        text = text.replace(",", "")
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


@register.filter
def quantity(value):
    """A decimal quantity with thousands separators: 12501 → "12,501", 2.50 → "2.5"."""
    number = _decimal(value)
    if number is None:
        return "" if _empty(value) else value
    return ("-" if number < 0 else "") + grouped(abs(number))


@register.filter
def units(value, unit: str = ""):
    """A quantity with its unit, pluralized: 1 → "1 build minute", 1234 → "1,234 build minutes"."""
    number = _decimal(value)
    if number is None:
        return "–"
    text = quantity(number)
    return f"{text} {plural(unit, number)}" if unit else text


@register.filter
def unit_for(unit: str, value):
    """The unit alone, pluralized for `value`: {{ meter.unit|unit_for:total }} → "minutes"."""
    return plural(unit, _decimal(value)) if unit else ""


def _aware(value):
    if isinstance(value, dt.datetime) and timezone.is_naive(value):
        return timezone.make_aware(value, dt.UTC)
    return value


@register.filter
def when(value, style: str = "datetime"):
    """<time datetime="…"> with a readable UTC fallback; static/js/app.js rewrites it in the viewer's
    locale and time zone. style: "datetime" (default), "date", or "month" ("December 2026": the
    month of a UTC date, which no time zone moves)."""
    if _empty(value):
        return "–"
    if isinstance(value, dt.datetime):
        value = _aware(value).astimezone(dt.UTC)
        if style == "month":
            value = value.date()
    if style == "month" and isinstance(value, dt.date):
        return format_html(
            '<time datetime="{}" data-format="month">{}</time>', f"{value:%Y-%m}", f"{value:%B %Y}"
        )
    if isinstance(value, dt.datetime):
        day = f"{value:%b} {value.day}, {value.year}"
        style = "date" if style == "date" else "datetime"
        fallback = day if style == "date" else f"{day}, {value:%H:%M} UTC"
        return format_html(
            '<time datetime="{}" data-format="{}">{}</time>', value.isoformat(), style, fallback
        )
    if isinstance(value, dt.date):
        fallback = f"{value:%b} {value.day}, {value.year}"
        return format_html('<time datetime="{}" data-format="date">{}</time>', value.isoformat(), fallback)
    return value


@register.filter
def ago(value):
    """A relative time ("3 days ago", "in 2 hours") with the full date as its title; kept fresh and
    localized by static/js/app.js."""
    if _empty(value):
        return "–"
    if isinstance(value, dt.datetime):
        value = _aware(value)
    elif isinstance(value, dt.date):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    else:
        return value
    now = timezone.now()
    if abs((now - value).total_seconds()) < 60:
        text = "just now"
    elif value <= now:
        text = f"{timesince(value, now, depth=1)} ago"
    else:
        text = f"in {timeuntil(value, now, depth=1)}"
    text = text.replace("\xa0", " ")
    utc = value.astimezone(dt.UTC)
    title = f"{utc:%b} {utc.day}, {utc.year}, {utc:%H:%M} UTC"
    return format_html('<time datetime="{}" data-relative title="{}">{}</time>', utc.isoformat(), title, text)


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


# status → tone of its badge (templates/_badge.html); anything unknown is neutral
TONES = {
    "success": {"active", "paid", "succeeded", "delivered", "processed", "ok", "healthy", "enabled", "live"},
    "info": {"trialing", "open", "pending", "scheduled", "processing", "received", "test"},
    "warning": {"past_due", "rotating", "incomplete", "paused", "retrying", "cancel_scheduled", "unsynced"},
    "danger": {"failed", "uncollectible", "revoked", "dead", "unpaid", "disputed", "suspended", "error"},
    "muted": {
        "canceled",
        "cancelled",
        "void",
        "draft",
        "expired",
        "churned",
        "inactive",
        "disabled",
        "deactivated",
        "used_up",
    },
}
_TONE_OF = {status: tone for tone, statuses in TONES.items() for status in statuses}


@register.filter
def tone(status) -> str:
    return _TONE_OF.get(str(status or "").lower(), "neutral")


@register.filter
def status_label(status) -> str:
    return str(status or "").replace("_", " ").capitalize()


@register.inclusion_tag("_badge.html")
def badge(status, label=None):
    return {"status": status, "label": label}


@register.simple_tag
def cell(row, column):
    """One cell of templates/_table.html, formatted by the column's kind."""
    from kernel.tables import cell_value

    return cell_value(row, column)


@register.simple_tag(takes_context=True)
def query(context, **changes):
    """The current query string with `changes` applied (None or "" removes a key): for sort and page
    links that keep the filters."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag
def vendor_missing():
    """The front-end library files node_modules lacks (base.html shows what to run instead of
    rendering an unstyled page silently)."""
    from kernel.assets import missing_files

    return missing_files()
