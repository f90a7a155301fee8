"""Credit values: the tenant says credits pay for usage in a currency by giving a credit a value
there (`CreditValue`); billing.invoicing.totals applies them at close."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet

from billing.invoicing.exceptions import InvoicingError
from billing.invoicing.models import CreditValue


class CreditValueNotFound(InvoicingError):
    code = "unknown_credit_value"
    status_code = 404


def credit_value_set(*, currency: str, unit_amount_decimal: Decimal) -> CreditValue:
    """One credit pays `unit_amount_decimal` minor units of `currency` from now on (invoices
    finalized before keep what they applied)."""
    if not unit_amount_decimal > 0:
        raise InvoicingError("A credit's value is above 0.", code="invalid_credit_value")
    value, _ = CreditValue.objects.update_or_create(
        currency=currency.lower(), defaults={"unit_amount_decimal": unit_amount_decimal}
    )
    return value


def credit_value_remove(*, currency: str) -> None:
    """Credits pay for nothing in `currency` from now on."""
    deleted, _ = CreditValue.objects.filter(currency=currency.lower()).delete()
    if not deleted:
        raise CreditValueNotFound(
            f"Credits pay for nothing in '{currency.lower()}'.", details={"currency": currency.lower()}
        )


def credit_value_list() -> QuerySet[CreditValue]:
    return CreditValue.objects.order_by("currency")
