"""What the customer's own pages say about their membership: one state per situation, its words,
its date and the actions it offers (pure reads; the views render them, the tests read them)."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings

from billing.memberships.models import Membership, MembershipStatus

# providers whose customers can change their saved payment method from our page: the sandbox's own
# page, or the provider's hosted portal (membership_portal_url)
PAYMENT_METHOD_PROVIDERS = frozenset({"sandbox", "stripe", "polar", "lemonsqueezy", "toss"})


def membership_state(*, membership: Membership | None) -> dict:
    """{"state", "badge", "date", "actions", "amount", "currency", "payment_method_url"} of the
    customer's current membership.

    state: none | trialing | trial_ending | active | cancel_scheduled | past_due | paused |
    incomplete | canceled | expired. `date` is the one date the sentence names (trial end, renewal,
    cancellation, failure, end). `actions` the buttons the state offers: change, cancel,
    cancel_now, uncancel, pause, resume, payment_method. `amount`/`currency`: what a period costs.
    `payment_method_url`: a page of ours that replaces the card (else the provider's portal)."""
    state = _state(membership)
    price = membership.price if membership is not None else None
    state["amount"] = price.unit_amount * membership.quantity if price is not None else None
    state["currency"] = price.currency if price is not None else ""
    state["payment_method_url"] = _payment_method_url(membership)
    return state


def _payment_method_url(membership: Membership | None) -> str | None:
    if membership is None:
        return None
    if membership.provider == "sandbox":
        return "/sandbox/payment-method/"
    if membership.provider == "stripe" and membership.provider_subscription_id.startswith("msub_"):
        return "/stripe/method/"  # our engine runs it: a setup session replaces the engine's card
    if membership.provider == "toss":
        return "/toss/method/"  # Toss's billing-auth window registers another card (a new billing key)
    return None


def _state(membership: Membership | None) -> dict:
    if membership is None:
        return {"state": "none", "badge": "", "date": None, "actions": set()}
    status, end = membership.status, membership.current_period_end
    payment = {"payment_method"} if membership.provider in PAYMENT_METHOD_PROVIDERS else set()
    if status == MembershipStatus.TRIALING:
        if membership.cancel_at_period_end:
            return {"state": "trial_ending", "badge": "cancel_scheduled", "date": end,
                    "actions": {"uncancel", "cancel_now"} | payment}  # fmt: skip
        return {"state": "trialing", "badge": "trialing", "date": end,
                "actions": {"change", "cancel", "cancel_now", "pause"} | payment}  # fmt: skip
    if status == MembershipStatus.ACTIVE:
        if membership.cancel_at_period_end:
            return {"state": "cancel_scheduled", "badge": "cancel_scheduled", "date": end,
                    "actions": {"uncancel", "cancel_now"} | payment}  # fmt: skip
        return {"state": "active", "badge": "active", "date": end,
                "actions": {"change", "cancel", "cancel_now", "pause"} | payment}  # fmt: skip
    if status == MembershipStatus.PAST_DUE:
        since = membership.past_due_since
        until = since + dt.timedelta(days=settings.DUNNING_GRACE_DAYS) if since else None
        return {"state": "past_due", "badge": "past_due", "date": since, "until": until,
                "actions": {"cancel_now"} | payment}  # fmt: skip
    if status == MembershipStatus.PAUSED:
        return {"state": "paused", "badge": "paused", "date": None, "actions": {"resume", "cancel_now"}}
    if status == MembershipStatus.INCOMPLETE:
        return {"state": "incomplete", "badge": "incomplete", "date": membership.created_at, "actions": set()}
    return {
        "state": "expired" if status == MembershipStatus.EXPIRED else "canceled",
        "badge": status,
        "date": membership.ended_at,
        "actions": set(),
    }


def membership_fingerprint(*, membership: Membership | None) -> str:
    """A short digest of what the customer sees of their membership: the page polls it after an
    action until it differs (the provider's webhook has landed)."""
    if membership is None:
        return "none"
    parts = (
        membership.pk,
        membership.status,
        membership.cancel_at_period_end,
        membership.tier_id,
        membership.price_id,
        membership.quantity,
        membership.current_period_end.isoformat() if membership.current_period_end else "",
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
