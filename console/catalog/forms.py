"""Forms of the catalog editor. Each turns what a person typed into the catalog file's terms (the
import format) and nothing more: whether those terms are allowed is the catalog import's to say
(billing/tiers/services.py); its errors come back to the field they name (`form_errors_from`)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django import forms

from billing.metering.models import Meter
from billing.tiers.exceptions import CatalogError
from billing.tiers.models import Feature, FeatureKind, Interval, PackageRounding, PricingModel
from kernel.decimals import decimal_text
from kernel.money import exponent
from kernel.words import plural

TIER_ROWS = 5  # rows of a graduated/volume price's table in the form (blank rows are left out)
MAX_YAML = 500_000


def _feature_field(feature: Feature) -> forms.Field:
    label = feature.name + (f" ({plural(feature.unit, 2)})" if feature.unit else "")
    if feature.kind == FeatureKind.BOOLEAN:
        return forms.BooleanField(required=False, label=label)
    hint = (
        "e.g. 60/minute; blank: off"
        if feature.kind == FeatureKind.RATE
        else "a number or unlimited; blank: off"
    )
    return forms.CharField(required=False, max_length=40, label=label, help_text=hint)


def _feature_value(kind: str, text):
    """The form's text as the file's value (the import says whether it is allowed)."""
    if kind == FeatureKind.BOOLEAN:
        return bool(text)
    text = (text or "").strip()
    if not text or text.lower() in {"off", "false", "no"}:
        return False
    if re.fullmatch(r"\d{1,19}", text):
        return int(text)
    return text.lower() if text.lower() == "unlimited" else text


def _initial_feature(kind: str, value):
    if kind == FeatureKind.BOOLEAN:
        return bool(value)
    return "" if value is False or value is None else str(value)


class TierForm(forms.Form):
    code = forms.CharField(max_length=64, help_text="Lowercase letters, digits, - and _; fixed once created.")
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    sort = forms.IntegerField(required=False, label="Sort order", min_value=-1_000_000, max_value=1_000_000)
    public = forms.BooleanField(required=False, label="Public (on the pricing page)", initial=True)
    default = forms.BooleanField(required=False, label="Default (the free fallback tier)")
    credits_per_period = forms.DecimalField(
        required=False, label="Credits per period", min_value=0, max_digits=19, decimal_places=6
    )

    def __init__(self, *args, features: list[Feature], creating: bool, entry: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.features = {f.code: f for f in features}
        self.creating = creating
        for feature in features:
            self.fields[f"f_{feature.code}"] = _feature_field(feature)
        if not creating:
            self.fields["code"].disabled = True
        if entry is not None:  # a disabled field (the code) takes its initial even when bound
            self.initial.update(
                {
                    "code": entry.get("code"),
                    "name": entry.get("name"),
                    "description": entry.get("description", ""),
                    "sort": entry.get("sort"),
                    "public": entry.get("public", True),
                    "default": entry.get("default", False),
                    "credits_per_period": entry.get("credits_per_period"),
                }
            )
            values = entry.get("features") or {}
            for code, feature in self.features.items():
                self.initial[f"f_{code}"] = _initial_feature(feature.kind, values.get(code, False))

    def feature_fields(self):
        return [self[f"f_{code}"] for code in self.features]

    def values(self) -> dict:
        """The tier's entry in the file (without its prices, which stay as they are)."""
        data = self.cleaned_data
        credits = data.get("credits_per_period")
        values = {
            "name": data["name"],
            "description": data.get("description") or "",
            "public": bool(data.get("public")),
            "default": bool(data.get("default")),
            "sort": data.get("sort"),
            "credits_per_period": None
            if credits is None
            else (int(credits) if credits == credits.to_integral_value() else float(credits)),
            "features": {
                code: _feature_value(feature.kind, data.get(f"f_{code}"))
                for code, feature in self.features.items()
                if data.get(f"f_{code}") not in (None, "", False) or feature.kind == FeatureKind.BOOLEAN
            },
        }
        if values["sort"] is None:
            values.pop("sort")
        return values

    def error_field(self, suffix: str) -> str | None:
        """The form field a catalog error's path (after the tier's) names."""
        if suffix.startswith(".features."):
            name = "f_" + suffix.removeprefix(".features.")
            return name if name in self.fields else None
        key = suffix.lstrip(".")
        return {"sort": "sort"}.get(key, key if key in self.fields else None)


def _minor(text: str, currency: str) -> int | str:
    """Major units typed by a person ("19", "0.0025") as minor units: an integer, or the fractional
    amount as a decimal string (the file's unit_amount_decimal). ValueError if it is no number."""
    try:
        amount = Decimal(str(text).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError("Enter an amount such as 19.00.") from None
    if not amount.is_finite():
        raise ValueError("Enter an amount such as 19.00.")
    minor = amount.scaleb(exponent(currency))
    if minor == minor.to_integral_value():
        return int(minor)
    return decimal_text(minor.normalize())


class PriceForm(forms.Form):
    code = forms.CharField(required=False, max_length=64, help_text="Lookup key (checkout, quotes); unique.")
    model = forms.ChoiceField(choices=PricingModel.choices, initial=PricingModel.FLAT)
    currency = forms.CharField(max_length=3, initial="usd")
    amount = forms.CharField(
        required=False, max_length=40, label="Amount", help_text="In major units (19.00); per unit for usage."
    )
    interval = forms.ChoiceField(choices=Interval.choices, initial=Interval.MONTH)
    meter = forms.ChoiceField(required=False, label="Meter (a usage price)")
    package_size = forms.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    package_rounding = forms.ChoiceField(choices=PackageRounding.choices, initial=PackageRounding.UP)
    trial_days = forms.IntegerField(required=False, min_value=0, max_value=3650)

    def __init__(self, *args, meters: list[Meter], **kwargs):
        super().__init__(*args, **kwargs)
        self._kept_rows: list[int] = []
        self.price: dict = {}
        self.fields["meter"].choices = [("", "None (a recurring price)"), *((m.code, m.name) for m in meters)]
        for index in range(TIER_ROWS):
            self.fields[f"row{index}_up_to"] = forms.IntegerField(
                required=False, min_value=1, max_value=2**62, label="Up to"
            )
            self.fields[f"row{index}_unit"] = forms.CharField(required=False, max_length=40, label="Per unit")
            self.fields[f"row{index}_flat"] = forms.CharField(required=False, max_length=40, label="Flat fee")

    def rows(self):
        return [
            (index, self[f"row{index}_up_to"], self[f"row{index}_unit"], self[f"row{index}_flat"])
            for index in range(TIER_ROWS)
        ]

    def clean(self):
        data = super().clean()
        currency = (data.get("currency") or "usd").strip().lower()
        data["currency"] = currency
        price: dict = {}
        if data.get("code"):
            price["code"] = data["code"].strip()
        try:
            amount = _minor(data.get("amount") or "0", currency)
        except ValueError as exc:
            self.add_error("amount", str(exc))
            return data
        if isinstance(amount, str):
            price.update(unit_amount=0, unit_amount_decimal=amount)
        else:
            price["unit_amount"] = amount
        price.update(currency=currency, interval=data.get("interval") or Interval.MONTH)
        price["model"] = data.get("model") or PricingModel.FLAT
        rows = []
        for index in range(TIER_ROWS):
            up_to = data.get(f"row{index}_up_to")
            unit, flat = data.get(f"row{index}_unit") or "", data.get(f"row{index}_flat") or ""
            if up_to is None and not unit.strip() and not flat.strip():
                continue
            self._kept_rows.append(index)  # the file's tiers[n] is this form's row _kept_rows[n]
            row = {"up_to": up_to}
            for name, text, key in (
                (f"row{index}_unit", unit, "unit_amount"),
                (f"row{index}_flat", flat, "flat_amount"),
            ):
                try:
                    value = _minor(text or "0", currency)
                except ValueError as exc:
                    self.add_error(name, str(exc))
                    continue
                if isinstance(value, str) and key == "unit_amount":
                    row["unit_amount_decimal"] = value
                else:
                    row[key] = value  # a fractional flat fee: the import refuses it, beside this field
            rows.append(row)
        if rows:
            price["tiers"] = rows
        if data.get("package_size"):
            price["package_size"] = data["package_size"]
        if data.get("package_rounding") and data["package_rounding"] != PackageRounding.UP:
            price["package_rounding"] = data["package_rounding"]
        if data.get("meter"):
            price["meter"] = data["meter"]
        if data.get("trial_days"):
            price["trial_days"] = data["trial_days"]
        self.price = price
        return data

    def error_field(self, suffix: str) -> str | None:
        key = suffix.lstrip(".")
        match = re.match(r"tiers\[(\d+)\]\.(\w+)", key)
        if match:
            index = int(match.group(1))
            if index < len(self._kept_rows):
                row = self._kept_rows[index]
                column = {"up_to": "up_to", "unit_amount": "unit", "unit_amount_decimal": "unit"}.get(
                    match.group(2), "flat"
                )
                return f"row{row}_{column}"
            return None
        if key == "tiers":
            return "row0_up_to"
        return {"unit_amount": "amount", "unit_amount_decimal": "amount"}.get(
            key, key if key in self.fields else None
        )


class YamlForm(forms.Form):
    text = forms.CharField(
        required=False, max_length=MAX_YAML, label="Catalog YAML", widget=forms.Textarea(attrs={"rows": 14})
    )
    file = forms.FileField(required=False, label="or upload a .yaml file")

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_YAML:
                raise forms.ValidationError("The file is larger than 500 kB.")
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
            data["filename"] = upload.name[:200]
        else:
            data["filename"] = "pasted.yaml"
        if not (data.get("text") or "").strip():
            raise forms.ValidationError("Paste a catalog or choose a file.")
        if "\x00" in data["text"]:
            raise forms.ValidationError("The text holds a NUL character.")
        return data


class QuoteForm(forms.Form):
    quantity = forms.CharField(max_length=40, initial="1", label="Quantity")


def catalog_error_text(error: CatalogError) -> str:
    """The import's message without the "file:line: path: " it starts with (shown beside them)."""
    field_path = (error.details or {}).get("field") or ""
    parts = error.message.split(": ", 2)
    return parts[2] if len(parts) == 3 and parts[1] == field_path else error.message


def form_errors_from(form: forms.Form, error: CatalogError, *, prefix: str | None) -> None:
    """Put the import's error beside the field its path names (after `prefix`, the path of what
    the form edits), else at the top of the form; the message without file and line."""
    field_path = (error.details or {}).get("field") or ""
    message = catalog_error_text(error)
    target = None
    if prefix and field_path.startswith(prefix) and hasattr(form, "error_field"):
        target = form.error_field(field_path[len(prefix) :])
    if target and target in form.fields:
        form.add_error(target, message)
    else:
        form.add_error(
            None, f"{field_path}: {message}" if field_path and field_path not in message else message
        )
