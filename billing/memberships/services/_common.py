"""Internals the membership services share: ending live memberships, history, publishing changes,
and the batch scope the inbox applies a burst of provider events in."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import transaction

from billing.memberships.models import (
    LIVE_STATUSES,
    Customer,
    Membership,
    MembershipHistory,
    MembershipStatus,
)
from billing.memberships.signals import membership_changed


@dataclass
class _Batch:
    prices: dict = field(default_factory=dict)  # price code -> Price (with its tier) or None
    endpoints: list | None = None  # the integrator's active endpoints, read once
    changed: dict = field(default_factory=dict)  # external ids whose memberships changed, in order


_batch: ContextVar[_Batch | None] = ContextVar("memberships_batch", default=None)


@contextlib.contextmanager
def memberships_batch() -> Iterator[None]:
    """Apply many provider events inside one transaction (the inbox's drain), each in its own
    savepoint: the catalog's prices and the integrator's endpoints are read once for the batch, and
    `membership_changed` is sent once for all the customers that changed -- inside the transaction
    when the block ends, and again on commit -- instead of twice per event. Must be entered inside
    the transaction that applies the events; a customer of an event rolled back in its savepoint is
    notified all the same (an invalidation too many is harmless, one too few is not)."""
    scope = _Batch()
    token = _batch.set(scope)
    try:
        yield
    finally:
        _batch.reset(token)
    if scope.changed:
        external_ids = list(scope.changed)
        membership_changed.send(sender=Membership, external_id=None, external_ids=external_ids)
        transaction.on_commit(
            lambda: membership_changed.send(
                sender=Membership, external_id=None, external_ids=external_ids, committed=True
            )
        )


def _price_by_code(code: str):
    """The catalog's price of that code (the active one first), with its tier; read once a batch."""
    from billing.tiers.models import Price

    scope = _batch.get()
    if scope is not None and code in scope.prices:
        return scope.prices[code]
    price = Price.objects.filter(code=code).select_related("tier").order_by("-active", "-id").first()
    if scope is not None:
        scope.prices[code] = price
    return price


def _end_live(
    customer: Customer,
    *,
    at: dt.datetime,
    reason: str,
    keep: Membership | None = None,
    event_id: str = "",
    locked: list[Membership] | None = None,
) -> list[Membership]:
    """End the customer's live memberships (but `keep`): at most one live membership per customer.
    `locked`: the customer's live memberships, already read and locked by the caller."""
    ended = []
    if locked is None:
        locked = Membership.objects.select_for_update().filter(customer=customer, status__in=LIVE_STATUSES)
    for other in locked:
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

    scope = _batch.get()
    if scope is None:
        endpoints = active_endpoints()
    else:
        if scope.endpoints is None:
            scope.endpoints = active_endpoints()
        endpoints = scope.endpoints
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
    (readers that rebuilt a cache from pre-commit data in between are invalidated). In a batch
    (memberships_batch), once for the whole batch when it ends."""
    scope = _batch.get()
    if scope is not None:
        scope.changed[external_id] = None
        return
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
