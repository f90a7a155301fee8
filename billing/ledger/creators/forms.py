"""Forms of the creator's pages: a channel tier (new or edited) and a fan's tip. They turn what a
person typed into the services' terms (amounts typed in major units become minor units) and
nothing more: whether those terms are allowed is the services' to say, and their errors come back
to the field they name (`errors_from`)."""

from __future__ import annotations

import re

from django import forms
from django.utils.text import slugify

from kernel.errors import ApplicationError
from kernel.money import exponent, format_amount, parse_amount

CODE_MAX = 20


def _amount(text: str, currency: str) -> int:
    """Major units as minor units, with the message to show when it is not an amount."""
    try:
        amount = parse_amount(text, currency)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None
    if amount <= 0:
        raise forms.ValidationError("Enter an amount above zero.")
    return amount


class TierForm(forms.Form):
    """A channel tier: on creation its code (or one made from the name) and currency; its name,
    benefits and the monthly and yearly prices (in major units) then and later."""

    name = forms.CharField(max_length=200)
    code = forms.CharField(
        required=False,
        max_length=CODE_MAX,
        help_text="Lowercase letters, digits and '-'. Leave blank to make it from the name; fixed once created.",
    )
    description = forms.CharField(
        required=False,
        max_length=2000,
        label="Benefits",
        help_text="One per line: what members get.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    currency = forms.CharField(
        max_length=3, initial="usd", help_text="Three letters (ISO 4217), such as usd, eur or krw."
    )
    monthly = forms.CharField(required=False, max_length=30, label="Monthly price", help_text="e.g. 5.00")
    yearly = forms.CharField(
        required=False, max_length=30, label="Yearly price", help_text="Optional; blank: monthly only."
    )

    # a service error's `details.field` -> the form's field
    FIELDS = {"amount": "monthly", "yearly_amount": "yearly", "interval": "monthly"}

    def __init__(self, *args, tier=None, currency: str = "usd", **kwargs):
        super().__init__(*args, **kwargs)
        self.creating = tier is None
        if self.creating:
            self.fields["monthly"].required = True
            self.initial.setdefault("currency", currency)
            return
        # an edited tier keeps its code and currency; a disabled field shows its initial
        prices = {price.interval: price for price in tier.active_prices}
        currency = next((price.currency for price in tier.active_prices), currency)
        handle = tier.creator.handle
        self.fields["code"].disabled = self.fields["currency"].disabled = True
        self.fields["code"].help_text = "Fixed once created."
        self.fields["currency"].help_text = ""
        self.fields["monthly"].help_text = "A new amount is a new price: members keep the one they joined at."
        self.fields["yearly"].help_text = "Blank: no yearly price."
        self.initial.update(
            name=tier.name,
            code=tier.code.removeprefix(f"{handle}-"),
            description=tier.description,
            currency=currency,
            monthly=_major(prices.get("month")),
            yearly=_major(prices.get("year")),
        )

    def clean_code(self) -> str:
        code = (self.cleaned_data.get("code") or "").strip().lower()
        if not self.creating:
            return code
        if not code:
            code = slugify(self.data.get("name") or "")[:CODE_MAX].strip("-_").replace("_", "-")
            if not code:
                raise forms.ValidationError("Give the tier a code (the name makes none).")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,19}", code):
            raise forms.ValidationError(
                "Use 1-20 lowercase letters, digits or '-', starting with a letter or digit."
            )
        return code

    def clean_currency(self) -> str:
        currency = (self.cleaned_data.get("currency") or "").strip().lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise forms.ValidationError("Enter a three-letter currency code, such as usd.")
        return currency

    def clean(self):
        data = super().clean()
        currency = data.get("currency")
        if currency is None:
            return data
        for field in ("monthly", "yearly"):
            text = (data.get(field) or "").strip()
            if not text:
                data[field] = None
                continue
            try:
                data[field] = _amount(text, currency)
            except forms.ValidationError as error:
                self.add_error(field, error)
        if (
            not self.creating
            and not self.errors
            and data.get("monthly") is None
            and data.get("yearly") is None
        ):
            self.add_error("monthly", "A tier keeps at least one price: enter a monthly or a yearly price.")
        return data

    def errors_from(self, error: ApplicationError) -> None:
        """A service's refusal, shown beside the field it names (else above the form)."""
        field = (error.details or {}).get("field")
        if error.code == "tier_exists":
            field = "code"
        field = self.FIELDS.get(field, field)
        self.add_error(field if field in self.fields else None, error.message)


def _major(price) -> str:
    """A price's amount as the form shows it (major units, no symbol)."""
    if price is None:
        return ""
    places = exponent(price.currency)
    whole, fraction = divmod(price.unit_amount, 10**places)
    return f"{whole}.{fraction:0{places}d}" if places else str(whole)


class TipForm(forms.Form):
    """A tip to the creator, in major units of the channel's currency, within the site's range."""

    amount = forms.CharField(max_length=30, label="Tip amount", help_text="e.g. 5.00")
    item = forms.CharField(required=False, max_length=255, widget=forms.HiddenInput)

    def __init__(self, *args, currency: str, low: int, high: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency, self.low, self.high = currency, low, high
        self.fields["amount"].label = f"Tip amount ({currency.upper()})"
        self.fields[
            "amount"
        ].help_text = f"Between {format_amount(low, currency)} and {format_amount(high, currency)}."

    def clean_amount(self) -> int:
        amount = _amount(self.cleaned_data["amount"], self.currency)
        if not self.low <= amount <= self.high:
            raise forms.ValidationError(
                f"A tip is between {format_amount(self.low, self.currency)} and "
                f"{format_amount(self.high, self.currency)}."
            )
        return amount
