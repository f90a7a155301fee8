"""Membership changes staff and integrators ask for: set a tier, cancel, change, pause, portal."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from billing.memberships.exceptions import (
    MembershipNotLive,
)
from billing.memberships.models import (
    ENTITLED_STATUSES,
    LIVE_STATUSES,
    Customer,
    Membership,
    MembershipStatus,
)
from billing.memberships.services._common import (
    _change_locally,
    _end_live,
    _notify_changed,
    _publish,
    _record,
)
from billing.memberships.services.checkout import _checkout_price


def membership_set_tier(*, customer: Customer, tier) -> Membership | None:
    """Put the customer on `tier` now, without a payment (staff grant, API, enterprise deal).

    The current live membership of the tier's owner ends (a plan replaces the plan; a creator's tier
    that creator's tier); the default tier needs no membership (returns None).
    Provider-driven changes (checkout, upgrades, dunning) arrive with the payments issue.
    """
    now = timezone.now()
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        live = (
            Membership.objects.select_for_update()
            .filter(customer=customer, status__in=LIVE_STATUSES, creator_id=tier.creator_id)
            .first()
        )
        if live is not None and live.tier_id == tier.pk and live.status in ENTITLED_STATUSES:
            return live
        changed = _end_live(customer, at=now, reason="manual", creator=tier.creator_id)
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


def membership_uncancel(*, membership: Membership) -> Membership:
    """Undo a cancellation scheduled for the period end: the membership renews again. A provider
    membership is changed at the provider, whose webhook then updates it; a manual one here. Not
    scheduled to end: nothing to undo (a second click changes nothing)."""
    if membership.status not in (MembershipStatus.ACTIVE, MembershipStatus.TRIALING):
        raise MembershipNotLive(
            "Only an active or trialing membership can be kept.", details={"status": membership.status}
        )
    if not membership.cancel_at_period_end:
        return membership
    if membership.provider != "manual":
        _adapter_call(
            membership, "uncancel_subscription", subscription_id=membership.provider_subscription_id
        )
        return membership
    return _change_locally(membership, reason="uncanceled", cancel_at_period_end=False)


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
