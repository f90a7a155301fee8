from kernel.errors import ApplicationError


class InvoicingError(ApplicationError):
    code = "invoicing_error"


class RatingError(InvoicingError):
    """Terms or a quantity that cannot be rated (a negative or non-numeric quantity, a float, a broken
    tiers table, a quantity above a bounded table)."""

    code = "invalid_rating_input"


class InvoiceStateError(InvoicingError):
    """The invoice's status does not allow this (paying a void invoice, voiding a paid one)."""

    code = "invoice_state"
    status_code = 409


class InvoiceNotFound(InvoicingError):
    code = "unknown_invoice"
    status_code = 404
