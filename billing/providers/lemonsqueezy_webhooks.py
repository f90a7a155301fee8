"""Lemon Squeezy webhooks (see lemonsqueezy.py): `X-Signature` verification, our event ids, and its order,
subscription and subscription-invoice events mapped onto our dataclasses. A mixin of LemonSqueezyProvider."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

from dateutil.relativedelta import relativedelta

from billing.providers._common import SUBSCRIPTION_STATUS, json_object, timestamp
from billing.providers.base import (
    CatalogPrice,
    EventType,
    InvoiceLineState,
    InvoiceState,
    NormalizedEvent,
    PaymentState,
    SubscriptionState,
    WebhookVerificationFailed,
)
from billing.providers.invoices import lemonsqueezy_invoice, lemonsqueezy_order_line

PERIODS = {"month": relativedelta(months=1), "year": relativedelta(years=1)}


INVOICE_EVENTS = (
    "subscription_payment_success",
    "subscription_payment_failed",
    "subscription_payment_recovered",
    "subscription_payment_refunded",
)


def _amount(attributes: dict, *, refund: bool) -> int:
    """Minor units: a refund's refunded amount (else the whole total), a payment's total."""
    return int((attributes.get("refunded_amount") if refund else None) or attributes.get("total") or 0)


class LemonSqueezyWebhooks:
    def verify_webhook(self, *, body: bytes, headers: dict[str, str]) -> dict:
        expected = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        if not self.webhook_secret or not hmac.compare_digest(expected, headers.get("x-signature", "")):
            raise WebhookVerificationFailed("Bad Lemon Squeezy X-Signature.")
        return json_object(body)

    def event_id(self, payload: dict) -> str:
        """Lemon Squeezy sends no event id: the event is its name, object, update time and a digest
        of the object's attributes (a seat change moves `first_subscription_item.quantity` but not
        `updated_at`, and must not be taken for a redelivery)."""
        attributes = (payload.get("data") or {}).get("attributes") or {}
        meta = payload.get("meta") or {}
        digest = hashlib.sha256(
            json.dumps(attributes, sort_keys=True, separators=(",", ":"), default=str).encode()
        ).hexdigest()[:16]
        return (
            f"{meta.get('event_name')}:{(payload.get('data') or {}).get('id')}:"
            f"{attributes.get('updated_at')}:{digest}"
        )

    def event_type(self, payload: dict) -> str:
        return str((payload.get("meta") or {}).get("event_name") or "")

    def _price_for_variant(self, variant_id: str, *, mode: str) -> CatalogPrice | None:
        if not variant_id or self.catalog is None:
            return None
        mapping = self.catalog.mapping_for_external(
            provider="lemonsqueezy", mode=mode, external_price_id=variant_id
        )
        return self.catalog.price(mapping.price_code, active_only=False) if mapping else None

    def parse_event(self, payload: dict) -> NormalizedEvent:
        meta = payload.get("meta") or {}
        kind = meta.get("event_name", "")
        data = payload.get("data") or {}
        attributes = data.get("attributes") or {}
        occurred = timestamp(attributes.get("updated_at")) or dt.datetime.now(dt.UTC)
        common = {
            "provider": self.name,
            "event_id": self.event_id(payload),
            "occurred_at": occurred,
            "raw_type": kind,
        }
        custom = meta.get("custom_data") or {}
        test_mode = attributes.get("test_mode")
        mode = self.mode if test_mode is None else ("test" if test_mode else "live")
        kind_of = data.get("type")
        if kind.startswith("subscription_") and kind_of == "subscriptions":
            return self._subscription_event(data, attributes, custom, mode=mode, common=common, kind=kind)
        if kind_of == "subscription-invoices" and kind in INVOICE_EVENTS:
            initial = attributes.get("billing_reason") == "initial"
            if kind == "subscription_payment_success" and initial:
                # the first invoice is the subscription's order: order_created records that payment
                # and mirrors that order as the invoice
                return NormalizedEvent(type=EventType.IGNORED, **common)
            subscription_id = str(attributes.get("subscription_id") or "")
            refund = kind == "subscription_payment_refunded"
            invoice_id = f"invoice:{data.get('id')}"
            payment = PaymentState(
                # a refund is known by the invoice's cumulative refunded amount only (memberships
                # records what is new of it, so a second partial refund is not taken for a redelivery)
                payment_id=f"refunded:{invoice_id}" if refund else invoice_id,
                reference=invoice_id,
                refunded_total=_amount(attributes, refund=True) if refund else None,
                amount=_amount(attributes, refund=refund),
                currency=str(attributes.get("currency") or "").lower(),
                customer=custom.get("monetize_customer")
                or "",  # else found from the subscription (memberships)
                subscription_id=subscription_id,
                invoice="" if refund else invoice_id,
            )
            types = {
                "subscription_payment_success": EventType.PAYMENT_SUCCEEDED,
                "subscription_payment_failed": EventType.PAYMENT_FAILED,
                # a failed renewal paid after all: recorded (and the membership leaves past_due)
                "subscription_payment_recovered": EventType.PAYMENT_SUCCEEDED,
                "subscription_payment_refunded": EventType.REFUND_CREATED,
            }
            # no number of its own (Lemon Squeezy numbers orders only), and no items: one line for the subtotal
            line = InvoiceLineState(
                description="Subscription change" if attributes.get("billing_reason") == "updated" else "Subscription renewal",
                amount=int(attributes.get("subtotal") or 0),
            )  # fmt: skip
            invoice = None if initial else lemonsqueezy_invoice(
                invoice_id, attributes, custom, subscription_id=subscription_id, number="", lines=(line,)
            )  # fmt: skip
            return NormalizedEvent(type=types[kind], payment=payment, invoice=invoice, **common)
        if kind_of == "orders" and kind in ("order_created", "order_refunded"):
            refund = kind == "order_refunded"
            invoice = self._order_invoice(data, attributes, custom, mode=mode)
            if not refund and attributes.get("status") != "paid":
                # only paid orders are payments; a pending order is an open invoice
                if invoice is None:
                    return NormalizedEvent(type=EventType.IGNORED, **common)
                return NormalizedEvent(type=EventType.INVOICE, invoice=invoice, **common)
            payment = PaymentState(
                payment_id=f"refunded:order:{data.get('id')}" if refund else f"order:{data.get('id')}",
                reference=f"order:{data.get('id')}",  # a refund's charge (the order's payment)
                refunded_total=_amount(attributes, refund=True) if refund else None,
                amount=_amount(attributes, refund=refund),
                currency=str(attributes.get("currency") or "").lower(),
                customer=custom.get("monetize_customer", ""),
                # a paid order of a one-time price completes its checkout and grants the tier
                checkout_id="" if refund else str(custom.get("monetize_checkout") or ""),
                invoice="" if refund else f"order:{data.get('id')}",
            )
            return NormalizedEvent(
                type=EventType.REFUND_CREATED if refund else EventType.ORDER_PAID,
                payment=payment,
                invoice=invoice,
                **common,
            )
        return NormalizedEvent(type=EventType.IGNORED, **common)

    def _order_invoice(self, data: dict, attributes: dict, custom: dict, *, mode: str) -> InvoiceState | None:
        """A Lemon Squeezy order as an invoice: its order number, its own amounts (Lemon Squeezy is
        the merchant of record and computes the tax), its one item as the line (the variant maps to
        our price)."""
        variant = str((attributes.get("first_order_item") or {}).get("variant_id") or "")
        price = self._price_for_variant(variant, mode=mode)
        line = lemonsqueezy_order_line(attributes, price_ref=price.code if price else "")
        number = attributes.get("order_number")
        return lemonsqueezy_invoice(
            f"order:{data.get('id')}", attributes, custom, number=str(number or ""), lines=(line,)
        )

    def _subscription_event(
        self, data: dict, attributes: dict, custom: dict, *, mode: str, common: dict, kind: str
    ) -> NormalizedEvent:
        subscription_id = str(data["id"])
        raw_status = attributes.get("status", "")
        # the variant is the truth after a plan change; the checkout's custom data names the first price
        price = self._price_for_variant(str(attributes.get("variant_id") or ""), mode=mode)
        price_ref = price.code if price else custom.get("monetize_price", "")
        if price is None and price_ref and self.catalog is not None:
            price = self.catalog.price(price_ref, active_only=False)
        trial_end = timestamp(attributes.get("trial_ends_at"))
        if raw_status == "cancelled":
            # Lemon Squeezy's "cancelled" is a grace period: live until ends_at, then subscription_expired
            on_trial = trial_end is not None and trial_end > common["occurred_at"]
            status, period_end = ("trialing" if on_trial else "active"), timestamp(attributes.get("ends_at"))
        else:
            status = SUBSCRIPTION_STATUS.get(raw_status, raw_status)
            if raw_status == "on_trial":
                period_end = trial_end or timestamp(attributes.get("renews_at"))
            elif raw_status == "expired":
                period_end = timestamp(attributes.get("ends_at"))
            else:
                period_end = timestamp(attributes.get("renews_at")) or timestamp(attributes.get("ends_at"))
        if raw_status == "on_trial" or (raw_status == "cancelled" and status == "trialing"):
            period_start = timestamp(attributes.get("created_at"))
        elif period_end and price is not None and price.interval in PERIODS:
            period_start = period_end - PERIODS[price.interval]
        else:
            period_start = None
        item = attributes.get("first_subscription_item") or {}
        state = SubscriptionState(
            subscription_id=subscription_id,
            status=status,
            customer=custom.get("monetize_customer") or "",  # else found from the subscription (memberships)
            price_ref=price_ref,
            quantity=int(item.get("quantity") or 1),
            period_start=period_start,
            period_end=period_end,
            cancel_at_period_end=bool(attributes.get("cancelled")) and raw_status != "expired",
            provider_customer_id=str(attributes.get("customer_id") or ""),
            checkout_id=str(custom.get("monetize_checkout") or ""),
        )
        types = {
            "subscription_created": EventType.SUBSCRIPTION_CREATED,
            "subscription_expired": EventType.SUBSCRIPTION_EXPIRED,
        }
        return NormalizedEvent(
            type=types.get(kind, EventType.SUBSCRIPTION_UPDATED), subscription=state, **common
        )
