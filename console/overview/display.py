"""The overview page's charts (kernel.charts, drawn by Chart.js through templates/_chart.html), one
per figure (money: one per currency), and whether a figure needs attention. The numbers themselves
are formatted in the template by the money/quantity/units/when filters."""

from __future__ import annotations

from kernel.charts import time_chart


def _values(series: list[dict], key: str) -> list:
    return [point[key] for point in series]


def overview_charts(figures: dict) -> dict:
    """{"mrr": [chart per currency], "revenue": [chart per currency], "subscriptions": chart, …}"""
    subs, failed = figures["subscriptions"], figures["failed_payments"]
    sync, hooks = figures["usage_sync"], figures["webhooks"]
    days = [point["date"] for point in subs["series"]]

    def chart(chart_id, series, **options):
        return time_chart(chart_id=chart_id, points=days, series=series, **options)

    return {
        "mrr": [
            chart(
                f"mrr-{row['currency']}",
                [{"label": f"MRR ({row['currency'].upper()})", "values": _values(row["series"], "amount")}],
                currency=row["currency"],
                kind="line",
            )
            for row in figures["mrr"]
        ],  # fmt: skip
        "revenue": [
            chart(
                f"revenue-{row['currency']}",
                [
                    {
                        "label": f"Net revenue ({row['currency'].upper()})",
                        "values": _values(row["series"], "net"),
                    }
                ],
                currency=row["currency"],
            )
            for row in figures["revenue"]
        ],  # fmt: skip
        "subscriptions": chart(
            "subscriptions",
            [
                {"label": label, "values": _values(subs["series"], key)}
                for key, label in (("active", "Active"), ("trialing", "Trialing"), ("past_due", "Past due"))
            ],
            kind="line",
            unit="subscription",
        ),  # fmt: skip
        "movement": chart(
            "movement",
            [
                {"label": "New", "values": _values(subs["series"], "new")},
                {"label": "Churned", "values": _values(subs["series"], "churned")},
            ],
            unit="subscription",
        ),  # fmt: skip
        "failed": chart(
            "failed-charges",
            [{"label": "Failed charges", "values": _values(failed["series"], "failed_charges")}],
            unit="failed charge",
        ),
        "sync": chart(
            "usage-sync",
            [
                {"label": "Units reported", "values": _values(sync["series"], "units")},
                {"label": "Sync failures", "values": _values(sync["series"], "failures")},
            ],
        ),  # fmt: skip
        "webhooks": chart(
            "webhooks",
            [
                {"label": "Provider events not applied", "values": _values(hooks["series"], "inbox")},
                {"label": "Failing deliveries", "values": _values(hooks["series"], "deliveries")},
            ],
            unit="event",
            stacked=True,
        ),  # fmt: skip
    }


def overview_attention(figures: dict) -> dict[str, bool]:
    """Which figures need someone: the page marks their cards."""
    failed, sync, hooks = figures["failed_payments"], figures["usage_sync"], figures["webhooks"]
    last = sync["last_run"]
    return {
        "failed": bool(failed["past_due"] or failed["invoices"]),
        "sync": bool(sync["pending_reports"] or sync["refused_reports"] or (last and last["failures"])),
        "webhooks": bool(
            hooks["inbox_dead"] + hooks["inbox_failed"] + hooks["inbox_unmatched"]
            or hooks["deliveries_dead"] + hooks["deliveries_failed"]
            or hooks["failing_endpoints"]
        ),
    }
