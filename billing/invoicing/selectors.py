"""Reads of the billing engine: a catalog price as rating terms, quotes, invoices."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet

from billing.invoicing.exceptions import CreditNoteNotFound, InvoiceNotFound, InvoicingError, RatingError
from billing.invoicing.models import CreditNote, Invoice
from billing.invoicing.rating import PriceTerms, Rated, TierRow, quantity_of, rate
from billing.memberships.models import Customer
from billing.tiers.models import Price

MAX_QUOTE_QUANTITY = Decimal(10) ** 15


class PriceNotFound(InvoicingError):
    code = "unknown_price"
    status_code = 404


def price_terms(price: Price) -> PriceTerms:
    """The rating terms of a catalog price (`unit_amount_decimal` replaces `unit_amount` when set)."""

    def unit(row_amount, row_decimal) -> Decimal:
        return Decimal(str(row_decimal)) if row_decimal is not None else Decimal(row_amount or 0)

    return PriceTerms(
        model=price.model,
        currency=price.currency,
        unit_amount=unit(price.unit_amount, price.unit_amount_decimal),
        tiers=tuple(
            TierRow(
                up_to=row.get("up_to"),
                unit_amount=unit(row.get("unit_amount"), row.get("unit_amount_decimal")),
                flat_amount=int(row.get("flat_amount") or 0),
            )
            for row in price.tiers or ()
        ),
        package_size=price.package_size,
        package_rounding=price.package_rounding,
    )


def price_quote(*, code: str, quantity) -> tuple[Price, Rated]:
    """What `quantity` units of the active price `code` cost (the pricing calculator)."""
    q = quantity_of(quantity)
    if q > MAX_QUOTE_QUANTITY:
        raise RatingError("quantity must be at most 10^15.", code="invalid_quantity")
    price = Price.objects.filter(code=code, active=True).exclude(code="").first() if code else None
    if price is None:
        raise PriceNotFound(f"No active price '{code}'.", details={"price": code})
    return price, rate(price_terms(price), q)


def invoice_list(*, customer: Customer) -> QuerySet[Invoice]:
    """A customer's invoices, newest first (drafts included: the integrator may show them)."""
    return (
        Invoice.objects.filter(customer=customer)
        .select_related("customer")
        .prefetch_related("lines", "credit_notes", "discounts", "taxes")
    )


def invoice_get(*, invoice_id) -> Invoice:
    try:
        invoice_id = int(invoice_id)
    except (TypeError, ValueError):
        invoice_id = None
    invoice = (
        Invoice.objects.filter(pk=invoice_id)
        .select_related("customer")
        .prefetch_related("lines", "credit_notes", "discounts", "taxes")
        .first()
        if invoice_id is not None and 0 < invoice_id < 2**63
        else None
    )
    if invoice is None:
        raise InvoiceNotFound("No such invoice.", details={"id": invoice_id})
    return invoice


def _pk(value) -> int | None:
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if 0 < value < 2**63 else None


def credit_note_list(*, invoice: Invoice) -> QuerySet[CreditNote]:
    """An invoice's credit notes, newest first."""
    return _credit_notes().filter(invoice=invoice)


def credit_note_get(*, credit_note_id) -> CreditNote:
    pk = _pk(credit_note_id)
    note = _credit_notes().filter(pk=pk).first() if pk is not None else None
    if note is None:
        raise CreditNoteNotFound("No such credit note.", details={"id": pk})
    return note


def _credit_notes() -> QuerySet[CreditNote]:
    return CreditNote.objects.select_related("invoice__customer").prefetch_related("lines")


def charge_tax_share(*, provider: str, invoice_ref: str, amount: int) -> int:
    """The part of a charge of `amount` that is tax: its invoice's tax in proportion to what the
    charge paid of the invoice's total (rounded half up, never more than the charge). 0 when the
    charge names no invoice, the invoice is not here (yet), or it has no tax."""
    from billing.invoicing.payments import _invoice_of_ref

    if not invoice_ref or amount <= 0:
        return 0
    invoice = _invoice_of_ref(provider=provider, ref=invoice_ref)
    if invoice is None or invoice.tax <= 0 or invoice.total <= 0:
        return 0
    return min((invoice.tax * amount * 2 + invoice.total) // (2 * invoice.total), amount)
