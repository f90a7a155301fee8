"""Invoice pages. Customers: `/account/billing/` (their invoices with PDFs, the upcoming invoice).
Staff: `/invoices/` (filters, figures per currency, sortable columns, pages of 25) and `/invoices/<id>/` (lines, totals,
activity; void and mark uncollectible for the roles that change billing; the PDF)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required
from accounts.roles import STAFF_ROLES, Role
from billing.discounts.display import coupon_in_words
from billing.invoicing.credit_notes import CREDITABLE, credit_note_create
from billing.invoicing.exceptions import InvoiceNotFound, InvoiceStateError
from billing.invoicing.models import CollectedBy, CreditNoteStatus, InvoiceStatus
from billing.invoicing.pages.display import (
    activity,
    amount_rows,
    credit_error_text,
    invoice_table,
    upcoming_rows,
)
from billing.invoicing.pages.forms import CreditNoteForm, InvoiceFilterForm
from billing.invoicing.pages.selectors import (
    customer_invoice,
    customer_invoices,
    invoice_payment_attempts,
    invoice_search,
    invoice_status_counts,
    invoice_totals_by_currency,
)
from billing.invoicing.pdf import invoice_pdf_response
from billing.invoicing.selectors import invoice_get
from billing.invoicing.services import invoice_mark_uncollectible, invoice_void
from billing.invoicing.upcoming import NoUpcomingInvoice, invoice_upcoming
from billing.memberships.models import PaymentKind
from billing.memberships.selectors import customer_discount
from billing.memberships.services import customer_for_user
from kernel.errors import ApplicationError
from kernel.money import format_amount

# who may void or give up on an invoice ("finance: change billing"; support only looks)
BILLING_ROLES = (Role.OWNER, Role.ADMIN, Role.FINANCE)
PAGE_SIZE = 25
MAX_ID = 2**63 - 1


def _paged(request, queryset, size: int = PAGE_SIZE):
    return Paginator(queryset, size).get_page(request.GET.get("page"))


# ---- the customer's billing page ---------------------------------------------------------------


@require_GET
@login_required
def customer_billing(request):
    customer = customer_for_user(user=request.user)
    try:
        upcoming = invoice_upcoming(customer=customer)
    except NoUpcomingInvoice:
        upcoming = None
    return render(
        request,
        "billing/invoices/customer_billing.html",
        {
            "customer": customer,
            "discount": _discount_in_words(customer),
            "invoices": _paged(request, customer_invoices(customer=customer), size=20),
            "upcoming": upcoming,
            "upcoming_totals": upcoming_rows(upcoming) if upcoming is not None else [],
        },
    )


def _discount_in_words(customer):
    """The customer's live discount with its coupon's terms in words (what their next invoices take off)."""
    discount = customer_discount(customer=customer)
    if discount is not None:
        coupon_in_words(discount.coupon)
    return discount


@require_GET
@login_required
def customer_invoice_pdf(request, invoice_id: int):
    customer = customer_for_user(user=request.user)
    invoice = customer_invoice(customer=customer, invoice_id=invoice_id) if invoice_id <= MAX_ID else None
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice_pdf_response(invoice=invoice, tenant=connection.tenant)


# ---- staff -------------------------------------------------------------------------------------


@require_GET
@role_required(*STAFF_ROLES)
def invoice_list(request):
    form = InvoiceFilterForm(request.GET or None)
    filters = form.filters()
    invoices = invoice_search(filters=filters)
    query = request.GET.copy()
    query.pop("page", None)
    tabs = []
    counts = invoice_status_counts(filters=filters)
    for value, label in [("", "All"), *InvoiceStatus.choices]:
        tab_query = query.copy()
        tab_query["status"] = value
        tabs.append({"value": value, "label": label, "count": counts[value], "query": tab_query.urlencode()})
    return render(
        request,
        "billing/invoices/staff_list.html",
        {
            "form": form,
            "filters": filters,
            "filtered": any((filters.search, filters.issued_from, filters.issued_to)),
            "tabs": tabs,
            "table": invoice_table(request, invoices=invoices, per_page=PAGE_SIZE),
            "totals": invoice_totals_by_currency(invoices=invoices),
        },
    )


def _staff_invoice(invoice_id: int):
    try:
        return invoice_get(invoice_id=invoice_id)
    except InvoiceNotFound:
        raise Http404("No such invoice.") from None


def _detail(request, invoice, *, credit_form: CreditNoteForm | None = None, status: int = 200):
    payments = invoice_payment_attempts(invoice=invoice)
    notes = sorted(invoice.credit_notes.all(), key=lambda note: note.pk)
    user = request.user
    may_change = user.is_superuser or user.role in BILLING_ROLES
    paid = invoice.status == InvoiceStatus.PAID
    by_provider = invoice.collected_by == CollectedBy.PROVIDER
    # what a new credit note may take at most (the service checks it again under the invoice's lock)
    returned = sum(note.refund_amount + note.credit_amount for note in notes)
    owed = invoice.total - invoice.amount_paid - invoice.amount_credited  # due, uncollectible ones too
    left = invoice.amount_paid - returned if paid else owed
    creditable = max(min(left, invoice.total - invoice.amount_credited), 0)
    charges = [
        link.payment for link in payments if link.payment.kind == PaymentKind.CHARGE and link.amount_applied
    ]
    return render(
        request,
        "billing/invoices/staff_detail.html",
        {
            "invoice": invoice,
            "lines": list(invoice.lines.all()),
            "payments": payments,
            "credit_notes": notes,
            "activity": activity(invoice, payments, notes),
            "amounts": amount_rows(invoice),
            "may_void": may_change
            and not by_provider
            and invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
            and not invoice.amount_paid,
            "may_mark_uncollectible": may_change and not by_provider and invoice.status == InvoiceStatus.OPEN,
            "may_change": may_change,
            "may_credit": may_change and invoice.status in CREDITABLE and creditable > 0,
            "creditable": creditable,
            "refund_provider": charges[-1].provider if paid and charges else "",
            "credit_form": credit_form or CreditNoteForm(invoice=invoice),
            "by_provider": by_provider,
        },
        status=status,
    )


@require_GET
@role_required(*STAFF_ROLES)
def invoice_detail(request, invoice_id: int):
    return _detail(request, _staff_invoice(invoice_id))


@require_GET
@role_required(*STAFF_ROLES)
def invoice_pdf(request, invoice_id: int):
    return invoice_pdf_response(invoice=_staff_invoice(invoice_id), tenant=connection.tenant)


ACTIONS = {
    "void": (invoice_void, InvoiceStatus.VOID, "is now void: it is no longer owed"),
    "mark-uncollectible": (
        invoice_mark_uncollectible,
        InvoiceStatus.UNCOLLECTIBLE,
        "is now uncollectible: nothing more is collected (a late payment still settles it)",
    ),
}


@require_POST
@role_required(*BILLING_ROLES)
def invoice_action(request, invoice_id: int, action: str):
    if action not in ACTIONS:
        raise Http404("No such action.")
    service, status, outcome = ACTIONS[action]
    invoice = _staff_invoice(invoice_id)
    if invoice.collected_by == CollectedBy.PROVIDER:
        # the provider runs this invoice's collection: changed here only, it would go on collecting
        messages.error(
            request,
            f"Invoice {invoice} is collected by {invoice.provider}: change it there; its webhook updates "
            "this page.",
        )
        return redirect("staff-invoice", invoice_id=invoice.pk)
    if invoice.status == status:
        messages.info(request, f"Invoice {invoice} was already {invoice.get_status_display().lower()}.")
        return redirect("staff-invoice", invoice_id=invoice.pk)
    try:
        invoice = service(invoice_id=invoice.pk)
    except InvoiceStateError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Invoice {invoice} {outcome}.")
    return redirect("staff-invoice", invoice_id=invoice.pk)


@require_POST
@role_required(*BILLING_ROLES)
def invoice_credit(request, invoice_id: int):
    """Issue a credit note (and refund it through the provider, when asked) from the invoice page."""
    invoice = _staff_invoice(invoice_id)
    form = CreditNoteForm(request.POST, invoice=invoice)
    if not form.is_valid():
        messages.error(request, "The credit note was not issued: check the form below.")
        return _detail(request, invoice, credit_form=form, status=400)
    data = form.cleaned_data
    try:
        note = credit_note_create(
            invoice_id=invoice.pk,
            amount=data["amount"],
            reason=data["reason"],
            memo=data["memo"],
            refund=data["refund"],
        )
    except ApplicationError as exc:
        messages.error(request, f"The credit note was not issued. {credit_error_text(exc, invoice.currency)}")
        return redirect("staff-invoice", invoice_id=invoice.pk)
    parts = []
    if note.pre_payment_amount:
        parts.append(f"{format_amount(note.pre_payment_amount, note.currency)} off what is due")
    if note.refund_amount:
        amount = format_amount(note.refund_amount, note.currency)
        if note.status == CreditNoteStatus.REFUNDED:
            parts.append(f"{amount} refunded through {note.provider}")
        else:
            parts.append(f"{amount} to refund through {note.provider}: it did not answer, so it is retried")
    if note.credit_amount:
        parts.append(
            f"{format_amount(note.credit_amount, note.currency)} credited out of band (no money moved)"
        )
    level = messages.warning if note.status == CreditNoteStatus.REFUND_PENDING else messages.success
    level(request, f"Credit note {note.number} issued: {'; '.join(parts)}.")
    return redirect("staff-invoice", invoice_id=invoice.pk)
