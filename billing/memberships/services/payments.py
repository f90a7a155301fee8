"""Payments a provider reports (charges, refunds, disputes), recorded once each."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from django.db import transaction
from django.db.models import Q, Sum

from billing.memberships.exceptions import (
    CustomerUnmatched,
    PaymentCustomerUnknown,
)
from billing.memberships.models import (
    Membership,
    MembershipStatus,
    Payment,
    PaymentKind,
)
from billing.memberships.services._common import _notify_changed, _publish, _record
from billing.memberships.services.checkout import checkout_complete
from billing.memberships.services.customers import customer_upsert
from billing.memberships.services.provider_sync import _customer_of_provider
from billing.memberships.signals import payment_recorded
from billing.providers.base import PaymentState

logger = logging.getLogger(__name__)

_PAYMENT_KINDS = {
    "payment.succeeded": PaymentKind.CHARGE,
    "order.paid": PaymentKind.CHARGE,
    "payment.failed": PaymentKind.FAILED,
    "refund.created": PaymentKind.REFUND,
    "dispute.created": PaymentKind.DISPUTE,
    "dispute.won": PaymentKind.DISPUTE_WON,
    "dispute.lost": PaymentKind.DISPUTE_LOST,
}


_PAYMENT_EVENTS = {
    PaymentKind.CHARGE: "payment.succeeded",
    PaymentKind.FAILED: "payment.failed",
    PaymentKind.REFUND: "payment.refunded",
    PaymentKind.DISPUTE: "payment.disputed",
    PaymentKind.DISPUTE_WON: "payment.dispute_closed",
    PaymentKind.DISPUTE_LOST: "payment.dispute_closed",
}


def payment_record(
    *, provider: str, event_type: str, payment: PaymentState, occurred_at: dt.datetime, event_id: str
) -> Payment | None:
    """Record a provider-reported charge, failed charge, refund or dispute once (unique per the
    provider's id of that object and its kind: a redelivery records nothing, each partial refund is
    its own row) and tell the integrator (`payment.succeeded` / `.failed` / `.refunded` /
    `.disputed` / `.dispute_closed`). A refund or dispute belongs to the charge its `reference`
    names. A $0 charge (a trial's first invoice) is no payment. A payment whose subscription or
    charge we have not applied yet fails (the inbox retries it after that event); one that names
    none of our customers at all is CustomerUnmatched (parked for staff)."""
    kind = _PAYMENT_KINDS.get(event_type)
    if kind is None or (kind == PaymentKind.CHARGE and payment.amount == 0):
        return None
    with transaction.atomic():
        refs = [ref for ref in (payment.reference, payment.intent) if ref]
        charge = (
            Payment.objects.filter(
                # the charge's reference (Stripe's intent or charge), or its own id (our engines')
                Q(reference__in=refs) | Q(provider_payment_id__in=refs),
                provider=provider,
                kind=PaymentKind.CHARGE,
            )
            .select_related("customer", "membership")
            .order_by("id")
            .first()
            if (payment.reference or payment.intent) and kind not in (PaymentKind.CHARGE, PaymentKind.FAILED)
            else None
        )
        # a refund whose money a cumulative figure already recorded: what the integrator has not been
        # told yet (None: all of it), and no second credit note for it
        announce, notify = None, True
        if kind == PaymentKind.REFUND and payment.reference:
            if charge is not None:
                # one refund of a charge at a time: a cumulative figure and a refund of the same
                # money may be applied concurrently
                Payment.objects.select_for_update().filter(pk=charge.pk).first()
            if payment.refunded_total is not None:
                payment = _refund_catch_up(provider, payment)
                if payment is None:
                    return None
            else:
                claimed = _refund_claim(provider, payment)
                if isinstance(claimed, Payment):
                    return claimed  # the figure's row became this refund's: told and credited already
                if claimed is not None:
                    announce, notify = claimed, False
        membership = charge.membership if charge is not None else None
        if payment.subscription_id:
            membership = (
                Membership.objects.filter(provider=provider, provider_subscription_id=payment.subscription_id)
                .select_related("customer")
                .first()
            )
            if membership is None:
                # the subscription's own event has not been applied yet (providers do not keep
                # order): fail, so the inbox retries this one after it -- never recorded unlinked
                raise PaymentCustomerUnknown(
                    f"No membership yet for {provider} subscription {payment.subscription_id}."
                )
        if payment.customer:
            customer, _ = customer_upsert(external_id=payment.customer)
        elif membership is not None or charge is not None:
            customer = membership.customer if membership is not None else charge.customer
        else:
            customer = _customer_of_provider(
                provider, provider_customer_id=payment.provider_customer_id, email=payment.email
            )
            if customer is None:
                if payment.reference and kind not in (PaymentKind.CHARGE, PaymentKind.FAILED):
                    raise PaymentCustomerUnknown(  # its charge's event is still on the way: retried
                        f"No {provider} charge '{payment.reference}' recorded yet for {payment.payment_id}.",
                        awaits=payment.reference,
                    )
                if payment.provider_customer_id:
                    raise PaymentCustomerUnknown(
                        f"No membership yet for {provider} customer {payment.provider_customer_id}."
                    )
                raise CustomerUnmatched(
                    f"The {provider} payment {payment.payment_id} names none of our customers.",
                    details={"payment": payment.payment_id},
                )
        row, created = Payment.objects.get_or_create(
            provider=provider,
            provider_payment_id=payment.payment_id,
            kind=kind,
            defaults={
                "customer": customer, "membership": membership, "amount": payment.amount,
                "fee_amount": max(payment.fee or 0, 0) if kind == PaymentKind.CHARGE else 0,
                "currency": payment.currency, "occurred_at": occurred_at, "event_id": event_id,
                "reference": payment.reference or payment.intent, "invoice_ref": payment.invoice,
                "disputed": charge if kind in (PaymentKind.DISPUTE, PaymentKind.DISPUTE_WON, PaymentKind.DISPUTE_LOST) else None,
            },
        )  # fmt: skip
        if not created:
            return row
        from billing.events.services import event_publish

        data = {"customer": customer.external_id, "amount": row.amount if announce is None else announce,
                "currency": row.currency, "provider": provider,
                "payment_id": row.provider_payment_id, "membership": membership.pk if membership else None}  # fmt: skip
        if kind in (
            PaymentKind.REFUND,
            PaymentKind.DISPUTE,
            PaymentKind.DISPUTE_WON,
            PaymentKind.DISPUTE_LOST,
        ):
            data["charge"] = charge.provider_payment_id if charge is not None else None
        if kind in (PaymentKind.DISPUTE_WON, PaymentKind.DISPUTE_LOST):
            data["outcome"] = "won" if kind == PaymentKind.DISPUTE_WON else "lost"
        if announce != 0:
            event_publish(type=_PAYMENT_EVENTS[kind], payload=data, customer=customer.external_id)
        if notify:
            payment_recorded.send(sender=Payment, payment=row, charge=charge, checkout_id=payment.checkout_id)
        if kind == PaymentKind.CHARGE and membership is not None:
            _recover(membership, occurred_at=occurred_at, event_id=event_id)
        if payment.checkout_id and kind == PaymentKind.CHARGE:
            checkout_complete(
                provider=provider,
                checkout_id=payment.checkout_id,
                occurred_at=occurred_at,
                provider_customer_id=payment.provider_customer_id,
                event_id=event_id,
            )
    return row


REFUNDED_TOTAL_PREFIX = "refunded_total:"


def _refunds_of(provider: str, reference: str):
    """The refunds recorded against the money movement `reference` names (a refund stores it)."""
    return Payment.objects.filter(provider=provider, kind=PaymentKind.REFUND, reference=reference)


def _refund_catch_up(provider: str, payment: PaymentState) -> PaymentState | None:
    """A cumulative refund figure (Polar's order.refunded, Lemon Squeezy's order_refunded and
    subscription_payment_refunded: the refunded amount so far, no refund id) becomes a refund of what the recorded refunds do not cover yet, keyed by the figure;
    None when they cover it (an older or redelivered figure, or refund.* events came first)."""
    key = f"{REFUNDED_TOTAL_PREFIX}{payment.reference}:{payment.refunded_total}"
    if Payment.objects.filter(provider=provider, provider_payment_id=key, kind=PaymentKind.REFUND).exists():
        return replace(payment, payment_id=key)  # recorded: get_or_create finds it
    recorded = _refunds_of(provider, payment.reference).aggregate(total=Sum("amount"))["total"] or 0
    missing = payment.refunded_total - recorded
    if missing <= 0:
        return None
    return replace(payment, payment_id=key, amount=missing)


def _refund_claim(provider: str, payment: PaymentState) -> Payment | int | None:
    """A refund with its own id (Polar's refund.created) whose money a cumulative figure already
    recorded (an earlier order.refunded) takes that money over, so the charge's refunds add up to
    what was refunded, once: the figure's row of exactly its amount becomes its row (returned: it
    was told and credited as the figure); else the figure's rows shrink by what they cover (kept,
    at 0 if need be: a credit note may name them) and the refund gets its own row, and the part
    they did not cover is returned, for the integrator. None: nothing covered it."""
    if Payment.objects.filter(
        provider=provider, provider_payment_id=payment.payment_id, kind=PaymentKind.REFUND
    ).exists():
        return None
    covering = list(
        _refunds_of(provider, payment.reference)
        .filter(provider_payment_id__startswith=REFUNDED_TOTAL_PREFIX, amount__gt=0)
        .select_for_update()
        .order_by("id")
    )
    exact = next((row for row in covering if row.amount == payment.amount), None)
    if exact is not None:
        exact.provider_payment_id = payment.payment_id
        exact.save(update_fields=["provider_payment_id"])
        return exact
    covered = min(payment.amount, sum(row.amount for row in covering))
    if covered <= 0:
        return None
    remaining = covered
    for row in covering:
        take = min(row.amount, remaining)
        if take:
            row.amount -= take
            row.save(update_fields=["amount"])
            remaining -= take
    if covered < payment.amount:
        logger.warning(
            "%s refund %s: %s of %s was recorded from the order's refunded total; no credit note for the rest",
            provider, payment.payment_id, covered, payment.amount,
        )  # fmt: skip
    return payment.amount - covered


def _recover(membership: Membership, *, occurred_at: dt.datetime, event_id: str) -> None:
    """A payment made after the membership fell past due (a recovered renewal) ends `past_due`."""
    membership = Membership.objects.select_for_update().select_related("tier").get(pk=membership.pk)
    if membership.status != MembershipStatus.PAST_DUE or (
        membership.past_due_since and occurred_at < membership.past_due_since
    ):
        return
    membership.status, membership.past_due_since = MembershipStatus.ACTIVE, None
    membership.save(update_fields=["status", "past_due_since", "updated_at"])
    _record(membership, reason="payment_recovered", event_id=event_id)
    customer = membership.customer.external_id
    _publish([membership], customer=customer)
    _notify_changed(customer)
