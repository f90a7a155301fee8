from kernel.errors import ApplicationError


class InvoicingError(ApplicationError):
    code = "invoicing_error"


class RatingError(InvoicingError):
    """Terms or a quantity that cannot be rated (a negative or non-numeric quantity, a float, a broken
    tiers table, a quantity above a bounded table)."""

    code = "invalid_rating_input"
