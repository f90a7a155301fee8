"""Forms of the invoice pages: the list's filters and the invoice page's credit note."""

from __future__ import annotations

from django import forms

from billing.invoicing.models import CreditNoteReason, Invoice, InvoiceStatus
from billing.invoicing.pages.selectors import InvoiceFilters
from kernel.money import format_amount, parse_amount

MAX_AMOUNT = 2**63 - 1


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


class CreditNoteForm(forms.Form):
    """A credit note for an amount typed in the invoice's currency (major units: "12.50")."""

    amount = forms.CharField(max_length=40, label="Amount")
    reason = forms.ChoiceField(
        choices=CreditNoteReason.choices, initial=CreditNoteReason.OTHER, required=False
    )
    memo = forms.CharField(max_length=500, required=False, label="Note (optional)")
    refund = forms.BooleanField(
        required=False, label="Refund it through the provider that collected the payment"
    )

    def __init__(self, *args, invoice: Invoice, **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice = invoice

    def clean_amount(self) -> int:
        currency = self.invoice.currency
        try:
            amount = parse_amount(self.cleaned_data["amount"], currency)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        if not 0 < amount <= MAX_AMOUNT:
            raise forms.ValidationError(f"Enter an amount above {format_amount(0, currency)}.")
        return amount

    def clean_reason(self) -> str:
        return self.cleaned_data.get("reason") or CreditNoteReason.OTHER
