"""Internals the membership services share: ending live memberships, history, publishing changes."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from billing.memberships.models import (
    LIVE_STATUSES,
    Customer,
    Membership,
    MembershipHistory,
    MembershipStatus,
)
from billing.memberships.signals import membership_changed


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
