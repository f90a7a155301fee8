"""Chart data for templates/_chart.html (Chart.js, from npm): time series with one or more series,
passed to the page with json_script and drawn by static/js/app.js — no inline script.

    chart = time_chart(chart_id="usage-build-minutes", points=[...datetimes...],
                       series=[{"label": "Build minutes", "values": [...]}], unit="build minute")
    {% include "_chart.html" with chart=chart title="Build minutes" %}

Money series carry their currency and its exponent; values stay integers in minor units and the
browser divides only to display them.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from kernel.money import exponent
from kernel.words import plural

GRANULARITIES = {"hour", "day", "week", "month"}


def _number(value):
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral() else float(value)
    return value


def time_chart(
    *,
    chart_id: str,
    points: list[dt.datetime | dt.date],
    series: list[dict],
    granularity: str = "day",
    unit: str = "",
    currency: str | None = None,
    kind: str = "bar",
    stacked: bool = False,
) -> dict:
    """series: [{"label": str, "values": [number | None, …]}] aligned with points."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {sorted(GRANULARITIES)}")
    chart_id = "chart-" + re.sub(r"[^a-z0-9-]+", "-", chart_id.lower()).strip("-")
    datasets = [{"label": s["label"], "values": [_number(v) for v in s["values"]]} for s in series]
    empty = not points or all(not v for s in datasets for v in s["values"])
    return {
        "id": chart_id,
        "kind": kind if kind in {"bar", "line"} else "bar",
        "stacked": stacked,
        "granularity": granularity,
        "labels": [point.isoformat() for point in points],
        "series": datasets,
        "unit": unit,
        "unit_one": plural(unit, Decimal(1)) if unit else "",
        "unit_other": plural(unit, Decimal(2)) if unit else "",
        "currency": currency.lower() if currency else None,
        "exponent": exponent(currency) if currency else 0,
        "empty": empty,
    }


def usage_chart(*, chart_id: str, series: list[dict], label: str, unit: str = "", granularity="day") -> dict:
    """A usage series from billing.metering.selectors.usage_series ({"start", "value"}) as a chart."""
    return time_chart(
        chart_id=chart_id,
        points=[item["start"] for item in series],
        series=[{"label": label, "values": [item["value"] or 0 for item in series]}],
        granularity=granularity,
        unit=unit,
    )
