"""The payment provider protocol: our own types, amounts in integer minor units.

Only `billing/providers/<name>.py` talks to a provider SDK. Each adapter maps its provider's
objects and errors onto these: `ProviderUnavailable` is retryable (network, 5xx, rate limits),
`ProviderError` is not (bad request, auth), `WebhookVerificationFailed` is a bad signature.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from kernel.errors import ApplicationError


class ProviderError(ApplicationError):
    code = "provider_error"
    status_code = 502


class ProviderUnavailable(ProviderError):
    """Retry later: the provider did not answer or asked us to slow down."""

    code = "provider_unavailable"
    status_code = 503


class ProviderNotConfigured(ProviderError):
    code = "provider_not_configured"
    status_code = 409


class ProviderNotSupported(ProviderError):
    """This adapter does not offer the operation (yet)."""

    code = "provider_not_supported"
    status_code = 409


class CouponNotSupported(ProviderError):
    """The provider cannot express this coupon for this price: refused before the provider is called."""

    code = "coupon_not_supported_by_provider"
    status_code = 422


class CouponConflict(ProviderError):
    """The provider holds a discount under our coupon's name with other terms: never given."""

    code = "coupon_conflict"
    status_code = 409


class WebhookVerificationFailed(ProviderError):
    code = "invalid_signature"
    status_code = 400


class WebhookIgnored(ProviderError):
    """A well-formed delivery of an event type we do not use: answered 200 so the provider stops
    retrying, and stored nowhere (nothing in it is acted on, so nothing needs authenticating)."""

    code = "webhook_ignored"
    status_code = 200


class EventType(enum.StrEnum):
    SUBSCRIPTION_CREATED = "subscription.created"
    SUBSCRIPTION_UPDATED = "subscription.updated"
    SUBSCRIPTION_CANCELED = "subscription.canceled"
    SUBSCRIPTION_EXPIRED = "subscription.expired"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    ORDER_PAID = "order.paid"
    REFUND_CREATED = "refund.created"
    DISPUTE_CREATED = "dispute.created"  # the payment (`reference`) is disputed
    DISPUTE_WON = "dispute.won"  # closed in our favour (or an inquiry closed without a chargeback)
    DISPUTE_LOST = "dispute.lost"
    INVOICE = "invoice"  # a provider's invoice (or order) to mirror, with no money movement of its own
    ACCOUNT_UPDATED = "account.updated"  # a creator's connected account changed (Connect)
    PAYOUT_UPDATED = "payout.updated"  # a payout to a creator's connected account was paid or failed
    IGNORED = "ignored"  # a provider event we do not act on (e.g. order.created)


@dataclass(frozen=True)
class SubscriptionState:
    """A subscription as the provider sees it at `NormalizedEvent.occurred_at`."""

    subscription_id: str
    status: str  # one of memberships.MembershipStatus
    customer: str  # our Customer.external_id (providers carry it in metadata / custom data)
    price_ref: str  # our Price.code (or provider price id mapped back by the adapter)
    quantity: int = 1
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    cancel_at_period_end: bool = False
    provider_customer_id: str = ""
    checkout_id: str = ""  # our Checkout id, when the subscription came from one
    email: str = ""  # the provider customer's email: finds our customer when nothing else names it


@dataclass(frozen=True)
class PaymentState:
    """A charge, refund or dispute. `payment_id` is the provider's id of this very object (a refund's
    own id, so each partial refund is one row); `reference` is the provider's id of the money
    movement it concerns (Stripe's payment intent, else its charge): a charge stores it, and a
    refund or dispute finds its charge (and so its customer) by it."""

    payment_id: str
    amount: int
    currency: str
    customer: str  # our Customer.external_id; blank when the provider's object does not carry it
    subscription_id: str = ""
    provider_customer_id: str = ""  # lets us find the customer through a membership when `customer` is blank
    reference: str = ""
    intent: str = ""  # another id of the same money movement (Stripe's payment intent beside its charge)
    checkout_id: str = ""  # our Checkout id, when the payment completes one (a one-time purchase)
    email: str = ""
    # the invoice this money is for: the provider's invoice id (Stripe's `in_...`), or ours
    # (`minv_<id>`) when our engine collected it; invoicing links the payment to that invoice
    invoice: str = ""
    # a refund known only as a cumulative figure: everything refunded so far on `reference` (Polar's
    # order.refunded names no refund, only the order's refunded amount); recorded for what is missing
    refunded_total: int | None = None
    # what the provider kept of this charge, in minor units of `currency` (Stripe's balance
    # transaction fee, Polar's platform fee, the sandbox's simulated one); None: not reported
    fee: int | None = None


class InvoiceStatus(enum.StrEnum):
    """A provider invoice's status in our words (never moves back: paid and void are final)."""

    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


@dataclass(frozen=True)
class InvoiceLineState:
    """One line of a provider's invoice (amounts in minor units, as the provider computed them)."""

    description: str
    amount: int
    quantity: Decimal = Decimal(1)
    unit_amount: Decimal | None = None  # minor units per unit (may be fractional); None: not given
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    proration: bool = False
    price_ref: str = ""  # our Price.code when the provider carries it (Stripe's lookup_key, a mapped variant)
    provider_price_id: str = ""  # the provider's price (variant, product price) id, mapped back by invoicing


@dataclass(frozen=True)
class InvoiceState:
    """An invoice (Polar and Lemon Squeezy: an order) of a provider that runs its own subscriptions,
    as the provider reports it at `NormalizedEvent.occurred_at`. Invoicing mirrors it into our
    Invoice (collected_by=provider), once per `invoice_id`; the amounts are the provider's own."""

    invoice_id: str  # unique per provider (Lemon Squeezy's orders and invoices are prefixed apart)
    status: InvoiceStatus
    currency: str
    subtotal: int
    total: int
    number: str = ""  # the provider's own number (what its emails and PDFs show)
    discount: int = 0
    tax: int = 0
    amount_paid: int = 0
    customer: str = ""  # our Customer.external_id, when the provider carries our metadata
    provider_customer_id: str = ""
    subscription_id: str = ""
    email: str = ""
    billing_reason: str = "manual"  # one of invoicing's BillingReason values
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    lines: tuple[InvoiceLineState, ...] = ()


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
class NormalizedEvent:
    provider: str
    event_id: str
    type: EventType
    occurred_at: dt.datetime
    subscription: SubscriptionState | None = None
    payment: PaymentState | None = None
    raw_type: str = ""
    # more payments of the same event (each refund listed on a Stripe charge, each Toss cancel)
    more_payments: tuple[PaymentState, ...] = ()
    checkout: CheckoutState | None = None  # our Checkout this event completes
    invoice: InvoiceState | None = None  # the provider's invoice to mirror (after any payment it carries)
    account: ConnectedAccountState | None = None  # a creator's connected account (ACCOUNT_UPDATED)
    payout: PayoutReport | None = None  # a payout to a creator's connected account (PAYOUT_UPDATED)


@dataclass(frozen=True)
class CheckoutState:
    """A provider's checkout of ours that completed (its payment, if any, arrives as a PaymentState)."""

    checkout_id: str  # our Checkout id
    provider_customer_id: str = ""  # the provider's customer it made: later events name only that
    email: str = ""


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
class ConnectedAccountState:
    """A connected account as the provider reports it (`account.updated`): `status` is pending
    (details still due), active (charges and payouts enabled) or restricted (disabled)."""

    account_id: str
    status: str
    creator: str = ""  # our Creator.handle, when the provider carries our metadata


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
class PayoutReport:
    """A provider's word on a payout to a connected account (Stripe's `payout.paid` / `.failed`):
    `status` paid or failed; `reference` our payout's key when the provider carries our metadata."""

    payout_id: str
    status: str
    account_id: str = ""
    reference: str = ""
    failure_message: str = ""


class PaymentProvider(Protocol):
    """What an adapter offers. Webhook verification and parsing are required of every adapter;
    the operations below are offered where the provider has them, and a method an adapter leaves
    out answers 409 `provider_not_supported` (billing.memberships.services._adapter_call), never a
    pretend success. Create calls carry idempotency keys derived from our row ids."""

    name: str

    def verify_webhook(self, *, body: bytes, headers: dict[str, str]) -> dict:
        """The verified payload, or WebhookVerificationFailed."""

    def event_id(self, payload: dict) -> str:
        """The provider's unique id of the event (the inbox de-duplicates on it)."""

    def parse_event(self, payload: dict) -> NormalizedEvent: ...

    # --- checkout and subscriptions (products/prices are created at the provider on first use) --

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession: ...

    def cancel_subscription(self, *, subscription_id: str, at_period_end: bool) -> None: ...

    def change_subscription(
        self, *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
    ) -> str:
        """ "now" or "at_period_end"."""

    def pause_subscription(self, *, subscription_id: str, paused: bool) -> None: ...

    def portal_url(self, *, customer: str, provider_customer_id: str = "") -> str: ...

    # --- later issues: usage sync (metering) and transfers (payouts) ------------------------------

    def report_usage(self, report: UsageReport) -> str:
        """The provider's id of the recorded usage; the same report twice records it once."""

    def connect_onboarding(self, request: ConnectOnboardingRequest) -> ConnectOnboarding:
        """Make the creator's connected account (once: `creator_key`) unless `account_id` names
        it, and a link to the provider's onboarding for it."""

    def payout_account_link(self, *, account_id: str, return_url: str) -> str: ...

    def transfer(self, transfer: Transfer) -> TransferResult:
        """Move money to the creator's connected account and pay it out there; the same
        `transfer_id` twice is one transfer."""

    # --- refunds (credit notes) -----------------------------------------------------------------

    # --- fees and reconciliation (issue 12 item 7) ------------------------------------------------

    def payment_fee(self, payment: PaymentState) -> int | None:
        """The fee the provider kept of a charge its webhook did not carry the fee of (Stripe names
        the charge, not its balance transaction): fetched, in the payment's currency; None when the
        provider has not settled it yet or reports it in another currency."""

    def balance_transactions(self, *, since: dt.datetime, until: dt.datetime) -> list[BalanceEntry]:
        """The provider's own record of money movements created in [since, until)."""

    def refund(
        self,
        *,
        payment_id: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        reason: str,
        refunded_before: int = 0,
    ) -> RefundResult:
        """Refund `amount` of the provider's charge `payment_id` (its id of the money movement: what
        Payment.reference or provider_payment_id holds). The same `idempotency_key` twice is one
        refund. `reason` is one of CreditNoteReason's values. `refunded_before`: what our earlier
        refunds of this charge came to (a provider without idempotency keys, Lemon Squeezy, tells a
        retry from a new refund by the charge's refunded total)."""


class SubscriptionEngine(Protocol):
    """Our own subscription schedule for providers that only charge a saved method (the sandbox,
    TossPayments). It lives above the adapters (billing/invoicing) and is handed to them by the
    registry, so an adapter never imports our models."""

    def checkout_create(self, request: CheckoutRequest, **options) -> CheckoutSession: ...

    def subscription_cancel(self, *, subscription_id: str, at_period_end: bool) -> None: ...

    def subscription_change(
        self, *, subscription_id: str, price_ref: str, unit_amount: int, interval: str, quantity: int
    ) -> str: ...

    def subscription_pause(self, *, subscription_id: str, paused: bool) -> None: ...


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


class ProviderCatalog(Protocol):
    """Our catalog and the provider product mappings, handed to adapters by the registry."""

    def price(self, code: str, *, active_only: bool = True) -> CatalogPrice | None: ...

    def mapping(self, *, provider: str, mode: str, price_code: str) -> ProductMapping | None:
        """The newest mapping of an active price."""

    def mapping_store(
        self,
        *,
        provider: str,
        mode: str,
        price: CatalogPrice,
        external_product_id: str,
        external_price_id: str,
    ) -> ProductMapping:
        """Store a mapping once (a concurrent first writer wins); the stored one."""

    def mapping_for_external(
        self, *, provider: str, mode: str | None, external_product_id: str = "", external_price_id: str = ""
    ) -> ProductMapping | None:
        """The mapping of a provider product or price (variant), active prices first."""

    def discount(self, *, provider: str, mode: str, coupon_code: str, months: int) -> str | None:
        """The provider's id of our coupon's discount (`months`: a repeating one's length, else 0)."""

    def discount_store(
        self, *, provider: str, mode: str, coupon_code: str, months: int, external_id: str
    ) -> str:
        """Store a discount's id once (a concurrent first writer wins); the stored id."""
