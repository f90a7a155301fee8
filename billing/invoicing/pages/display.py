"""What the invoice pages show, worked out from the models: the staff list as a templates/_table.html
table, the activity list, the rows of totals (discounts by coupon, taxes by rate), the service's
refusals in the invoice's money."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing.invoicing.models import Invoice
from billing.invoicing.pages.selectors import DEFAULT_INVOICE_SORT, INVOICE_SORTS
from billing.memberships.models import PaymentKind
from billing.metering.credit_models import credits_display
from kernel.decimals import decimal_text, grouped
from kernel.errors import ApplicationError
from kernel.money import format_amount
from kernel.tables import Column, Table, table_from_request


@dataclass(frozen=True)
class AmountRow:
    """One row of a totals table: `minus` rows are taken off (shown −), `strong` ones are sums."""

    label: str
    amount: int
    minus: bool = False
    strong: bool = False
    note: str = ""
    testid: str = ""


def _tax_label(name: str, percent, inclusive: bool) -> str:
    return f"{name} {decimal_text(percent)}%" + (" (included)" if inclusive else "")


def _credits_row(amount: int, used: int) -> AmountRow:
    return AmountRow(
        "Credits applied",
        amount,
        minus=True,
        note=f"{grouped(Decimal(credits_display(used)))} credits on usage",
    )


def amount_rows(invoice: Invoice) -> list[AmountRow]:
    """Subtotal, each coupon's discount, each tax, total, then what was paid, credited and is due."""
    rows = [AmountRow("Subtotal", invoice.subtotal)]
    discounts = list(invoice.discounts.all())
    rows += [
        AmountRow(f"Discount ({d.coupon_code})", d.amount, minus=True, note=d.coupon_name) for d in discounts
    ] or [AmountRow("Discount", invoice.discount, minus=True)]
    if invoice.credits_applied:
        rows.append(_credits_row(invoice.credits_applied, invoice.credits_used))
    taxes = list(invoice.taxes.all())
    rows += [AmountRow(_tax_label(t.name, t.percent, t.inclusive), t.amount) for t in taxes] or [
        AmountRow("Tax", invoice.tax)
    ]
    return rows + [
        AmountRow("Total", invoice.total, strong=True),
        AmountRow("Paid", invoice.amount_paid, minus=True),
        AmountRow("Credited", invoice.amount_credited, minus=True),
        AmountRow("Amount due", invoice.amount_due, strong=True, testid="amount-due"),
    ]


def upcoming_rows(charges) -> list[AmountRow]:
    """The upcoming invoice's subtotal, discounts, taxes and total (PeriodCharges)."""
    rows = [AmountRow("Subtotal", charges.subtotal)]
    adjusted = charges.adjusted
    if adjusted is not None:
        rows += [
            AmountRow(f"Discount ({d.discount.code})", d.amount, minus=True, note=d.discount.name)
            for d in adjusted.discounts
            if d.amount > 0
        ]
        if adjusted.credits_applied:
            rows.append(_credits_row(adjusted.credits_applied, adjusted.credits_used))
        rows += [
            AmountRow(_tax_label(t.rate.name, t.rate.percent, t.rate.inclusive), t.amount)
            for t in adjusted.taxes
        ]
    return rows + [AmountRow("Estimated total", charges.total, strong=True, testid="upcoming-sum")]


def activity(invoice, payments, notes) -> list[tuple]:
    """What happened to the invoice, newest first."""
    events = [(invoice.created_at, "Created as a draft")]
    if invoice.finalized_at:
        events.append((invoice.finalized_at, f"Issued as {invoice.number}"))
    for link in payments:
        payment = link.payment
        amount = format_amount(payment.amount, payment.currency)
        if payment.kind == PaymentKind.FAILED:
            events.append((payment.occurred_at, f"A charge of {amount} failed ({payment.provider})"))
        else:
            events.append(
                (payment.occurred_at, f"{payment.get_kind_display()} of {amount} ({payment.provider})")
            )
    for note in notes:
        events.append(
            (note.created_at, f"Credit note {note.number}: {format_amount(note.amount, note.currency)}")
        )
        if note.refunded_at:
            amount = format_amount(note.refund_amount, note.currency)
            events.append((note.refunded_at, f"{amount} refunded through {note.provider}"))
    if invoice.paid_at:
        events.append((invoice.paid_at, "Paid in full"))
    if invoice.voided_at:
        events.append((invoice.voided_at, "Voided"))
    return sorted(events, key=lambda event: event[0], reverse=True)


def credit_error_text(exc: ApplicationError, currency: str) -> str:
    """The service's refusal in the invoice's money (its messages count minor units)."""
    details = exc.details or {}

    def money(key: str) -> str:
        return format_amount(int(details.get(key) or 0), currency)

    texts = {
        "credit_exceeds_due": lambda: f"At most {money('due')} can be credited: that is what is still due.",
        "credit_exceeds_paid": lambda: (
            f"At most {money('refundable')} can be given back: that is what was paid and not yet "
            "refunded or credited."
        ),
        "credit_exceeds_total": lambda: (
            f"At most {money('creditable')} more can be credited on this invoice."
        ),
        "refund_exceeds_payment": lambda: (
            f"A refund goes back through one payment: at most {money('refundable')} here. Refund less, "
            "or credit the rest out of band (untick refund)."
        ),
        "no_payment_to_refund": lambda: (
            "No payment of this invoice went through a provider, so there is nothing to refund: untick "
            "refund to credit it out of band."
        ),
    }
    text = texts.get(exc.code)
    return text() if text else exc.message


def invoice_table(request, *, invoices, per_page: int = 25) -> Table:
    """The staff list's page of invoices under sortable headers (?sort=, INVOICE_SORTS; anything else
    is newest issued first), sorted and paged by the database."""
    columns = [
        Column("number", "Number", sort=INVOICE_SORTS["number"]),
        Column("customer", "Customer", sort=INVOICE_SORTS["customer"]),
        Column("issued", "Issued", kind="date", sort=INVOICE_SORTS["issued"]),
        Column("status", "Status", kind="badge", sort=INVOICE_SORTS["status"]),
        Column("total", "Total", kind="money", sort=INVOICE_SORTS["total"]),
        Column("due", "Due", kind="money", sort=INVOICE_SORTS["due"]),
    ]
    return table_from_request(
        request, rows=invoices, columns=columns, default_sort=DEFAULT_INVOICE_SORT, per_page=per_page
    )
