from kernel.errors import ApplicationError


class ConsoleError(ApplicationError):
    code = "console_error"


class ReportRangeInvalid(ConsoleError):
    """A report's date range that cannot be read: a date that is not YYYY-MM-DD, `to` before
    `from`, a range longer than MAX_RANGE_DAYS."""

    code = "invalid_report_range"
