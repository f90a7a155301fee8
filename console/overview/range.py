"""The overview's date range: whole UTC days, `start` and `end` inclusive, at most MAX_RANGE_DAYS."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from console.exceptions import ReportRangeInvalid

MAX_RANGE_DAYS = 366
DEFAULT_DAYS = 30
PRESETS = {"7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days", "month": "This month"}
EARLIEST = dt.date(2000, 1, 1)


@dataclass(frozen=True)
class DateRange:
    """Days `start` to `end`, both included, in UTC."""

    start: dt.date
    end: dt.date

    @property
    def since(self) -> dt.datetime:
        """The first instant of the range (inclusive)."""
        return dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC)

    @property
    def until(self) -> dt.datetime:
        """The instant after the range (exclusive): midnight after `end`."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def range_preset(preset: str, *, on: dt.date | None = None) -> DateRange:
    """A named range ending today (`month`: the 1st of this month to today)."""
    on = on or today()
    if preset == "month":
        return DateRange(on.replace(day=1), on)
    days = {"7d": 7, "30d": 30, "90d": 90}.get(preset)
    if days is None:
        raise ReportRangeInvalid(
            f"Unknown range '{preset}': one of {', '.join(PRESETS)}, or from/to dates.",
            details={"field": "range"},
        )
    return DateRange(on - dt.timedelta(days=days - 1), on)


def _date(raw: str | None, field: str) -> dt.date | None:
    if raw is None or raw == "":
        return None
    try:
        value = dt.date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        value = None
    if value is None:
        raise ReportRangeInvalid(f"'{field}' must be a date, YYYY-MM-DD.", details={"field": field})
    if value < EARLIEST or value > dt.date(9998, 12, 31):
        raise ReportRangeInvalid(f"'{field}' is out of range.", details={"field": field})
    return value


def range_parse(*, start: str | None, end: str | None, on: dt.date | None = None) -> DateRange:
    """`from`/`to` as given (YYYY-MM-DD, both included); a missing `to` is today, a missing `from`
    DEFAULT_DAYS before `to`. Refuses `to` before `from` and ranges longer than MAX_RANGE_DAYS."""
    first, last = _date(start, "from"), _date(end, "to")
    last = last or on or today()
    first = first or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise ReportRangeInvalid("'to' must not be before 'from'.", details={"field": "to"})
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ReportRangeInvalid(
            f"A range is at most {MAX_RANGE_DAYS} days.",
            details={"field": "from", "max_days": MAX_RANGE_DAYS},
        )
    return DateRange(first, last)
