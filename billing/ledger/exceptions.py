from kernel.errors import ApplicationError


class LedgerError(ApplicationError):
    code = "ledger_error"


class PostingInvalid(LedgerError):
    """A posting the ledger refuses before touching the database: fewer than two entries, a
    non-integer or zero amount, a bad currency or account code, entries that do not sum to zero
    in each currency."""

    code = "invalid_posting"


class TransactionNotFound(LedgerError):
    code = "unknown_transaction"
    status_code = 404


class LedgerQueryInvalid(LedgerError):
    """A malformed filter: a date that is not RFC 3339 with an offset, `to` not after `from`."""

    code = "invalid_ledger_query"


class ReportQueryInvalid(LedgerError):
    """A malformed report query: a date that is not YYYY-MM-DD, `to` before `from`, a range of too many
    periods, an unknown interval or currency code."""

    code = "invalid_report_query"
