"""Invoice pages. Customers: `/account/billing/` (their invoices with PDFs, the upcoming invoice).
Staff: `/invoices/` (filters, figures per currency, pages of 25) and `/invoices/<id>/` (lines, totals,
activity; void and mark uncollectible for the roles that change billing; the PDF)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required
from accounts.roles import STAFF_ROLES, Role
from billing.invoicing.exceptions import InvoiceNotFound, InvoiceStateError
from billing.invoicing.models import CollectedBy, InvoiceStatus
from billing.invoicing.pages.selectors import (
    InvoiceFilters,
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
from billing.memberships.services import customer_for_user
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
            "invoices": _paged(request, customer_invoices(customer=customer), size=20),
            "upcoming": upcoming,
        },
    )


@require_GET
@login_required
def customer_invoice_pdf(request, invoice_id: int):
    customer = customer_for_user(user=request.user)
    invoice = customer_invoice(customer=customer, invoice_id=invoice_id) if invoice_id <= MAX_ID else None
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice_pdf_response(invoice=invoice, tenant=connection.tenant)


# ---- staff -------------------------------------------------------------------------------------


class InvoiceFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "All"), *InvoiceStatus.choices], required=False)
    q = forms.CharField(required=False, max_length=200, label="Customer or number")
    issued_from = forms.DateField(required=False, label="Issued from")
    issued_to = forms.DateField(required=False, label="Issued to")

    def clean(self):
        data = super().clean()
        start, end = data.get("issued_from"), data.get("issued_to")
        if start and end and start > end:
            self.add_error("issued_to", "The end date is before the start date.")
        return data

    def filters(self) -> InvoiceFilters:
        """The valid filters (a bad date is reported on the form and ignored, the rest still apply)."""
        if not self.is_bound:
            return InvoiceFilters()
        self.is_valid()  # fields with errors are left out of cleaned_data
        data = self.cleaned_data
        return InvoiceFilters(
            status=data.get("status") or "",
            search=data.get("q") or "",
            issued_from=data.get("issued_from"),
            issued_to=data.get("issued_to"),
        )


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
            "page": _paged(request, invoices),
            "totals": invoice_totals_by_currency(invoices=invoices),
            "query": query.urlencode(),
        },
    )


def _staff_invoice(invoice_id: int):
    try:
        return invoice_get(invoice_id=invoice_id)
    except InvoiceNotFound:
        raise Http404("No such invoice.") from None


def _activity(invoice, payments) -> list[tuple]:
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
    if invoice.paid_at:
        events.append((invoice.paid_at, "Paid in full"))
    if invoice.voided_at:
        events.append((invoice.voided_at, "Voided"))
    return sorted(events, key=lambda event: event[0], reverse=True)


@require_GET
@role_required(*STAFF_ROLES)
def invoice_detail(request, invoice_id: int):
    invoice = _staff_invoice(invoice_id)
    payments = invoice_payment_attempts(invoice=invoice)
    user = request.user
    may_change = user.is_superuser or user.role in BILLING_ROLES
    return render(
        request,
        "billing/invoices/staff_detail.html",
        {
            "invoice": invoice,
            "lines": list(invoice.lines.all()),
            "payments": payments,
            "activity": _activity(invoice, payments),
            "may_void": may_change
            and invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
            and not invoice.amount_paid,
            "may_mark_uncollectible": may_change and invoice.status == InvoiceStatus.OPEN,
            "may_change": may_change,
            "by_provider": invoice.collected_by == CollectedBy.PROVIDER,
        },
    )


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
