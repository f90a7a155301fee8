"""The protocols adapters, the subscription engine and the catalog offer one another."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from billing.providers.base.calls import (
    BalanceEntry,
    CatalogPrice,
    CheckoutRequest,
    CheckoutSession,
    ConnectOnboarding,
    ConnectOnboardingRequest,
    ProductMapping,
    RefundResult,
    Transfer,
    TransferResult,
    UsageReport,
)
from billing.providers.base.events import NormalizedEvent, PaymentState


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

    def uncancel_subscription(self, *, subscription_id: str) -> None:
        """Undo a cancellation scheduled for the period end (the subscription renews again)."""

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

    def subscription_uncancel(self, *, subscription_id: str) -> None: ...


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
