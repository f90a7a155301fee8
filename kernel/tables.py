"""Server-side tables for templates/_table.html: sortable headers through the query string
(`?sort=-created_at`), pagination in the database (`?page=2`), cells formatted by column kind.

    table = table_from_request(request, rows=Invoice.objects.all(), columns=[
        Column("number", "Number", link="url"),
        Column("status", "Status", kind="badge"),
        Column("total", "Total", kind="money", sort="total"),
        Column("created_at", "Created", kind="ago", sort="created_at"),
    ], default_sort="-created_at")
    {% include "_table.html" with table=table empty_title="No invoices yet" %}

An unknown sort or page falls back to the default / nearest page: bad input never makes a 500.
`sort` is an ORM path or an expression (`Coalesce("finalized_at", "created_at")`); the database
orders by it, then by the primary key in the same direction, so pages never repeat or skip a row
(an index on (expression, id) serves both directions). Numbers and dates sort highest/newest first
on the first click, text A–Z; `table.sort_choices` offers the same orders as a "Sort by" select
for phones, where the headers fold away. A page whose rows need their own markup passes
`row_template` to _table.html (one `<tr>` for `row`); the columns still give the headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Paginator
from django.db.models import F, QuerySet
from django.utils.html import format_html

KINDS = {"text", "number", "money", "quantity", "units", "date", "datetime", "ago", "badge", "code"}
DATES = {"date", "datetime", "ago"}


@dataclass(frozen=True)
class Column:
    """key: attribute/dict key (dotted for related: "customer.email"); sort: the ORM field to order
    by (None: not sortable); link: the row attribute holding this cell's URL; unit for kind="units";
    currency: the row attribute holding the currency for kind="money"."""

    key: str
    label: str
    kind: str = "text"
    sort: Any = None
    link: str | None = None
    unit: str = ""
    currency: str = "currency"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown column kind {self.kind!r}")

    @property
    def numeric(self) -> bool:
        return self.kind in {"number", "money", "quantity", "units"}

    @property
    def descending_first(self) -> bool:
        """Numbers and dates are read highest / newest first; text A–Z."""
        return self.numeric or self.kind in DATES

    def sort_label(self, *, descending: bool) -> str:
        if self.numeric:
            way = "highest first" if descending else "lowest first"
        elif self.kind in DATES:
            way = "newest first" if descending else "oldest first"
        else:
            way = "Z–A" if descending else "A–Z"
        return f"{self.label}, {way}"


@dataclass
class Table:
    columns: list[Column]
    page: Any  # django.core.paginator.Page
    sort: str
    headers: list[dict] = field(default_factory=list)
    sort_choices: list[dict] = field(default_factory=list)

    @property
    def rows(self):
        return self.page.object_list


def lookup(row, key: str):
    value = row
    for part in key.split("."):
        if value is None:
            return None
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
        if callable(value):
            value = value()
    return value


def table_from_request(
    request, *, rows, columns: list[Column], default_sort: str = "", per_page: int = 25
) -> Table:
    sortable = {column.key: column.sort for column in columns if column.sort is not None}
    wanted = request.GET.get("sort", "") or default_sort
    descending = wanted.startswith("-")
    key = wanted[1:] if descending else wanted
    if key not in sortable:
        wanted, descending, key = default_sort, default_sort.startswith("-"), default_sort.lstrip("-")
    if key in sortable:
        rows = sort_rows(rows, sortable[key], descending=descending, fallback=key)
    page = Paginator(rows, per_page).get_page(request.GET.get("page"))
    headers, choices = [], []
    for column in columns:
        header = {"column": column, "sort": None, "state": None}
        if column.sort is not None:
            current = key == column.key
            header["state"] = ("descending" if descending else "ascending") if current else None
            first_descending = (not descending) if current else column.descending_first
            header["sort"] = f"-{column.key}" if first_descending else column.key
            for way in (column.descending_first, not column.descending_first):
                value = f"-{column.key}" if way else column.key
                selected = current and way == descending
                choices.append(
                    {"value": value, "label": column.sort_label(descending=way), "selected": selected}
                )
        headers.append(header)
    sort = (("-" if descending else "") + key) if key in sortable else wanted
    return Table(columns=columns, page=page, sort=sort, headers=headers, sort_choices=choices)


def sort_rows(rows, order, *, descending: bool, fallback: str = ""):
    """A queryset ordered by `order` (an ORM path or an expression), then by its primary key in the
    same direction; a list sorted in Python by the row's `order` (or `fallback`) attribute."""
    if isinstance(rows, QuerySet):
        expression = F(order) if isinstance(order, str) else order
        if descending:
            return rows.order_by(expression.desc(), F("pk").desc())
        return rows.order_by(expression.asc(), F("pk").asc())
    name = order if isinstance(order, str) else fallback
    return sorted(rows, key=lambda row: _sort_key(lookup(row, name)), reverse=descending)


def _sort_key(value):
    return (value is None, value if value is not None else 0)


def cell_value(row, column: Column):
    from kernel.templatetags import monetize as f

    value = lookup(row, column.key)
    kind = column.kind
    if kind == "money":
        text = f.money_filter(value, lookup(row, column.currency)) or "–"
    elif kind in {"number", "quantity"}:
        text = f.quantity(value) if value is not None else "–"
    elif kind == "units":
        text = f.units(value, column.unit)
    elif kind in {"date", "datetime"}:
        text = f.when(value, kind)
    elif kind == "ago":
        text = f.ago(value)
    elif kind == "badge":
        return (
            format_html('<span class="badge tone-{}">{}</span>', f.tone(value), f.status_label(value))
            if value
            else "–"
        )
    elif kind == "code":
        text = format_html("<code>{}</code>", value) if value not in (None, "") else "–"
    else:
        text = value if value not in (None, "") else "–"
    url = lookup(row, column.link) if column.link else None
    return format_html('<a href="{}">{}</a>', url, text) if url else format_html("{}", text)
