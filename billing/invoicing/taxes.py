"""Tax rates: create, deactivate, list, and the rates that apply to a customer."""

from __future__ import annotations

import re
from decimal import Decimal

from django.db.models import Q, QuerySet

from billing.invoicing.exceptions import InvoicingError
from billing.invoicing.models import TaxRate
from billing.memberships.models import Customer


class TaxRateNotFound(InvoicingError):
    code = "unknown_tax_rate"
    status_code = 404


def tax_rate_create(*, name: str, percent: Decimal, inclusive: bool = False, country: str = "") -> TaxRate:
    """A new rate; terms the database would refuse are an invalid_tax_rate error (message: the first
    problem; details["field"] its term, details["errors"] every term's problem), the same for the
    API and the console's form."""
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or "\x00" in name:
        errors["name"] = "A tax rate's name is 1-100 characters of text."
    if not isinstance(percent, Decimal) or not percent.is_finite():
        errors["percent"] = "A tax rate's percent is a decimal number."
    elif not Decimal(0) < percent <= Decimal(100):
        errors["percent"] = "A tax rate's percent is above 0 and at most 100."
    elif percent != percent.quantize(Decimal("0.0001")):
        errors["percent"] = "A tax rate's percent has at most 4 decimal places."
    if not isinstance(country, str) or not re.fullmatch(r"([A-Za-z]{2})?", country):
        errors["country"] = "A country is a two-letter ISO 3166 code (DE), or blank for every customer."
    if errors:
        field, message = next(iter(errors.items()))
        raise InvoicingError(message, code="invalid_tax_rate", details={"field": field, "errors": errors})
    return TaxRate.objects.create(name=name, percent=percent, inclusive=inclusive, country=country.upper())


def tax_rate_deactivate(*, tax_rate: TaxRate) -> TaxRate:
    """Charged on no new invoice; invoices that charged it keep it."""
    TaxRate.objects.filter(pk=tax_rate.pk).update(active=False)
    tax_rate.refresh_from_db(fields=["active"])
    return tax_rate


def tax_rate_list(*, active: bool | None = None) -> QuerySet[TaxRate]:
    rates = TaxRate.objects.all()
    return rates if active is None else rates.filter(active=active)


def tax_rate_get(*, tax_rate_id) -> TaxRate:
    try:
        tax_rate_id = int(tax_rate_id)
    except (TypeError, ValueError):
        tax_rate_id = None
    rate = TaxRate.objects.filter(pk=tax_rate_id).first() if tax_rate_id and 0 < tax_rate_id < 2**63 else None
    if rate is None:
        raise TaxRateNotFound("No such tax rate.", details={"id": tax_rate_id})
    return rate


def tax_rates_for(*, customer: Customer) -> list[TaxRate]:
    """The active rates a customer pays: those of its country and those for every country (none when
    it is tax exempt), oldest first."""
    if customer.tax_exempt:
        return []
    where = Q(country="") | Q(country=customer.country) if customer.country else Q(country="")
    return list(TaxRate.objects.filter(where, active=True).order_by("id"))
