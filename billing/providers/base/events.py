"""What a provider's webhook says, in our own types: the normalized event and the states it carries."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal


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
class ConnectedAccountState:
    """A connected account as the provider reports it (`account.updated`): `status` is pending
    (details still due), active (charges and payouts enabled) or restricted (disabled)."""

    account_id: str
    status: str
    creator: str = ""  # our Creator.handle, when the provider carries our metadata


@dataclass(frozen=True)
class PayoutReport:
    """A provider's word on a payout to a connected account (Stripe's `payout.paid` / `.failed`):
    `status` paid or failed; `reference` our payout's key when the provider carries our metadata."""

    payout_id: str
    status: str
    account_id: str = ""
    reference: str = ""
    failure_message: str = ""
