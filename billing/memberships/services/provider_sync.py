"""A provider's view of a subscription applied to our membership (from verified webhooks):
idempotent, order-tolerant, and never with a customer it cannot name."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from billing.memberships.exceptions import (
    CustomerUnmatched,
    InvalidProviderEvent,
)
from billing.memberships.models import (
    LIVE_STATUSES,
    Checkout,
    Customer,
    Membership,
    MembershipStatus,
)
from billing.memberships.services._common import (
    _end_live,
    _keep,
    _locked_memberships,
    _notify_changed,
    _price_by_code,
    _publish,
    _record,
)
from billing.memberships.services.checkout import checkout_mark_completed
from billing.providers.base import SubscriptionState


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
    A subscription that becomes live ends the customer's other live membership of the same owner
    (a plan replaces the plan; a creator's tier that creator's tier).
    Returns None for a stale event.
    """
    if state.status not in MembershipStatus.values:
        raise InvalidProviderEvent(
            f"Unknown subscription status '{state.status}'.", details={"status": state.status}
        )
    price = _price_by_code(state.price_ref)
    if price is None:
        raise InvalidProviderEvent(
            f"No price '{state.price_ref}' in the catalog.", details={"price": state.price_ref}
        )
    # no savepoint of its own: a failure propagates and rolls back the caller's block (the inbox
    # applies each event in its savepoint); called outside a transaction, this is the transaction
    with transaction.atomic(savepoint=False):
        external_id = state.customer or _customer_of_subscription(provider, state).external_id
        customer, rows = _locked_memberships(
            external_id=external_id, provider=provider, subscription_id=state.subscription_id
        )
        membership = next(
            (
                row
                for row in rows.values()
                if row.provider == provider and row.provider_subscription_id == state.subscription_id
            ),
            None,
        )
        if _stale(membership, status=state.status, occurred_at=occurred_at):
            return None
        replaced = []
        if state.status in LIVE_STATUSES:
            live = [
                row for row in rows.values() if row.customer_id == customer.pk and row.status in LIVE_STATUSES
            ]
            replaced = _end_live(
                customer, at=occurred_at, reason="replaced", creator=price.tier.creator_id, keep=membership,
                event_id=event_id, locked=live,
            )  # fmt: skip
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
        created = membership.pk is None
        membership.save()
        if created:
            _keep(customer, membership)
        _record(membership, reason=f"provider:{provider}", event_id=event_id)
        _publish([*replaced, membership], customer=customer.external_id)
        if state.checkout_id:
            checkout_mark_completed(checkout_id=state.checkout_id, occurred_at=occurred_at)
        _notify_changed(customer.external_id)
    return membership
