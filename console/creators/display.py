"""The staff creator pages' lists as templates/_table.html tables: sorted and paged by the database
(console.creators.selectors' sort keys; anything else falls back to the default order)."""

from __future__ import annotations

from console.creators.selectors import (
    CREATOR_SORTS,
    DEFAULT_CREATOR_SORT,
    DEFAULT_PAYOUT_SORT,
    PAYOUT_SORTS,
    balances_for,
)
from kernel.tables import Column, Table, table_from_request


def creator_table(request, *, creators, per_page: int = 25) -> Table:
    """A page of creators (the columns' keys are the ?sort= keys; the row template draws the cells), each with `balances` ([{currency, pending, available}]) read for that
    page alone in one query."""
    columns = [
        Column("name", "Creator", sort=CREATOR_SORTS["name"]),
        Column("handle", "Handle", sort=CREATOR_SORTS["handle"]),
        Column("payouts", "Payouts", kind="badge", sort=CREATOR_SORTS["payouts"]),
        Column("pending", "Pending", kind="money"),
        Column("available", "Available", kind="money"),
        Column("created", "Created", kind="date", sort=CREATOR_SORTS["created"]),
        Column("links", ""),
    ]
    table = table_from_request(
        request, rows=creators, columns=columns, default_sort=DEFAULT_CREATOR_SORT, per_page=per_page
    )
    rows = list(table.page.object_list)
    balances = balances_for(rows)
    for creator in rows:
        creator.balances = balances.get(creator.pk, [])
    table.page.object_list = rows
    return table


def payout_table(request, *, payouts, per_page: int = 25) -> Table:
    columns = [
        Column("requested", "Requested", kind="datetime", sort=PAYOUT_SORTS["requested"]),
        Column("creator", "Creator"),
        Column("amount", "Amount", kind="money", sort=PAYOUT_SORTS["amount"]),
        Column("status", "Status", kind="badge", sort=PAYOUT_SORTS["status"]),
        Column("provider", "At the provider"),
    ]
    return table_from_request(
        request, rows=payouts, columns=columns, default_sort=DEFAULT_PAYOUT_SORT, per_page=per_page
    )
