"""What the customer pages show, shaped for the layout's includes: the list as a templates/_table.html
table (sorted and paged by the selector, in the database), and each meter's usage as a chart."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse

from console.customers.selectors import NO_MEMBERSHIP, CustomerFilters, sort_of
from kernel.charts import time_chart
from kernel.tables import Column, Table


def customer_table(*, page, filters: CustomerFilters) -> Table:
    """The page's rows (already sorted and sliced by the database) under sortable headers."""
    columns = [
        Column("label", "Customer", link="url"),
        Column("tier_name", "Tier", sort="tier"),
        Column("status_shown", "Status", kind="badge", sort="status"),
        Column("mrr_or_none", "MRR", kind="money", sort="mrr", currency="mrr_currency"),
    ]
    if filters.meter is not None:
        unit = filters.meter.unit
        columns.append(
            Column(
                "usage",
                f"{filters.meter.name} this month",
                kind="units" if unit else "quantity",
                sort="usage",
                unit=unit,
            )
        )
    columns.append(Column("created_at", "Created", kind="date", sort="created"))
    rows = list(page.object_list)
    for row in rows:
        row.url = reverse("customer", kwargs={"external_id": row.external_id})
        row.label = row.name or row.email or row.external_id
        row.mrr_or_none = row.mrr or None
        row.status_shown = (
            "no_subscription" if row.membership_status == NO_MEMBERSHIP else row.membership_status
        )
    page.object_list = rows
    key, descending = sort_of(filters)
    headers = []
    for column in columns:
        current = column.sort == key
        headers.append(
            {
                "column": column,
                "sort": ((column.sort if descending else f"-{column.sort}") if current else f"-{column.sort}")
                if column.sort
                else None,
                "state": ("descending" if descending else "ascending") if current else None,
            }
        )
    return Table(columns=columns, page=page, sort=("-" if descending else "") + key, headers=headers)


def usage_charts(rows: list[dict]) -> list[dict]:
    """Each meter's row with a daily chart of this period's usage."""
    charted = []
    for row in rows:
        meter = row["meter"]
        chart = time_chart(
            chart_id=f"usage-{meter.code}",
            points=[dt.date.fromisoformat(point["date"]) for point in row["series"]],
            series=[{"label": meter.name, "values": [point["value"] for point in row["series"]]}],
            unit=meter.unit,
        )
        charted.append({**row, "chart": chart})
    return charted
