"""Set-based writes the ORM does slowly.

Django's `bulk_update` builds a CASE WHEN per row and field: for a few hundred rows it spends
several milliseconds building SQL (and PostgreSQL as long again parsing it). `rows_update` sends
one UPDATE joined to unnested arrays, one array per column.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection


def rows_update(table: str, columns: dict[str, str], rows: Sequence[Sequence], *, key: str = "id") -> int:
    """UPDATE `table` SET each of `columns` ({name: PostgreSQL type}, in row order after the key)
    from `rows` of (key, *values); rows are written in key order. Returns the rows updated."""
    if not rows:
        return 0
    rows = sorted(rows, key=lambda row: row[0])  # the same lock order for every writer
    names = list(columns)
    arrays = [f"%s::{kind}[]" for kind in ["bigint", *columns.values()]]
    sets = ", ".join(f"{name} = v.{name}" for name in names)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET {sets} FROM unnest({', '.join(arrays)}) AS v({key}, {', '.join(names)}) "
            f"WHERE t.{key} = v.{key}",
            [list(column) for column in zip(*rows, strict=True)],
        )
        return cursor.rowcount
