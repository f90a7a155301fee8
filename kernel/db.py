"""Set-based writes the ORM does slowly, and reads that must agree with each other.

Django's `bulk_update` builds a CASE WHEN per row and field: for a few hundred rows it spends
several milliseconds building SQL (and PostgreSQL as long again parsing it). `rows_update` sends
one UPDATE joined to unnested arrays, one array per column.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from django.db import connection, transaction


@contextlib.contextmanager
def one_snapshot() -> Iterator[None]:
    """Reads inside see the database as of one moment (a read-only REPEATABLE READ transaction):
    under READ COMMITTED, each statement sees what has committed by then, so two reads a page
    shows side by side can straddle a commit. Inside a transaction already (a test's, a caller's),
    it adds nothing: that transaction's isolation applies."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


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
