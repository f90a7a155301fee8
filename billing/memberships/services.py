"""Writes for customers (memberships arrive with the payments issue)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.memberships.exceptions import (
    CheckoutInvalid,
    CustomerUnmatched,
    InvalidProviderEvent,
    MembershipNotLive,
    PaymentCustomerUnknown,
)
from billing.memberships.models import (
    ENTITLED_STATUSES,
    LIVE_STATUSES,
    Checkout,
    CheckoutStatus,
    Customer,
    Membership,
    MembershipHistory,
    MembershipStatus,
    Payment,
    PaymentKind,
)
from billing.memberships.signals import membership_changed
from billing.providers.base import PaymentState, SubscriptionState
from billing.tiers.models import Interval, Price
from billing.tiers.selectors import tier_get

_UNSET: Any = object()


def _merge_metadata(current: dict, changes: dict) -> dict:
    """Stripe-style metadata update: keys are merged; a key set to null is removed."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def customer_upsert(
    *,
    external_id: str,
    email: str | None = None,
    name: str | None = None,
    metadata: dict | None = None,
    user=None,
    tier_code: str | None = None,
) -> tuple[Customer, bool]:
    """Create the customer or update the fields given; with `tier_code`, also put it on that tier
    (membership_set_tier). Returns (customer, created). All or nothing; safe under concurrency: a
    race on the unique external_id ends in one row.
    """
    with transaction.atomic():
        tier = tier_get(code=tier_code) if tier_code else None  # an unknown tier changes nothing
        customer, created = Customer.objects.select_for_update().get_or_create(
            external_id=external_id,
            defaults={"email": email or "", "name": name or "", "metadata": metadata or {}, "user": user},
        )
        if not created:
            customer = customer_update(customer=customer, email=email, name=name, metadata=metadata)
        if tier is not None:
            membership_set_tier(customer=customer, tier=tier)
    return customer, created


def customer_update(
    *, customer: Customer, email: str | None = None, name: str | None = None, metadata: dict | None = None
) -> Customer:
    changed = []
    if email is not None and email != customer.email:
        customer.email, changed = email, [*changed, "email"]
    if name is not None and name != customer.name:
        customer.name, changed = name, [*changed, "name"]
    if metadata:
        merged = _merge_metadata(customer.metadata, metadata)
        if merged != customer.metadata:
            customer.metadata, changed = merged, [*changed, "metadata"]
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
    return customer


def customer_patch(*, external_id: str, **changes) -> Customer:
    """Update a customer found by external_id (locked for the change)."""
    from billing.memberships.selectors import customer_get_for_update

    with transaction.atomic():
        return customer_update(customer=customer_get_for_update(external_id=external_id), **changes)


def customer_for_user(*, user) -> Customer:
    """The customer record of a person who signed up on the tenant's site (created at sign-up)."""
    customer, _ = customer_upsert(external_id=f"user_{user.pk}", email=user.email, user=user)
    return customer


def membership_set_tier(*, customer: Customer, tier) -> Membership | None:
    """Put the customer on `tier` now, without a payment (staff grant, API, enterprise deal).

    The current live membership ends; the default tier needs no membership (returns None).
    Provider-driven changes (checkout, upgrades, dunning) arrive with the payments issue.
    """
    now = timezone.now()
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        live = (
            Membership.objects.select_for_update().filter(customer=customer, status__in=LIVE_STATUSES).first()
        )
        if live is not None and live.tier_id == tier.pk and live.status in ENTITLED_STATUSES:
            return live
        changed = _end_live(customer, at=now, reason="manual")
        membership = None
        if not tier.is_default:
            membership = Membership.objects.create(
                customer=customer, tier=tier, status=MembershipStatus.ACTIVE, started_at=now
            )
            _record(membership, reason="manual")
            changed.append(membership)
        _publish(changed, customer=customer.external_id)
        _notify_changed(customer.external_id)
    return membership


def _end_live(
    customer: Customer, *, at: dt.datetime, reason: str, keep: Membership | None = None, event_id: str = ""
) -> list[Membership]:
    """End the customer's live memberships (but `keep`): at most one live membership per customer."""
    ended = []
    for other in Membership.objects.select_for_update().filter(customer=customer, status__in=LIVE_STATUSES):
        if keep is None or other.pk != keep.pk:
            other.status, other.ended_at = MembershipStatus.CANCELED, at
            other.save(update_fields=["status", "ended_at", "updated_at"])
            _record(other, reason=reason, event_id=event_id)
            ended.append(other)
    return ended


def _change_locally(membership: Membership, *, reason: str, **fields) -> Membership:
    """Apply a change to a manual membership (no provider to ask): lock, set, record, tell."""
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update().select_related("customer", "tier").get(pk=membership.pk)
        )
        for name, value in fields.items():
            setattr(membership, name, value)
        membership.save()
        _record(membership, reason=reason)
        _publish([membership], customer=membership.customer.external_id)
        _notify_changed(membership.customer.external_id)
    return membership


def _publish(memberships: list[Membership], *, customer: str) -> None:
    """Tell the integrator's webhook endpoints: `membership.updated` per membership that changed,
    then one `entitlements.changed` (billing.events.services; endpoints are read once)."""
    from billing.events.services import active_endpoints, event_publish

    endpoints = active_endpoints()
    if not endpoints or not memberships:
        return
    for membership in memberships:
        data = {
            "id": membership.pk,
            "customer": customer,
            "tier": membership.tier.code,
            "status": membership.status,
            "provider": membership.provider,
            "quantity": membership.quantity,
            "current_period_end": membership.current_period_end,
            "cancel_at_period_end": membership.cancel_at_period_end,
        }
        event_publish(type="membership.updated", payload=data, customer=customer, endpoints=endpoints)
    event_publish(
        type="entitlements.changed", payload={"customer": customer}, customer=customer, endpoints=endpoints
    )


def _notify_changed(external_id: str) -> None:
    """Tell listeners now (readers inside this transaction see the change) and again on commit
    (readers that rebuilt a cache from pre-commit data in between are invalidated)."""
    membership_changed.send(sender=Membership, external_id=external_id)
    transaction.on_commit(
        lambda: membership_changed.send(sender=Membership, external_id=external_id, committed=True)
    )


def _record(membership: Membership, *, reason: str, event_id: str = "") -> None:
    MembershipHistory.objects.create(
        membership=membership,
        status=membership.status,
        tier_id=membership.tier_id,
        quantity=membership.quantity,
        reason=reason,
        event_id=event_id,
    )


def _customer_of_provider(
    provider: str, *, subscription_id: str = "", provider_customer_id: str = "", email: str = ""
) -> Customer | None:
    """Our customer of a provider object that carries none of our custom data (a subscription made
    in the provider's dashboard, an event without metadata): through the subscription we know, the
    provider customer id a membership or checkout of ours stored, or else one customer with that
    email. None when nothing names one."""
    if subscription_id:
        known = (
            Membership.objects.filter(provider=provider, provider_subscription_id=subscription_id)
            .select_related("customer")
            .first()
        )
        if known is not None:
            return known.customer
    if provider_customer_id:
        known = (
            Membership.objects.filter(provider=provider, provider_customer_id=provider_customer_id)
            .select_related("customer")
            .order_by("-id")
            .first()
        ) or (
            Checkout.objects.filter(provider=provider, provider_customer_id=provider_customer_id)
            .select_related("customer")
            .order_by("-created_at")
            .first()
        )
        if known is not None:
            return known.customer
    if email:
        found = list(Customer.objects.filter(email__iexact=email)[:2])
        if len(found) == 1:
            return found[0]
    return None


def _customer_of_subscription(provider: str, state: SubscriptionState) -> Customer:
    known = _customer_of_provider(
        provider,
        subscription_id=state.subscription_id,
        provider_customer_id=state.provider_customer_id,
        email=state.email,
    )
    if known is None:
        raise CustomerUnmatched(
            f"The {provider} subscription {state.subscription_id} names none of our customers: no "
            f"metadata, no known {provider} customer '{state.provider_customer_id or '-'}', no single "
            f"customer with email '{state.email or '-'}'. Link the customer, then replay the event.",
            details={"subscription": state.subscription_id, "provider_customer": state.provider_customer_id},
        )
    return known


# within one timestamp (Stripe's `created` has one-second resolution) a subscription only moves
# forward through these: a same-second event of a lower rank is older, whatever order it arrives in
_STATUS_RANK = {
    MembershipStatus.INCOMPLETE: 0,
    MembershipStatus.TRIALING: 1,
    MembershipStatus.ACTIVE: 2,
    MembershipStatus.PAST_DUE: 2,
    MembershipStatus.PAUSED: 2,
    MembershipStatus.CANCELED: 3,
    MembershipStatus.EXPIRED: 3,
}


def _stale(membership: Membership | None, *, status: str, occurred_at: dt.datetime) -> bool:
    """Is this provider event older than what the membership already shows?"""
    if membership is None or not membership.provider_event_at:
        return False
    if occurred_at != membership.provider_event_at:
        return occurred_at < membership.provider_event_at
    return _STATUS_RANK.get(status, 0) < _STATUS_RANK.get(membership.status, 0)


def membership_sync_from_provider(
    *, provider: str, state: SubscriptionState, occurred_at: dt.datetime, event_id: str
) -> Membership | None:
    """Apply a provider's view of a subscription (from a verified webhook).

    Idempotent and order-tolerant: an event older than the newest one applied to this
    subscription changes nothing, so duplicates and shuffled deliveries end in the same state;
    within the same timestamp the status decides (a subscription never goes back from active to
    incomplete), never the arrival order. A subscription that names none of our customers
    (CustomerUnmatched) is parked by the inbox for staff, never given an empty customer id.
    A subscription that becomes live ends the customer's other live membership.
    Returns None for a stale event.
    """
    if state.status not in MembershipStatus.values:
        raise InvalidProviderEvent(
            f"Unknown subscription status '{state.status}'.", details={"status": state.status}
        )
    price = (
        Price.objects.filter(code=state.price_ref).select_related("tier").order_by("-active", "-id").first()
    )
    if price is None:
        raise InvalidProviderEvent(
            f"No price '{state.price_ref}' in the catalog.", details={"price": state.price_ref}
        )
    with transaction.atomic():
        external_id = state.customer or _customer_of_subscription(provider, state).external_id
        customer, _ = customer_upsert(external_id=external_id)  # locks the customer row: one change at a time
        membership = (
            Membership.objects.select_for_update()
            .filter(provider=provider, provider_subscription_id=state.subscription_id)
            .first()
        )
        if _stale(membership, status=state.status, occurred_at=occurred_at):
            return None
        replaced = []
        if state.status in LIVE_STATUSES:
            replaced = _end_live(
                customer, at=occurred_at, reason="replaced", keep=membership, event_id=event_id
            )
        if membership is None:
            membership = Membership(
                customer=customer,
                provider=provider,
                provider_subscription_id=state.subscription_id,
                started_at=state.period_start or occurred_at,
            )
        membership.tier, membership.price = price.tier, price
        membership.status, membership.quantity = state.status, state.quantity
        membership.current_period_start, membership.current_period_end = state.period_start, state.period_end
        membership.cancel_at_period_end = state.cancel_at_period_end
        membership.provider_customer_id = state.provider_customer_id or membership.provider_customer_id
        membership.provider_event_at = occurred_at
        if state.status == MembershipStatus.PAST_DUE:
            membership.past_due_since = membership.past_due_since or occurred_at
        else:
            membership.past_due_since = None
        if (
            state.status in (MembershipStatus.CANCELED, MembershipStatus.EXPIRED)
            and membership.ended_at is None
        ):
            membership.ended_at = occurred_at
        membership.save()
        _record(membership, reason=f"provider:{provider}", event_id=event_id)
        _publish([*replaced, membership], customer=customer.external_id)
        if state.checkout_id:
            Checkout.objects.filter(pk=state.checkout_id, status=CheckoutStatus.OPEN).update(
                status=CheckoutStatus.COMPLETED, completed_at=occurred_at
            )
        _notify_changed(customer.external_id)
    return membership


CHECKOUT_LIFETIME = dt.timedelta(hours=24)


def checkout_create(
    *,
    customer: Customer,
    success_url: str,
    cancel_url: str,
    price_code: str | None = None,
    tier_code: str | None = None,
    provider: str | None = None,
    quantity: int = 1,
) -> Checkout:
    """Start a checkout at the tenant's provider (the default one unless `provider` is named).
    With a tier, its active monthly price is used (else its cheapest active price)."""
    from billing.providers.base import CheckoutRequest
    from billing.providers.registry import provider_for
    from billing.providers.selectors import provider_account_for_checkout

    price = _checkout_price(price_code=price_code, tier_code=tier_code)
    account = provider_account_for_checkout(provider=provider)
    with transaction.atomic():
        checkout = Checkout.objects.create(
            customer=customer,
            price=price,
            provider=account.provider,
            quantity=quantity,
            success_url=success_url,
            cancel_url=cancel_url,
            expires_at=timezone.now() + CHECKOUT_LIFETIME,
        )
        session = provider_for(account).create_checkout(
            CheckoutRequest(
                checkout_id=str(checkout.pk),
                customer=customer.external_id,
                email=customer.email,
                price_ref=price.code,
                unit_amount=price.unit_amount,
                currency=price.currency,
                interval=price.interval,
                quantity=quantity,
                trial_days=price.trial_days,
                success_url=success_url,
                cancel_url=cancel_url,
            )
        )
        checkout.provider_checkout_id, checkout.url = session.provider_checkout_id, session.url
        checkout.save(update_fields=["provider_checkout_id", "url"])
    return checkout


def _checkout_price(*, price_code: str | None, tier_code: str | None) -> Price:
    if price_code:
        price = Price.objects.filter(code=price_code, active=True).select_related("tier").first()
        if price is None:
            raise CheckoutInvalid(f"No active price '{price_code}'.", details={"price": price_code})
    elif tier_code:
        tier = tier_get(code=tier_code)
        prices = list(
            tier.prices.filter(active=True).exclude(interval="one_time").order_by("unit_amount", "id")
        )
        price = next((p for p in prices if p.interval == "month"), prices[0] if prices else None)
        if price is None:
            raise CheckoutInvalid(
                f"Tier '{tier_code}' has no recurring price to check out.", details={"tier": tier_code}
            )
    else:
        raise CheckoutInvalid("Give a tier or a price.")
    if not price.code:
        raise CheckoutInvalid("Only prices with a code can be checked out.", details={"price": price.pk})
    return price


def checkouts_expire(*, now: dt.datetime | None = None) -> int:
    """Open checkouts past their expiry become expired (beat, hourly)."""
    return Checkout.objects.filter(status=CheckoutStatus.OPEN, expires_at__lte=now or timezone.now()).update(
        status=CheckoutStatus.EXPIRED
    )


def membership_cancel(*, membership: Membership, at_period_end: bool) -> Membership:
    """Cancel now or at the end of the period. A provider membership is canceled at the provider,
    whose webhook then updates it (as every provider change does); a manual one is changed here."""
    if membership.status not in LIVE_STATUSES:
        raise MembershipNotLive("This membership has already ended.", details={"status": membership.status})
    if membership.provider != "manual":
        _adapter_call(
            membership,
            "cancel_subscription",
            subscription_id=membership.provider_subscription_id,
            at_period_end=at_period_end,
        )
        return membership
    if at_period_end and membership.current_period_end:
        return _change_locally(membership, reason="canceled", cancel_at_period_end=True)
    return _change_locally(
        membership, reason="canceled", status=MembershipStatus.CANCELED, ended_at=timezone.now()
    )


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
        charge = (
            Payment.objects.filter(
                provider=provider,
                reference__in=[ref for ref in (payment.reference, payment.intent) if ref],
                kind=PaymentKind.CHARGE,
            )
            .select_related("customer", "membership")
            .order_by("id")
            .first()
            if (payment.reference or payment.intent) and kind not in (PaymentKind.CHARGE, PaymentKind.FAILED)
            else None
        )
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
                        f"No {provider} charge '{payment.reference}' recorded yet for {payment.payment_id}."
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
                "currency": payment.currency, "occurred_at": occurred_at, "event_id": event_id,
                "reference": payment.reference or payment.intent,
                "disputed": charge if kind in (PaymentKind.DISPUTE, PaymentKind.DISPUTE_WON, PaymentKind.DISPUTE_LOST) else None,
            },
        )  # fmt: skip
        if not created:
            return row
        from billing.events.services import event_publish

        data = {"customer": customer.external_id, "amount": row.amount, "currency": row.currency, "provider": provider,
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
        event_publish(type=_PAYMENT_EVENTS[kind], payload=data, customer=customer.external_id)
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


def checkout_complete(
    *,
    provider: str,
    checkout_id: str,
    occurred_at: dt.datetime,
    provider_customer_id: str = "",
    event_id: str = "",
) -> Checkout | None:
    """The provider reports our checkout paid: mark it completed (once), remember the provider's
    customer it made (later events that carry no metadata name only that), and grant what a
    one-time price buys: its tier, with no end (a recurring price's membership follows its
    subscription's events instead)."""
    try:
        uuid.UUID(str(checkout_id))
    except ValueError:
        return None
    with transaction.atomic():
        checkout = (
            Checkout.objects.select_for_update()
            .select_related("customer", "price__tier")
            .filter(pk=checkout_id, provider=provider)
            .first()
        )
        if checkout is None:
            return None
        if provider_customer_id and not checkout.provider_customer_id:
            checkout.provider_customer_id = provider_customer_id
            checkout.save(update_fields=["provider_customer_id"])
        if checkout.status == CheckoutStatus.COMPLETED:
            return checkout
        checkout.status, checkout.completed_at = CheckoutStatus.COMPLETED, occurred_at
        checkout.save(update_fields=["status", "completed_at"])
        if checkout.price.interval == Interval.ONE_TIME:
            customer = checkout.customer
            Customer.objects.select_for_update().filter(pk=customer.pk).first()
            changed = _end_live(customer, at=occurred_at, reason="replaced", event_id=event_id)
            membership = Membership.objects.create(
                customer=customer, tier=checkout.price.tier, price=checkout.price, provider=provider,
                provider_customer_id=provider_customer_id, status=MembershipStatus.ACTIVE,
                quantity=checkout.quantity, started_at=occurred_at, provider_event_at=occurred_at,
            )  # fmt: skip
            _record(membership, reason=f"purchase:{provider}", event_id=event_id)
            _publish([*changed, membership], customer=customer.external_id)
            _notify_changed(customer.external_id)
    return checkout


def _provider(membership: Membership):
    from billing.providers.registry import provider_for
    from billing.providers.selectors import provider_account_for_checkout

    return provider_for(provider_account_for_checkout(provider=membership.provider))


def _adapter_call(membership: Membership, method: str, **kwargs):
    """Call a provider adapter operation, or say clearly that this adapter does not offer it yet."""
    from billing.providers.base import ProviderNotSupported

    adapter = _provider(membership)
    if not hasattr(adapter, method):
        raise ProviderNotSupported(
            f"The {membership.provider} adapter cannot {method.replace('_', ' ')} yet.",
            code="provider_not_supported",
        )
    return getattr(adapter, method)(**kwargs)


def membership_change(
    *,
    membership: Membership,
    price_code: str | None = None,
    tier_code: str | None = None,
    quantity: int | None = None,
) -> str:
    """Change tier, price or seats. Upgrades apply now (prorated where the provider does it),
    downgrades at the end of the period. Returns "now" or "at_period_end". A provider membership
    follows its provider's webhooks; a manual one changes here, at once."""
    if membership.status not in ENTITLED_STATUSES:
        raise MembershipNotLive(
            "Only an active, trialing or past-due membership can change.",
            details={"status": membership.status},
        )
    price = (
        _checkout_price(price_code=price_code, tier_code=tier_code)
        if (price_code or tier_code)
        else membership.price
    )
    quantity = quantity or membership.quantity
    if membership.provider == "manual" or price is None:
        tier_fields = {"tier": price.tier, "price": price} if price is not None else {}
        _change_locally(membership, reason="changed", quantity=quantity, **tier_fields)
        return "now"
    return _adapter_call(
        membership,
        "change_subscription",
        subscription_id=membership.provider_subscription_id,
        price_ref=price.code,
        unit_amount=price.unit_amount,
        interval=price.interval,
        quantity=quantity,
    )


def membership_pause(*, membership: Membership, paused: bool) -> Membership:
    """Pause (entitlements fall back to the default tier) or resume."""
    allowed = ENTITLED_STATUSES if paused else (MembershipStatus.PAUSED,)
    if membership.status not in allowed:
        raise MembershipNotLive(
            f"A {membership.status} membership cannot be {'paused' if paused else 'resumed'}.",
            details={"status": membership.status},
        )
    if membership.provider != "manual":
        _adapter_call(
            membership,
            "pause_subscription",
            subscription_id=membership.provider_subscription_id,
            paused=paused,
        )
        return membership
    return _change_locally(
        membership,
        reason="paused" if paused else "resumed",
        status=MembershipStatus.PAUSED if paused else MembershipStatus.ACTIVE,
    )


def membership_portal_url(*, membership: Membership) -> str:
    """The provider's customer-portal link for this membership (relative for the sandbox)."""
    if membership.provider == "manual":
        raise MembershipNotLive("A manual membership has no provider portal.", code="no_portal")
    return _adapter_call(
        membership,
        "portal_url",
        customer=membership.customer.external_id,
        provider_customer_id=membership.provider_customer_id,
    )
