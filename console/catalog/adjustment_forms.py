"""Forms of the coupons and tax rates pages. Each turns what a person typed into the service's terms
(billing/discounts/services.py `coupon_create`, billing/invoicing/taxes.py `tax_rate_create`, the
services the API calls) and nothing more: whether the terms are allowed is the service's to say,
and its error comes back beside the field it names (`form_error_from`)."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from billing.discounts.models import CouponDuration
from billing.tiers.models import Tier
from console.catalog.forms import _minor
from kernel.errors import ApplicationError

PERCENT, AMOUNT = "percent", "amount"
DURATIONS = [
    (CouponDuration.ONCE, "Once"),
    (CouponDuration.REPEATING, "Repeating"),
    (CouponDuration.FOREVER, "Forever"),
]


class CouponForm(forms.Form):
    code = forms.CharField(
        max_length=64, help_text="What customers type: letters, digits, - and _ (stored in upper case)."
    )
    name = forms.CharField(
        required=False, max_length=200, help_text="Shown on invoices; the code when blank."
    )
    kind = forms.ChoiceField(
        label="Type", choices=[(PERCENT, "Percentage off"), (AMOUNT, "Fixed amount off")], initial=PERCENT
    )
    percent_off = forms.DecimalField(required=False, label="Percent off", help_text="Above 0, at most 100.")
    amount_off = forms.CharField(
        required=False, max_length=40, label="Amount off", help_text="In major units (5.00)."
    )
    currency = forms.CharField(
        required=False, max_length=3, label="Currency", help_text="With an amount: usd."
    )
    duration = forms.ChoiceField(
        choices=DURATIONS,
        initial=CouponDuration.ONCE,
        help_text="Once: one invoice. Repeating: the number beside. Forever: every invoice.",
    )
    duration_in_periods = forms.IntegerField(
        required=False, label="Number of invoices", help_text="For a repeating coupon."
    )
    max_redemptions = forms.IntegerField(
        required=False, label="Redemption limit", help_text="Blank: no limit."
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Redeemable until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Blank: no expiry. Customers who hold it keep it after.",
    )
    tiers = forms.MultipleChoiceField(
        required=False,
        label="Only for these tiers",
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every tier.",
    )

    def __init__(self, *args, tiers: list[Tier], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tiers"].choices = [(t.code, t.name) for t in tiers]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == PERCENT:
            if data.get("percent_off") is None and "percent_off" not in self.errors:
                self.add_error("percent_off", "Enter the percent off, such as 20.")
        elif kind == AMOUNT:
            currency = (data.get("currency") or "").strip()
            text = (data.get("amount_off") or "").strip()
            if not text:
                self.add_error("amount_off", "Enter the amount off, such as 5.00.")
            elif "currency" in self.errors:
                pass
            elif not currency:
                self.add_error("currency", "An amount off needs its currency, such as usd.")
            else:
                try:
                    minor = _minor(text, currency)
                except ValueError as exc:
                    self.add_error("amount_off", str(exc))
                else:
                    if isinstance(minor, str):
                        self.add_error("amount_off", f"{currency.upper()} has no smaller unit than that.")
                    else:
                        data["amount_minor"] = minor
        expires = data.get("expires_at")
        if expires is not None and expires <= timezone.now():
            self.add_error("expires_at", "Choose a time in the future (or leave it blank).")
        return data

    def terms(self) -> dict:
        """The keyword arguments of `coupon_create`."""
        data = self.cleaned_data
        percent = data.get("kind") == PERCENT
        return {
            "code": data["code"],
            "name": data.get("name") or "",
            "percent_off": data.get("percent_off") if percent else None,
            "amount_off": None if percent else data.get("amount_minor"),
            "currency": "" if percent else (data.get("currency") or "").strip(),
            "duration": data["duration"],
            "duration_in_periods": data.get("duration_in_periods")
            if data["duration"] == CouponDuration.REPEATING
            else None,
            "max_redemptions": data.get("max_redemptions"),
            "expires_at": data.get("expires_at"),
            "tier_codes": data.get("tiers") or [],
        }


class TaxRateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text='Shown on invoices, such as "VAT".')
    percent = forms.DecimalField(label="Percentage", help_text="Above 0, at most 100 (19 or 8.875).")
    inclusive = forms.BooleanField(
        required=False,
        label="Inclusive (prices already include it: carved out, not added)",
    )
    country = forms.CharField(
        required=False,
        max_length=2,
        label="Country",
        help_text="Two letters (DE): charged to customers of that country. Blank: every customer.",
    )

    def terms(self) -> dict:
        """The keyword arguments of `tax_rate_create`."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "percent": data["percent"],
            "inclusive": bool(data.get("inclusive")),
            "country": (data.get("country") or "").strip(),
        }


def form_error_from(form: forms.Form, error: ApplicationError) -> None:
    """The service's refusal beside each field it names (details["errors"], else details["field"]),
    else above the form. The service's messages name the API's field in brackets ("The percent off
    (percent_off) is …"); beside the field, the form's label already says which."""
    details = error.details or {}
    problems = details.get("errors") or {details.get("field"): error.message}
    for field, message in problems.items():  # the form's fields are named after the service's terms
        if field in form.fields:  # beside its field, the API's name for it in brackets says nothing
            form.add_error(field, message.replace(f" ({field})", ""))
        else:
            form.add_error(None, message)
