"""What we ask of a provider and what it answers (checkouts, saved-method charges, usage, refunds,
connected accounts and transfers, its books), in our own types; amounts in integer minor units."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billing.providers.base.errors import CouponNotSupported


@dataclass(frozen=True)
class SavedMethodCharge:
    """What charging a saved payment method came to (`PaymentProvider.charge_saved_method`): paid
    (`payment_id` is the provider's id of the payment, the one its own webhooks name) or refused by
    the card or the provider (`failure_code`, `failure_message`). A provider that did not answer
    raises ProviderUnavailable instead: no attempt happened, the same key is tried again."""

    succeeded: bool
    payment_id: str = ""
    amount: int = 0
    failure_code: str = ""
    failure_message: str = ""


@dataclass(frozen=True)
class CouponTerms:
    """A coupon's immutable terms as a provider that runs its own subscriptions is told them:
    `percent_off` or `amount_off` (minor units of `currency`), for one period, `duration_in_periods`
    periods (repeating) or forever. Our periods are the price's interval; providers count months."""

    code: str
    duration: str  # once | repeating | forever
    percent_off: Decimal | None = None
    amount_off: int | None = None
    currency: str = ""
    duration_in_periods: int | None = None

    def months(self, interval: str) -> int | None:
        """A repeating coupon's length in months for a price billed every `interval` (a yearly
        price's n periods are n*12 months); None unless repeating."""
        if self.duration != "repeating" or self.duration_in_periods is None:
            return None
        return self.duration_in_periods * (12 if interval == "year" else 1)

    @property
    def percent_text(self) -> str:
        """`percent_off` without trailing zeros and never in exponent form ("20", "12.5")."""
        return format(self.percent_off.normalize(), "f") if self.percent_off is not None else ""

    def refuse_other_currency(self, *, currency: str, provider: str) -> None:
        if self.amount_off is not None and self.currency.lower() != currency.lower():
            raise CouponNotSupported(
                f"Coupon '{self.code}' takes {self.currency.upper()} off; {provider} cannot take it off a "
                f"price in {currency.upper()}.",
                details={"coupon": self.code, "currency": currency.lower(), "provider": provider},
            )


@dataclass(frozen=True)
class CheckoutRequest:
    checkout_id: str  # our row id: the idempotency key of the provider call
    customer: str
    email: str
    price_ref: str
    unit_amount: int
    currency: str
    interval: str
    quantity: int
    trial_days: int
    success_url: str
    cancel_url: str
    # the checkout's coupon, for a provider that runs its own subscriptions (Stripe's, Polar, Lemon
    # Squeezy): it discounts the provider's own invoices. Where our engine runs the subscription
    # (sandbox, Toss, Stripe engine mode) the adapter leaves it alone: our invoices apply it.
    coupon: CouponTerms | None = None


@dataclass(frozen=True)
class CheckoutSession:
    provider_checkout_id: str
    url: str
    expires_at: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UsageReport:
    """One customer's usage of one meter over a period, as reported to the provider (metering)."""

    report_id: str  # our row id: the provider call's idempotency key
    customer: str
    provider_customer_id: str
    meter: str
    quantity: int
    period_start: dt.datetime
    period_end: dt.datetime


@dataclass(frozen=True)
class ConnectOnboardingRequest:
    """A creator's way to a payout account at the provider (its connected-account flow)."""

    creator: str  # our Creator.handle (kept in the provider's metadata)
    creator_key: str  # from our row id: the idempotency key of the account's creation
    email: str
    display_name: str
    account_id: str  # the provider account made before, "" the first time (then it is made)
    return_url: str
    refresh_url: str


@dataclass(frozen=True)
class ConnectOnboarding:
    account_id: str  # the provider's connected account
    url: str  # where the creator goes next (the provider's hosted onboarding)


@dataclass(frozen=True)
class Transfer:
    """Money moved to a creator's connected account (payouts)."""

    transfer_id: str  # our payout id: the provider call's idempotency key
    account_id: str
    amount: int
    currency: str
    description: str = ""


@dataclass(frozen=True)
class TransferResult:
    """What the provider made of a Transfer: its transfer and payout ids, and `status`: `paid` (the
    money reached the creator: the sandbox) or `processing` (the provider reports the payout later)."""

    transfer_id: str
    payout_id: str = ""
    status: str = "processing"


@dataclass(frozen=True)
class BalanceEntry:
    """One money movement in a provider's own books (Stripe's balance transaction): `source` is the
    provider's id of the charge or refund it settles, `amount` is signed (a refund negative), `fee`
    what the provider kept, both in minor units of `currency`."""

    entry_id: str
    type: str  # charge | payment | refund | adjustment | other
    source: str
    amount: int
    fee: int
    currency: str
    created: dt.datetime
    related: tuple[str, ...] = ()  # other ids of the same money movement (a charge's payment intent)


@dataclass(frozen=True)
class RefundResult:
    """A refund the provider accepted: its own id of the refund (its webhook names the same id)."""

    refund_id: str
    amount: int
    status: str = "succeeded"  # or "pending" (the provider settles it later; it is not undone here)


@dataclass(frozen=True)
class CatalogPrice:
    """One of our prices as an adapter sees it (amounts in minor units)."""

    id: int
    code: str
    model: str
    unit_amount: int
    currency: str
    interval: str
    active: bool
    tier_name: str
    tier_description: str


@dataclass(frozen=True)
class ProductMapping:
    """Which provider product/price (variant) sells one of our prices."""

    price_code: str
    external_product_id: str
    external_price_id: str
