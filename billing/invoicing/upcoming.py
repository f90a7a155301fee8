"""The upcoming invoice (Stripe's name): what the customer's current period would be invoiced if it
closed now: its usage so far on the tier's usage prices, and the next period's fee, with the
customer's discount and taxes computed as finalizing would."""

from __future__ import annotations

import dataclasses

from django.utils import timezone

from billing.invoicing.charges import INTERVALS, PeriodCharges, period_charges, usage_prices
from billing.invoicing.exceptions import InvoicingError
from billing.invoicing.totals import adjustments_for
from billing.memberships.models import Customer
from billing.memberships.selectors import customer_tier, entitled_membership
from billing.metering.selectors import current_period
from billing.tiers.models import Price


class NoUpcomingInvoice(InvoicingError):
    code = "no_upcoming_invoice"
    status_code = 404


def invoice_upcoming(*, customer: Customer) -> PeriodCharges:
    """The current period's charges so far. A membership that ends at the period's end renews no fee;
    a customer whose tier has neither a recurring fee nor usage prices has no upcoming invoice."""
    membership = entitled_membership(customer=customer)
    tier = membership.tier if membership is not None else customer_tier(customer=customer)
    fee_price = None
    if membership is not None and membership.price_id and not membership.cancel_at_period_end:
        price = Price.objects.select_related("tier").get(pk=membership.price_id)
        fee_price = price if price.interval in INTERVALS else None
    currency = fee_price.currency if fee_price is not None else None
    if currency is None and tier is not None:
        first = Price.objects.filter(tier=tier, active=True).exclude(meter="").order_by("id").first()
        currency = first.currency if first else None
    if (
        tier is None
        or currency is None
        or (fee_price is None and not usage_prices(tier=tier, currency=currency))
    ):
        raise NoUpcomingInvoice(
            f"Customer '{customer.external_id}' has nothing to be invoiced: no renewing plan and no usage prices.",
            details={"customer": customer.external_id},
        )
    now = timezone.now()
    if (
        membership is not None
        and membership.current_period_start
        and membership.current_period_end
        and membership.current_period_start <= now < membership.current_period_end
    ):  # what current_period would find, without reading the membership again
        start, end = membership.current_period_start, membership.current_period_end
    else:
        start, end = current_period(customer=customer)
    charges = period_charges(
        customer=customer.external_id,
        tier=tier,
        currency=currency,
        fee_price=fee_price,
        quantity=membership.quantity if membership is not None else 1,
        period_start=start,
        period_end=end,
        usage_until=now,
    )
    adjusted = adjustments_for(customer=customer, currency=charges.currency, lines=charges.lines)
    return dataclasses.replace(charges, adjusted=adjusted)
