"""Server-rendered bar charts (inline SVG, no JavaScript): a usage series becomes bars with their
geometry precomputed here, so templates only draw rectangles."""

from __future__ import annotations

WIDTH, HEIGHT, GAP = 600, 140, 2


def bar_chart(series: list[dict], *, label_format: str = "%b %d") -> dict:
    """{"bars": [{"x", "y", "width", "height", "label", "value"}], "max", "width", "height"} for a
    usage series (each item has "start" and a numeric or null "value")."""
    values = [item["value"] or 0 for item in series]
    peak = max(values, default=0) or 1
    count = max(1, len(series))
    bar_width = max(1.0, WIDTH / count - GAP)
    bars = []
    for index, item in enumerate(series):
        value = item["value"] or 0
        height = round(HEIGHT * value / peak, 1)
        bars.append(
            {
                "x": round(index * (WIDTH / count), 1),
                "y": round(HEIGHT - height, 1),
                "width": round(bar_width, 1),
                "height": height,
                "label": item["start"].strftime(label_format),
                "value": value,
            }
        )
    return {"bars": bars, "max": max(values, default=0), "width": WIDTH, "height": HEIGHT}
