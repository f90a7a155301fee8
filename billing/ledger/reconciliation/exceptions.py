from billing.ledger.exceptions import LedgerError


class RunNotFound(LedgerError):
    code = "unknown_reconciliation_run"
    status_code = 404


class ReconciliationQueryInvalid(LedgerError):
    """A filter naming no status or kind there is."""

    code = "invalid_reconciliation_query"
