"""Internals the membership services share: ending live memberships, history, publishing changes,
and the batch scope the inbox applies a burst of provider events in."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from billing.memberships.models import (
    LIVE_STATUSES,
    Customer,
    Membership,
    MembershipHistory,
    MembershipStatus,
)
from billing.memberships.signals import membership_changed

logger = logging.getLogger(__name__)


@dataclass
class _Batch:
    prices: dict = field(default_factory=dict)  # price code -> Price (with its tier) or None
    endpoints: list | None = None  # the integrator's active endpoints, read once
    changed: dict = field(default_factory=dict)  # external ids whose memberships changed, in order
    # with `kept` (a batch applied with no savepoint per event, rolled back whole on any failure):
    kept: bool = False
    history: list = field(default_factory=list)  # MembershipHistory rows written when the batch ends
    customers: dict = field(default_factory=dict)  # external id -> (locked Customer, membership pks)
    memberships: dict = field(default_factory=dict)  # pk -> the batch's one (locked) Membership object


_batch: ContextVar[_Batch | None] = ContextVar("memberships_batch", default=None)


@contextlib.contextmanager
def memberships_batch(*, kept: bool = False) -> Iterator[None]:
    """Apply many provider events inside one transaction (the inbox's drain): the catalog's prices
    and the integrator's endpoints are read once for the batch, and `membership_changed` is sent
    once for all the customers that changed -- inside the transaction when the block ends, and
    again on commit -- instead of twice per event. Must be entered inside the transaction that
    applies the events; a customer of an event rolled back in its savepoint is notified all the same
    (an invalidation too many is harmless, one too few is not).

    `kept=True` when no event of the batch is rolled back alone (no savepoint each: a failure rolls
    the whole batch back, and this scope with it): then a customer locked by one event stays locked
    and known for the next ones (its memberships read once, kept as the batch's own objects), and
    the history rows are written in one statement when the block ends. Whatever changes memberships
    other than the provider sync (payments, checkouts, invoices) calls memberships_batch_forget()
    first."""
    scope = _Batch(kept=kept)
    token = _batch.set(scope)
    try:
        yield
    finally:
        _batch.reset(token)
    if scope.history:
        MembershipHistory.objects.bulk_create(scope.history)
    if scope.changed:
        external_ids = list(scope.changed)
        membership_changed.send(sender=Membership, external_id=None, external_ids=external_ids)
        transaction.on_commit(
            lambda: membership_changed.send(
                sender=Membership, external_id=None, external_ids=external_ids, committed=True
            )
        )


def memberships_batch_forget() -> None:
    """Something other than the provider sync may change memberships next: the batch forgets the
    customers and memberships it knows (they are read and locked again when next needed)."""
    scope = _batch.get()
    if scope is not None:
        scope.customers.clear()
        scope.memberships.clear()


def _locked_memberships(
    *, external_id: str, provider: str, subscription_id: str
) -> tuple[Customer, dict[int, Membership]]:
    """The customer (created if new) locked -- one change at a time -- with this subscription's
    membership and the customer's live ones, read and locked in one statement: {pk: membership}.
    In a kept batch, a customer already locked is not read again, nor the memberships it knows."""
    scope = _batch.get()
    kept = scope if scope is not None and scope.kept else None
    known = kept.customers.get(external_id) if kept is not None else None
    if known is not None:
        customer, pks = known
        rows = {pk: kept.memberships[pk] for pk in pks}
        if any(
            row.provider == provider and row.provider_subscription_id == subscription_id
            for row in rows.values()
        ):
            return customer, rows
    else:
        customer, _ = Customer.objects.select_for_update().get_or_create(external_id=external_id)
        rows = {}
    for row in (
        Membership.objects.select_for_update()
        .filter(
            Q(provider=provider, provider_subscription_id=subscription_id)
            | Q(customer=customer, status__in=LIVE_STATUSES)
        )
        .order_by("id")
    ):
        rows[row.pk] = kept.memberships.setdefault(row.pk, row) if kept is not None else row
    if kept is not None:
        kept.customers[external_id] = (customer, set(rows))
    return customer, rows


def _keep(customer: Customer, membership: Membership) -> None:
    """A membership the sync created belongs to the batch's knowledge of its customer."""
    scope = _batch.get()
    if scope is not None and scope.kept and customer.external_id in scope.customers:
        scope.memberships[membership.pk] = membership
        scope.customers[customer.external_id][1].add(membership.pk)


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
    creator: int | None,
    keep: Membership | None = None,
    event_id: str = "",
    locked: list[Membership] | None = None,
) -> list[Membership]:
    """End the customer's live memberships of one owner (`creator`: None for the platform's plan,
    else that creator's id) but `keep`: at most one live membership per customer and owner, so a
    new plan replaces the plan and a channel tier replaces that channel's tier, never the other.
    `locked`: the customer's live memberships (of any owner), already read and locked by the caller."""
    ended = []
    if locked is None:
        locked = Membership.objects.select_for_update().filter(customer=customer, status__in=LIVE_STATUSES)
    for other in locked:
        if other.creator_id != creator:
            continue
        if keep is None or other.pk != keep.pk:
            other.status, other.ended_at = MembershipStatus.CANCELED, at
            other.save(update_fields=["status", "ended_at", "updated_at"])
            _record(other, reason=reason, event_id=event_id)
            ended.append(other)
            if other.provider != "manual" and other.provider_subscription_id:
                _cancel_at_provider_on_commit(other.provider, other.provider_subscription_id)
    return ended


def _cancel_at_provider_on_commit(provider: str, subscription_id: str) -> None:
    """Once the replacement is committed, the replaced subscription is canceled at its provider too
    (memberships.cancel_replaced, retried): else it would renew, billing the customer twice, and its
    renewal's webhook would bring it back over its replacement."""

    def enqueue():
        from billing.memberships.tasks import cancel_replaced_task
        from kernel.enqueue import enqueue as publish

        publish(
            cancel_replaced_task,
            args=(provider, subscription_id),
            fallback="memberships.replaced_sweep retries it",
        )

    transaction.on_commit(enqueue)


REPLACED_SWEEP_AFTER = dt.timedelta(minutes=10)
REPLACED_SWEEP_WITHIN = dt.timedelta(days=7)


def memberships_replaced_sweep(*, now: dt.datetime | None = None) -> int:
    """The replaced subscriptions whose cancellation the provider has not confirmed yet (the newest
    history row is still the replacement, 10 minutes to 7 days old: a lost or failed task) are asked
    to cancel again; returns how many were asked."""
    now = now or timezone.now()
    newest = MembershipHistory.objects.filter(membership=OuterRef("pk")).order_by("-id").values("reason")[:1]
    due = (
        Membership.objects.exclude(provider="manual")
        .exclude(provider_subscription_id="")
        .filter(status=MembershipStatus.CANCELED, ended_at__gte=now - REPLACED_SWEEP_WITHIN,
                ended_at__lte=now - REPLACED_SWEEP_AFTER)
        .annotate(last_reason=Subquery(newest))
        .filter(last_reason="replaced")
        .values_list("provider", "provider_subscription_id")
    )  # fmt: skip
    asked = 0
    for provider, subscription_id in due:
        try:
            asked += membership_cancel_replaced(provider=provider, subscription_id=subscription_id)
        except Exception:  # one provider's failure must not stop the others; the next sweep retries
            logger.warning(
                "could not cancel replaced %s subscription %s", provider, subscription_id, exc_info=True
            )
    return asked


def membership_cancel_replaced(*, provider: str, subscription_id: str) -> bool:
    """Cancel now, at the provider, a replaced membership's subscription; nothing when the membership
    is live again or the provider cannot (its own cancellation or expiry then ends it). True when
    asked of the provider. The provider's webhook then confirms the end, as for any cancellation."""
    from billing.providers.base import ProviderNotSupported
    from billing.providers.registry import provider_for
    from billing.providers.selectors import provider_account_for_checkout

    membership = Membership.objects.filter(
        provider=provider, provider_subscription_id=subscription_id
    ).first()
    if membership is None or membership.status in LIVE_STATUSES:
        return False
    adapter = provider_for(provider_account_for_checkout(provider=provider))
    if not hasattr(adapter, "cancel_subscription"):
        return False
    try:
        adapter.cancel_subscription(subscription_id=subscription_id, at_period_end=False)
    except ProviderNotSupported:
        return False
    return True


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
    row = MembershipHistory(
        membership=membership,
        status=membership.status,
        tier_id=membership.tier_id,
        quantity=membership.quantity,
        reason=reason,
        event_id=event_id,
    )
    scope = _batch.get()
    if scope is not None and scope.kept:
        scope.history.append(row)  # written with the batch's others (memberships_batch)
    else:
        row.save()
