"""Forms of the customer pages: the list's filters, and one form per action on a customer. Each
turns what a person typed into a service's arguments, or into errors shown beside the fields."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation

from django import forms

from billing.discounts.display import coupon_duration, coupon_off
from billing.invoicing.models import CreditNoteReason, Invoice
from billing.metering.credit_models import MICROS
from billing.metering.models import Meter
from billing.tiers.models import Feature, Tier
from console.customers.selectors import DEFAULT_SORT, SORTS, STATUS_CHOICES, CustomerFilters
from kernel.money import format_amount, parse_amount

MAX_BIGINT = 2**63 - 1
MAX_CREDITS = Decimal(MAX_BIGINT // MICROS)
SORT_LABELS = {
    "-created": "Newest first", "created": "Oldest first", "-mrr": "MRR, highest first", "mrr": "MRR, lowest first",
    "-usage": "Usage, most first", "usage": "Usage, least first", "tier": "Tier, lowest first",
    "-tier": "Tier, highest first", "status": "Status (A–Z)", "-status": "Status (Z–A)",
}  # fmt: skip
SORT_CHOICES = [(f"{sign}{key}", SORT_LABELS[f"{sign}{key}"]) for key in SORTS for sign in ("-", "")]


class CustomerFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    tier = forms.ChoiceField(required=False, label="Tier")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *STATUS_CHOICES], label="Status")
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, label="Sort by")
    meter = forms.ChoiceField(required=False, label="Usage of")

    def __init__(self, *args, tiers: list[Tier], meters: list[Meter], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [("", "Any tier"), *((t.code, t.name) for t in tiers)]
        self.fields["meter"].choices = [(m.code, m.name) for m in meters]
        self.meters = {m.code: m for m in meters}

    def filters(self) -> CustomerFilters:
        """The valid filters; a field that does not validate (a hostile query string) is ignored
        and reported on the form, the others still apply."""
        first_meter = next(iter(self.meters.values()), None)
        if not self.is_bound:
            return CustomerFilters(meter=first_meter)
        self.is_valid()
        data = self.cleaned_data
        return CustomerFilters(
            search=data.get("q") or "",
            tier=data.get("tier") or "",
            status=data.get("status") or "",
            sort=data.get("sort") or DEFAULT_SORT,
            meter=self.meters.get(data.get("meter") or "", first_meter),
        )


class TierForm(forms.Form):
    tier = forms.ChoiceField(label="Tier")

    def __init__(self, *args, tiers: list[Tier], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [(t.code, t.name) for t in tiers]
        self.tiers = {t.code: t for t in tiers}

    def clean_tier(self) -> Tier:
        return self.tiers[self.cleaned_data["tier"]]


class CancelForm(forms.Form):
    when = forms.ChoiceField(
        choices=[("period_end", "At the end of the period"), ("now", "Now")],
        initial="period_end",
        label="When",
    )


class RefundForm(forms.Form):
    """A credit note on one of the customer's invoices, refunded through the provider that
    collected it when `refund` is ticked (the amount in the invoice's currency, major units)."""

    invoice = forms.TypedChoiceField(coerce=int, label="Invoice")
    amount = forms.CharField(max_length=40, label="Amount")
    reason = forms.ChoiceField(
        choices=CreditNoteReason.choices, initial=CreditNoteReason.OTHER, required=False
    )
    memo = forms.CharField(max_length=500, required=False, label="Note (optional)")
    refund = forms.BooleanField(required=False, initial=True, label="Refund the money through the provider")

    def __init__(self, *args, invoices: list[Invoice], **kwargs):
        super().__init__(*args, **kwargs)
        self.invoices = {invoice.pk: invoice for invoice in invoices}
        # amount and status first: a long invoice number is what a narrow select cuts off
        self.fields["invoice"].choices = [
            (i.pk, f"{format_amount(i.total, i.currency)} {i.get_status_display().lower()} · {i.number}")
            for i in invoices
        ]

    def clean(self):
        data = super().clean()
        invoice = self.invoices.get(data.get("invoice"))
        text = data.get("amount")
        if invoice is None or text is None:
            return data
        try:
            amount = parse_amount(text, invoice.currency)
        except ValueError as exc:
            self.add_error("amount", str(exc))
            return data
        if not 0 < amount <= MAX_BIGINT:
            self.add_error("amount", f"Enter an amount above {format_amount(0, invoice.currency)}.")
            return data
        data["invoice"], data["amount"] = invoice, amount
        data["reason"] = data.get("reason") or CreditNoteReason.OTHER
        return data


class CreditsForm(forms.Form):
    """Credits to add (or, negative, to take back), with the reason the ledger keeps. `reference`
    is drawn when the form is shown: submitting the same form twice adjusts once."""

    amount = forms.CharField(max_length=40, label="Credits", help_text="Negative to take credits back.")
    reason = forms.CharField(max_length=500, label="Reason")
    reference = forms.CharField(max_length=64, widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {"reference": f"console:{uuid.uuid4().hex}"})
        super().__init__(*args, **kwargs)

    def clean_amount(self) -> int:
        text = self.cleaned_data["amount"].strip().replace(",", "")
        try:
            credits = Decimal(text)
        except InvalidOperation:
            raise forms.ValidationError("Enter a number of credits such as 100 or 2.5.") from None
        if not credits.is_finite() or credits == 0:
            raise forms.ValidationError("Enter a number of credits other than 0.")
        if abs(credits) > MAX_CREDITS:
            raise forms.ValidationError(f"At most {MAX_CREDITS:,} credits at a time.")
        micros = credits * MICROS
        if micros != micros.to_integral_value():
            raise forms.ValidationError("Credits have at most 6 decimal places.")
        return int(micros)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why: the reason stays on the credit ledger.")
        return reason

    def clean_reference(self) -> str:
        reference = self.cleaned_data.get("reference") or ""
        return reference if reference.startswith("console:") else ""


class OverrideForm(forms.Form):
    """An exception to the customer's tier for one feature (replaces any earlier one)."""

    ACCESS = [("inherit", "As the tier says"), ("on", "Granted"), ("off", "Denied")]

    feature = forms.ChoiceField(label="Feature")
    access = forms.ChoiceField(choices=ACCESS, initial="inherit", label="Access")
    limit = forms.IntegerField(
        required=False, min_value=0, max_value=MAX_BIGINT, label="Limit (blank: the tier's)"
    )
    unlimited = forms.BooleanField(required=False, label="Unlimited")
    note = forms.CharField(required=False, max_length=200, label="Note")

    def __init__(self, *args, features: list[Feature], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["feature"].choices = [(f.code, f.name) for f in features]

    def clean(self):
        data = super().clean()
        if data.get("unlimited") and data.get("limit") is not None:
            self.add_error("limit", "Leave the limit blank for an unlimited override.")
        if data.get("access") == "inherit" and data.get("limit") is None and not data.get("unlimited"):
            self.add_error("access", "Change something: grant or deny the feature, or set a limit.")
        return data

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "feature": data["feature"],
            "enabled": {"on": True, "off": False}.get(data["access"]),
            "limit_value": data.get("limit"),
            "unlimited": bool(data.get("unlimited")),
            "note": data.get("note") or "",
        }


class OverrideRemoveForm(forms.Form):
    feature = forms.CharField(max_length=64)


class DiscountForm(forms.Form):
    """A coupon to give the customer (it replaces the discount the customer has)."""

    coupon = forms.ChoiceField(label="Coupon")

    def __init__(self, *args, coupons: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["coupon"].choices = [("", "Choose a coupon")] + [
            (c.code, f"{c.code}: {coupon_off(c)} off, {coupon_duration(c)}") for c in coupons
        ]
