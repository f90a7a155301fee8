"""Polar webhooks (see polar.py): Standard Webhooks verification and its subscription, order, refund and
checkout events mapped onto our dataclasses. A mixin of PolarProvider."""

from __future__ import annotations

import datetime as dt

from billing.providers._common import SUBSCRIPTION_STATUS, timestamp
from billing.providers.base import (
    EventType,
    NormalizedEvent,
    PaymentState,
    ProviderCatalog,
    SubscriptionState,
    UsageReport,
    WebhookVerificationFailed,
)
from billing.providers.invoices import polar_order_invoice

ORDER_EVENTS = ("order.created", "order.paid", "order.updated", "order.refunded")


class _AnyEventType(frozenset):
    """Polar's validator checks the type against a set; we store every verified type (and ignore the
    ones we do not act on) rather than refuse a type this SDK version does not know."""

    def __contains__(self, item) -> bool:
        return isinstance(item, str)


def _price_ref(data: dict, metadata: dict, catalog: ProviderCatalog | None) -> str:
    """Our price code: the product the subscription is on now (a change moves it to another
    product but leaves the checkout's metadata alone), else the checkout's metadata."""
    product_id = data.get("product_id") or (data.get("product") or {}).get("id")
    if product_id and catalog is not None:
        mapping = catalog.mapping_for_external(
            provider="polar", mode=None, external_product_id=str(product_id)
        )
        if mapping:
            return mapping.price_code
    return str(metadata.get("monetize_price") or "")


class PolarWebhooks:
    def verify_webhook(self, *, body: bytes, headers: dict[str, str]) -> dict:
        from polar.webhooks import PolarWebhookError, validate_event

        try:
            return validate_event(body, headers, self.webhook_secret, _AnyEventType(), lambda data: data)
        except PolarWebhookError as exc:
            raise WebhookVerificationFailed(f"Bad Polar signature: {exc}") from exc

    def event_id(self, payload: dict) -> str:
        # Standard Webhooks' webhook-id is the delivery's id; Polar's payload has no event id of its
        # own, so the event is identified by type + object + its modification time
        data = payload.get("data") or {}
        return f"{payload.get('type')}:{data.get('id')}:{data.get('modified_at') or data.get('created_at')}"

    def parse_event(self, payload: dict) -> NormalizedEvent:
        kind, data = payload.get("type", ""), payload.get("data") or {}
        occurred = (
            timestamp(data.get("modified_at")) or timestamp(data.get("created_at")) or dt.datetime.now(dt.UTC)
        )
        common = {
            "provider": self.name,
            "event_id": self.event_id(payload),
            "occurred_at": occurred,
            "raw_type": kind,
        }
        metadata = data.get("metadata") or {}
        customer = data.get("customer") or {}
        if kind.startswith("subscription."):
            status = SUBSCRIPTION_STATUS.get(data.get("status", ""), data.get("status", ""))
            if kind == "subscription.revoked":  # ended now, whatever else the payload says
                status = "canceled"
            state = SubscriptionState(
                subscription_id=str(data["id"]),
                status=status,
                customer=metadata.get("monetize_customer") or customer.get("external_id") or "",
                price_ref=_price_ref(data, metadata, self.catalog),
                quantity=int(data.get("seats") or 1),
                period_start=timestamp(data.get("current_period_start")),
                period_end=timestamp(data.get("current_period_end")),
                cancel_at_period_end=bool(data.get("cancel_at_period_end")),
                provider_customer_id=str(data.get("customer_id") or customer.get("id") or ""),
                checkout_id=str(metadata.get("monetize_checkout") or ""),
                email=str(customer.get("email") or ""),
            )
            types = {
                "subscription.created": EventType.SUBSCRIPTION_CREATED,
                "subscription.revoked": EventType.SUBSCRIPTION_CANCELED,
            }
            return NormalizedEvent(
                type=types.get(kind, EventType.SUBSCRIPTION_UPDATED), subscription=state, **common
            )  # fmt: skip
        if kind in ORDER_EVENTS:
            # a Polar order is its invoice: mirrored from every order event (a draft once finalized);
            # only a paid order is a payment (never a pending order.created), keyed on the order, so
            # order.paid and an order.updated that says paid record it once
            invoice = polar_order_invoice(data, metadata, customer)
            who = {
                "currency": str(data.get("currency", "")).lower(),
                "customer": metadata.get("monetize_customer") or customer.get("external_id") or "",
                "subscription_id": str(data.get("subscription_id") or ""),
                "provider_customer_id": str(data.get("customer_id") or customer.get("id") or ""),
                "reference": str(data["id"]),
                "invoice": str(data["id"]),
            }
            if kind == "order.refunded":
                # the order carries only its cumulative refunded amount: memberships records what the
                # refund.* events (keyed by each refund) have not, and they then record nothing twice
                refunded = int(data.get("refunded_amount") or 0)
                payment = PaymentState(
                    payment_id=f"order_refunded:{data['id']}", amount=refunded, refunded_total=refunded, **who
                )
                return NormalizedEvent(
                    type=EventType.REFUND_CREATED, payment=payment if refunded > 0 else None, invoice=invoice,
                    **common,
                )  # fmt: skip
            if data.get("paid") or data.get("status") == "paid" or kind == "order.paid":
                payment = PaymentState(
                    payment_id=str(data["id"]), amount=int(data.get("total_amount") or 0),
                    email=str(customer.get("email") or ""),
                    checkout_id=str(metadata.get("monetize_checkout") or ""),  # a one-time purchase completes it
                    fee=_platform_fee(data), **who,
                )  # fmt: skip
                return NormalizedEvent(type=EventType.ORDER_PAID, payment=payment, invoice=invoice, **common)
            if invoice is None:
                return NormalizedEvent(type=EventType.IGNORED, **common)
            return NormalizedEvent(type=EventType.INVOICE, invoice=invoice, **common)
        if kind in ("refund.created", "refund.updated"):
            # each refund keyed by its own id, against the order it refunds (order.refunded carries
            # only the order's cumulative refunded amount: the refund.* events name each refund)
            if data.get("status") != "succeeded":
                return NormalizedEvent(type=EventType.IGNORED, **common)
            payment = PaymentState(
                payment_id=f"refund:{data['id']}", amount=int(data.get("amount") or 0),
                currency=str(data.get("currency", "")).lower(),
                customer=metadata.get("monetize_customer") or customer.get("external_id") or "",
                provider_customer_id=str(data.get("customer_id") or customer.get("id") or ""),
                reference=str(data.get("order_id") or ""),
                subscription_id=str(data.get("subscription_id") or ""),
            )  # fmt: skip
            return NormalizedEvent(type=EventType.REFUND_CREATED, payment=payment, **common)
        return NormalizedEvent(type=EventType.IGNORED, **common)

    def report_usage(self, report: UsageReport) -> str:
        """A Polar event (`POST /v1/events/ingest`) named by the meter's code, for our customer
        (Polar's external customer id), the quantity in `metadata.value` (a Polar meter sums that
        property); `external_id` is our report's identifier, which Polar de-duplicates on."""
        now = dt.datetime.now(dt.UTC)
        when = max(report.period_start, min(now, report.period_end - dt.timedelta(seconds=1)))
        event = {
            "name": report.meter,
            "external_customer_id": report.customer,
            "external_id": report.report_id,
            "timestamp": when.isoformat(),
            "metadata": {
                "value": report.quantity,
                "period_start": report.period_start.isoformat(),
                "period_end": report.period_end.isoformat(),
            },
        }
        if self.organization_id:
            event["organization_id"] = self.organization_id
        with self._sdk() as sdk:
            self._call(sdk.events.ingest, events=[event])
        return report.report_id


def _platform_fee(order: dict) -> int | None:
    """What Polar kept of an order: its `platform_fee_amount` (minor units), when in the order's
    currency (`platform_fee_currency` absent means the same); None when the payload has none."""
    fee = order.get("platform_fee_amount")
    if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0:
        return None
    fee_currency = str(order.get("platform_fee_currency") or order.get("currency") or "").lower()
    return fee if fee_currency == str(order.get("currency") or "").lower() else None
