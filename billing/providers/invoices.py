"""Provider invoices as ours: each hosted provider's invoice (Polar's and Lemon Squeezy's orders) mapped
onto `InvoiceState`, for invoicing to mirror. Pure functions of the verified payloads; amounts are
the provider's own, in minor units."""

from __future__ import annotations

from billing.providers._common import decimal_of, object_id, timestamp
from billing.providers.base import InvoiceLineState, InvoiceState, InvoiceStatus

STRIPE_STATUS = {
    "open": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "void": InvoiceStatus.VOID,
    "uncollectible": InvoiceStatus.UNCOLLECTIBLE,
}
REASONS = ("subscription_create", "subscription_cycle", "subscription_update")  # Stripe's and Polar's words
POLAR_STATUS = {
    "pending": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "refunded": InvoiceStatus.PAID,  # refunds are credit, not a status: the order was paid
    "partially_refunded": InvoiceStatus.PAID,
    "void": InvoiceStatus.VOID,
}
LEMONSQUEEZY_STATUS = {  # orders' and subscription invoices' statuses; failed and fraudulent orders bill nothing
    "pending": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "refunded": InvoiceStatus.PAID,  # refunds are credit, not a status: it was paid
    "partial_refund": InvoiceStatus.PAID,
    "void": InvoiceStatus.VOID,
}
LEMONSQUEEZY_REASONS = {"renewal": "subscription_cycle", "updated": "subscription_update"}


def _period(lines: tuple[InvoiceLineState, ...]) -> tuple:
    """The service period the invoice covers: its fee lines' (a proration's is part of it), else all."""
    dated = [line for line in lines if not line.proration and line.period_start] or list(lines)
    starts = [line.period_start for line in dated if line.period_start]
    ends = [line.period_end for line in dated if line.period_end]
    return (min(starts) if starts else None), (max(ends) if ends else None)


# --- Stripe


def stripe_invoice_metadata(invoice: dict) -> dict:
    details = (
        (invoice.get("parent") or {}).get("subscription_details") or invoice.get("subscription_details") or {}
    )
    return details.get("metadata") or invoice.get("metadata") or {}


def stripe_invoice_subscription(invoice: dict) -> str:
    details = (
        (invoice.get("parent") or {}).get("subscription_details") or invoice.get("subscription_details") or {}
    )
    return object_id(details.get("subscription") or invoice.get("subscription"))


def _sum(rows) -> int:
    return sum(int(row.get("amount") or 0) for row in rows or () if isinstance(row, dict))


def stripe_invoice(invoice: dict) -> InvoiceState | None:
    """A finalized Stripe invoice as ours (None while it is a draft). Stripe's own number is kept;
    the discount is `total_discount_amounts`, the tax `tax` (older API versions) or `total_taxes`."""
    status = STRIPE_STATUS.get(str(invoice.get("status") or ""))
    if status is None:
        return None
    lines = tuple(
        _stripe_line(line)
        for line in ((invoice.get("lines") or {}).get("data") or [])
        if isinstance(line, dict)
    )
    tax = invoice.get("tax")
    if tax is None:
        tax = _sum(invoice.get("total_taxes")) or _sum(invoice.get("total_tax_amounts"))
    period_start, period_end = _period(lines)
    reason = str(invoice.get("billing_reason") or "")
    return InvoiceState(
        invoice_id=str(invoice["id"]),
        status=status,
        currency=str(invoice.get("currency") or "").lower(),
        number=str(invoice.get("number") or ""),
        subtotal=int(invoice.get("subtotal") or 0),
        discount=_sum(invoice.get("total_discount_amounts")),
        tax=int(tax or 0),
        total=int(invoice.get("total") or 0),
        amount_paid=int(invoice.get("amount_paid") or 0),
        customer=stripe_invoice_metadata(invoice).get("monetize_customer", ""),
        provider_customer_id=object_id(invoice.get("customer")),
        subscription_id=stripe_invoice_subscription(invoice),
        email=str(invoice.get("customer_email") or ""),
        billing_reason=reason if reason in REASONS else "manual",
        period_start=period_start or timestamp(invoice.get("period_start")),
        period_end=period_end or timestamp(invoice.get("period_end")),
        lines=lines,
    )


def _stripe_line(line: dict) -> InvoiceLineState:
    """One Stripe invoice line: the price (and its lookup_key = our price code) on the line in older
    API versions, under `pricing.price_details` in newer ones; the proration flag likewise."""
    price = line.get("price") or ((line.get("pricing") or {}).get("price_details") or {}).get("price") or {}
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    unit = (line.get("pricing") or {}).get("unit_amount_decimal")
    if unit is None and isinstance(price, dict):
        unit = price.get("unit_amount_decimal", price.get("unit_amount"))
    period = line.get("period") or {}
    return InvoiceLineState(
        description=str(line.get("description") or ""),
        amount=int(line.get("amount") or 0),
        quantity=decimal_of(line.get("quantity_decimal") or line.get("quantity"), default=1),
        unit_amount=decimal_of(unit),
        period_start=timestamp(period.get("start")),
        period_end=timestamp(period.get("end")),
        proration=bool(line.get("proration") or details.get("proration")),
        price_ref=str(price.get("lookup_key") or "") if isinstance(price, dict) else "",
        provider_price_id=object_id(price),
    )


# --- Polar


def polar_order_invoice(order: dict, metadata: dict, customer: dict) -> InvoiceState | None:
    """A Polar order as an invoice (None while a draft): Polar's invoice number, its own amounts
    (Polar is the merchant of record and computes the tax), one line per order item."""
    status = POLAR_STATUS.get(str(order.get("status") or ""))
    if status is None:
        return None
    lines = tuple(
        InvoiceLineState(
            description=str(item.get("label") or order.get("description") or ""),
            amount=int(item.get("amount") or 0),
            proration=bool(item.get("proration")),
            period_start=timestamp(item.get("start_timestamp")),
            period_end=timestamp(item.get("end_timestamp")),
            provider_price_id=str(item.get("product_price_id") or ""),
        )
        for item in order.get("items") or ()
        if isinstance(item, dict)
    )
    period_start, period_end = _period(lines)
    return InvoiceState(
        invoice_id=str(order["id"]),
        status=status,
        currency=str(order.get("currency") or "").lower(),
        number=str(order.get("invoice_number") or ""),
        subtotal=int(order.get("subtotal_amount") or 0),
        discount=int(order.get("discount_amount") or 0),
        tax=int(order.get("tax_amount") or 0),
        total=int(order.get("total_amount") or 0),
        amount_paid=int(order.get("total_amount") or 0) if order.get("paid") else 0,
        customer=metadata.get("monetize_customer") or customer.get("external_id") or "",
        provider_customer_id=str(order.get("customer_id") or customer.get("id") or ""),
        subscription_id=str(order.get("subscription_id") or ""),
        email=str(customer.get("email") or ""),
        billing_reason=str(order.get("billing_reason"))
        if order.get("billing_reason") in REASONS
        else "manual",
        period_start=period_start,
        period_end=period_end,
        lines=lines,
    )


# --- Lemon Squeezy


def lemonsqueezy_invoice(
    invoice_id: str, attributes: dict, custom: dict, *, number: str, lines: tuple, subscription_id: str = ""
) -> InvoiceState | None:
    """A Lemon Squeezy order or subscription invoice as ours (None for a failed or fraudulent order):
    its own amounts (Lemon Squeezy is the merchant of record and computes the tax)."""
    status = LEMONSQUEEZY_STATUS.get(str(attributes.get("status") or ""))
    if status is None:
        return None
    total = int(attributes.get("total") or 0)
    return InvoiceState(
        invoice_id=invoice_id,
        status=status,
        currency=str(attributes.get("currency") or "").lower(),
        number=number,
        subtotal=int(attributes.get("subtotal") or 0),
        discount=int(attributes.get("discount_total") or 0),
        tax=int(attributes.get("tax") or 0),
        total=total,
        amount_paid=total if status == InvoiceStatus.PAID else 0,
        customer=str(custom.get("monetize_customer") or ""),
        provider_customer_id=str(attributes.get("customer_id") or ""),
        subscription_id=subscription_id,
        email=str(attributes.get("user_email") or ""),
        billing_reason=LEMONSQUEEZY_REASONS.get(str(attributes.get("billing_reason") or ""), "manual"),
        lines=lines,
    )


def lemonsqueezy_order_line(attributes: dict, *, price_ref: str) -> InvoiceLineState:
    """An order's one item (`first_order_item`) as its line; the variant is the provider's price."""
    item = attributes.get("first_order_item") or {}
    names = [str(item.get(key) or "") for key in ("product_name", "variant_name")]
    return InvoiceLineState(
        description=" – ".join(name for name in names if name) or "Order",
        amount=int(attributes.get("subtotal") or 0),
        quantity=decimal_of(item.get("quantity"), default=1),
        unit_amount=decimal_of(item.get("price")),
        price_ref=price_ref,
        provider_price_id=str(item.get("variant_id") or ""),
    )
