"""Reads behind the invoice pages: the staff's filtered list with its figures, a customer's invoices."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from billing.invoicing.models import AMOUNT_DUE, ISSUED_AT, Invoice, InvoicePayment, InvoiceStatus
from billing.memberships.models import Customer, customer_label

# what is still owed, in the database (Invoice.amount_due, for sums)
DUE = Greatest(F("total") - F("amount_paid") - F("amount_credited"), Value(0))
INVOICED = ~Q(status__in=(InvoiceStatus.DRAFT, InvoiceStatus.VOID))
# what the list shows as the customer: their name, else their email, else their id (as they are now)
CUSTOMER_LABEL = customer_label("customer__")
# the list's sort keys (?sort=key, -key for descending) and what the database orders by; the
# invoice's own columns have an index on (column, id) each (invoicing 0009); the customer's name has
# one on customers (memberships 0013): the database walks customers in that order, then each one's
# invoices, and sorts only the invoices of customers of the same name by id
INVOICE_SORTS = {
    "number": F("number"),
    "issued": ISSUED_AT,
    "customer": CUSTOMER_LABEL,
    "total": F("total"),
    "due": AMOUNT_DUE,
    "status": F("status"),
}
DEFAULT_INVOICE_SORT = "-issued"


@dataclass(frozen=True)
class InvoiceFilters:
    status: str = ""
    search: str = ""
    issued_from: dt.date | None = None
    issued_to: dt.date | None = None


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def invoice_search(*, filters: InvoiceFilters, with_status: bool = True) -> QuerySet[Invoice]:
    """Invoices matching the filters, newest first (the list orders them by INVOICE_SORTS). `search` matches the number, the customer's id,
    name or email (as they are now or as billed); the dates bound the day an invoice was issued
    (finalized; created, for drafts), both days included."""
    invoices = Invoice.objects.annotate(issued_at=ISSUED_AT)
    if with_status and filters.status:
        invoices = invoices.filter(status=filters.status)
    if term := filters.search.strip():
        invoices = invoices.filter(
            Q(number__icontains=term)
            | Q(customer__external_id__icontains=term)
            | Q(customer__name__icontains=term)
            | Q(customer__email__icontains=term)
            | Q(customer_details__name__icontains=term)
            | Q(customer_details__email__icontains=term)
        )
    if filters.issued_from:
        invoices = invoices.filter(issued_at__gte=_day_start(filters.issued_from))
    if filters.issued_to:
        invoices = invoices.filter(issued_at__lt=_day_start(filters.issued_to + dt.timedelta(days=1)))
    return invoices.select_related("customer").order_by("-id")


def invoice_status_counts(*, filters: InvoiceFilters) -> dict[str, int]:
    """How many invoices of each status match the other filters (the status tabs), with "" for all."""
    rows = invoice_search(filters=filters, with_status=False).order_by().values("status")
    counts = {row["status"]: row["n"] for row in rows.annotate(n=Count("id"))}
    return {"": sum(counts.values())} | {status: counts.get(status, 0) for status in InvoiceStatus.values}


def invoice_totals_by_currency(*, invoices: QuerySet[Invoice]) -> list[dict]:
    """Per currency: how many invoices; what was invoiced (issued and not void), paid, and is still due
    (on open invoices)."""
    return list(
        invoices.order_by()
        .values("currency")
        .annotate(
            count=Count("id"),
            invoiced_sum=Coalesce(Sum("total", filter=INVOICED), 0),
            paid_sum=Sum("amount_paid"),
            due_sum=Coalesce(Sum(DUE, filter=Q(status=InvoiceStatus.OPEN)), 0),
        )
        .order_by("currency")
    )


def customer_invoices(*, customer: Customer) -> QuerySet[Invoice]:
    """What a customer sees of their invoices: every finalized one (drafts may still change), newest first."""
    return Invoice.objects.filter(customer=customer).exclude(status=InvoiceStatus.DRAFT).order_by("-id")


def customer_invoice(*, customer: Customer, invoice_id: int) -> Invoice | None:
    """One of the customer's finalized invoices with its lines, or None (someone else's, a draft)."""
    return (
        customer_invoices(customer=customer)
        .filter(pk=invoice_id)
        .select_related("customer")
        .prefetch_related("lines")
        .first()
    )


def invoice_payment_attempts(*, invoice: Invoice) -> list[InvoicePayment]:
    """Every collection attempt linked to the invoice (failed charges too), oldest first."""
    return list(invoice.payments.select_related("payment").order_by("payment__occurred_at", "id"))
