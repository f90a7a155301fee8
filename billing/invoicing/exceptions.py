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


class CreditNoteInvalid(InvoicingError):
    """A credit note the invoice cannot take: above its total, a refund above what was paid and not
    yet returned, a line of another invoice, nothing to refund through."""

    code = "invalid_credit_note"


class CreditNoteNotFound(InvoicingError):
    code = "unknown_credit_note"
    status_code = 404


class RefundRefused(InvoicingError):
    """The provider that collected refused the refund (details name its code): nothing was issued."""

    code = "refund_refused"
    status_code = 409
