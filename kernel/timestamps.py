"""One parser for the RFC 3339 timestamps clients send (event bodies, query parameters).

`datetime.fromisoformat` reads `0001-01-01T00:00:00+14:00` and `9999-12-31T23:59:59-14:00`, but
their UTC conversion falls outside the years datetime can hold and raises OverflowError, which
nobody expects from a parse; here such a value is a TimestampError like any other bad input.
"""

from __future__ import annotations

import datetime as dt


class TimestampError(ValueError):
    """`reason` is one of "invalid", "naive" (no offset) or "out_of_range"."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


def timestamp_parse(value: str) -> dt.datetime:
    """An aware UTC datetime from an RFC 3339 string with an offset; TimestampError otherwise."""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise TimestampError("invalid", f"'{value[:40]}' is not an RFC 3339 timestamp.") from None
    if when.tzinfo is None:
        raise TimestampError("naive", "The timestamp needs a time zone offset (e.g. Z).")
    if when.tzinfo is dt.UTC:
        return when
    try:
        return when.astimezone(dt.UTC)
    except OverflowError:
        raise TimestampError(
            "out_of_range", f"'{value[:40]}' is outside the years 1 to 9999 in UTC."
        ) from None
