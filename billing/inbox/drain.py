"""Applying a tenant's waiting provider events in bursts: one task drains them, a batch per
transaction, each event in its own savepoint.

A drain claims up to WEBHOOK_DRAIN_BATCH rows that are pending (or failed and due), oldest first,
with SELECT … FOR UPDATE SKIP LOCKED, applies them one after another (optimistically without a
savepoint each; if one fails, the batch is rolled back and applied again exactly as `inbox_process`
does, each event in a savepoint, so a poison event is recorded failed/unmatched/dead with its reason
and the others apply), and settles the batch's bookkeeping in one UPDATE per outcome, in the same transaction as what the
events changed: an event is applied once, whoever else drains or processes it concurrently. The
customers a batch changed are told once (memberships_batch): the entitlement snapshots invalidated
in one command, one credits-allowance task for all of them.

Drains of one tenant take turns (a transaction-level advisory lock per batch), so two batches
never lock the same customers in opposite orders. Order within a subscription is what it always
was: the memberships' own order-tolerance (older events change nothing), with rows in arrival order.

Fewer messages: receipt publishes a drain only when none is due for the tenant (a Redis flag, SET
NX with a TTL). A drain that finds nothing clears the flag, then looks once more -- an event that
committed before the clear saw the flag and published nothing, and the second look sees it; one
that commits after the clear publishes a new drain. Redis down: every event publishes (as before);
a lost message or a stuck flag (its TTL) leaves the rows to the sweeper, as before.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.inbox.models import InboxEvent, InboxStatus
from billing.memberships.services import memberships_batch
from kernel.enqueue import enqueue
from kernel.redis import REDIS_ERRORS, get_redis, key_prefix, trip

logger = logging.getLogger(__name__)
FLAG_SECONDS = 30


def _flag_key() -> str:
    return f"{key_prefix()}:inbox-drain:{connection.schema_name}"


def drain_request() -> bool:
    """Should the caller publish a drain of this tenant? False when one is due already."""
    if not settings.WEBHOOK_DRAIN_BATCH:  # one task per event (the bench's baseline)
        return True
    try:
        return bool(get_redis().set(_flag_key(), 1, nx=True, ex=FLAG_SECONDS))
    except REDIS_ERRORS as exc:  # publish: a drain too many is harmless
        trip(exc)
        return True


def drain_flag_clear() -> None:
    """No drain is due any more (or the one flagged was not published, or its message may be lost):
    the next event asks for one."""
    try:
        get_redis().delete(_flag_key())
    except REDIS_ERRORS as exc:  # the flag expires by itself
        trip(exc)


def inbox_drain(*, inbox_id: int | None = None) -> int:
    """Apply this tenant's waiting events (and `inbox_id`, a retry that is due) in batches, until
    none is left or WEBHOOK_DRAIN_MAX_EVENTS are settled (then another drain is published, so one
    busy tenant does not hold the worker). Returns the number of events settled."""
    from billing.inbox.services import inbox_process

    size = settings.WEBHOOK_DRAIN_BATCH
    if not size:  # one event per task, as it was (WEBHOOK_DRAIN_BATCH=0)
        if inbox_id is None:
            return 0
        inbox_process(inbox_id=inbox_id)
        return 1
    settled, cleared = 0, False
    while True:
        count = _drain_batch(size=size, inbox_id=inbox_id)
        inbox_id = None
        settled += count
        if count:
            cleared = False
            if settled >= settings.WEBHOOK_DRAIN_MAX_EVENTS:
                _publish()  # the rest in another task, after other tenants' work
                return settled
            if count == size:  # a full batch: there may be more
                continue
        elif cleared:
            return settled
        drain_flag_clear()  # then look once more: see the module's docstring
        cleared = True


def _publish() -> None:
    from billing.inbox.tasks import process_inbox_event

    enqueue(process_inbox_event, args=(None,), fallback="webhooks.sweep will")


class _Fallback(Exception):
    """An event of the optimistic pass failed: the batch is rolled back and applied again, an event
    per savepoint."""


def _drain_batch(*, size: int, inbox_id: int | None) -> int:
    """One batch, one transaction. Optimistic first: the events applied one after another with no
    savepoint each (two statements an event saved); if one fails, that pass is rolled back whole
    and the batch is applied again with a savepoint per event, where a failure is that event's
    alone (recorded failed, unmatched or dead) and the others apply."""
    try:
        return _drain_batch_pass(size=size, inbox_id=inbox_id, savepoints=False)
    except _Fallback:
        return _drain_batch_pass(size=size, inbox_id=inbox_id, savepoints=True)


def _drain_batch_pass(*, size: int, inbox_id: int | None, savepoints: bool) -> int:
    from billing.inbox.services import BOOKKEEPING_FIELDS, _apply, _attempt

    with transaction.atomic():
        with connection.cursor() as cursor:  # drains of this tenant take turns, batch by batch
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"inbox-drain:{connection.schema_name}"]
            )
        due = Q(status=InboxStatus.PENDING) | Q(
            status=InboxStatus.FAILED, next_attempt_at__lte=timezone.now()
        )
        if inbox_id is not None:
            due |= Q(pk=inbox_id, status=InboxStatus.FAILED)
        events = list(
            InboxEvent.objects.select_for_update(skip_locked=True).filter(due).order_by("id")[:size]
        )
        if not events:
            return 0
        done: dict[str, list[int]] = {}
        with memberships_batch(kept=not savepoints):
            for event in events:
                if not savepoints:
                    try:
                        status = _apply(event)
                    except Exception as exc:
                        raise _Fallback from exc
                    done.setdefault(status, []).append(event.pk)
                elif _attempt(event):
                    done.setdefault(event.status, []).append(event.pk)
                else:  # failed, unmatched or dead: its own row, with its reason
                    event.save(update_fields=BOOKKEEPING_FIELDS)
        now = timezone.now()
        for status, ids in done.items():
            InboxEvent.objects.filter(pk__in=ids).update(
                status=status,
                attempts=F("attempts") + 1,
                processed_at=now,
                last_error="",
                next_attempt_at=None,
            )
    return len(events)
