"""Webhooks in: verify, store, acknowledge; then apply exactly once, in any order.

receive → (signature verified by the provider's own scheme) → InboxEvent row, unique on
(provider, event id); only a *new* row enqueues processing, on commit. process → locks the row,
applies the normalized event and marks it applied in one transaction; a failure rolls the
application back and records the attempt, with a retry at an exponential backoff, until
WEBHOOK_MAX_ATTEMPTS make it `dead` (the admin can replay it). A permanent error (the event names
no customer, price or variant of ours: InvalidProviderEvent) is never retried: the row is parked as
`unmatched` at once with the reason, for staff to fix the mapping and replay it. sweep → re-enqueues rows still
pending after WEBHOOK_SWEEP_AFTER_SECONDS or due for a retry, so a lost broker message or a worker
killed mid-task never loses an event.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from psycopg.types.json import Jsonb

from billing.inbox.models import InboxEvent, InboxStatus
from billing.inbox.signals import (
    provider_account_reported,
    provider_invoice_reported,
    provider_payout_reported,
)
from billing.memberships.exceptions import InvalidProviderEvent
from billing.memberships.models import Payment, PaymentKind
from billing.memberships.services import (
    checkout_complete,
    membership_sync_from_provider,
    memberships_batch_forget,
    payment_record,
)
from billing.providers.base import (
    EventType,
    NormalizedEvent,
    PaymentState,
    WebhookIgnored,
    WebhookVerificationFailed,
)
from billing.providers.registry import provider_for
from billing.providers.selectors import provider_accounts_for_webhook
from kernel.enqueue import enqueue
from kernel.metrics import WEBHOOKS_RECEIVED

logger = logging.getLogger(__name__)
BACKOFF_SECONDS = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)


def _enqueue(inbox_id: int, *, countdown: int | None = None) -> None:
    """Ask a worker to apply the event -- and, with it, every event of this tenant waiting then
    (billing.inbox.drain): a message is published only when no drain of this tenant is due already,
    so a burst of events costs one task, not one each. A retry (countdown) is always published."""
    from billing.inbox.drain import drain_flag_clear, drain_request
    from billing.inbox.tasks import process_inbox_event

    if countdown is None and not drain_request():
        return  # a drain is due: it will claim this event (it re-checks after clearing the flag)
    if not enqueue(
        process_inbox_event, args=(inbox_id,), countdown=countdown, fallback="webhooks.sweep will"
    ):
        if countdown is None:
            drain_flag_clear()  # the next event (or the sweeper) asks again


def adapter_event_type(adapter, payload: dict) -> str:
    """The provider's own name of the event (`type`, or Lemon Squeezy's `meta.event_name`)."""
    named = getattr(adapter, "event_type", None)
    return str(named(payload) if named else payload.get("type", ""))


def inbox_receive(*, provider: str, body: bytes, headers: dict[str, str]) -> tuple[InboxEvent, bool]:
    """Verify and store a delivery. Returns (row, created); a redelivery returns the stored row."""
    accounts = provider_accounts_for_webhook(provider=provider)
    payload, adapter, failure = None, None, None
    for account in accounts:
        adapter = provider_for(account)
        try:
            payload = adapter.verify_webhook(body=body, headers=headers)
            break
        except WebhookIgnored:
            WEBHOOKS_RECEIVED.labels(provider=provider, outcome="ignored").inc()
            raise
        except WebhookVerificationFailed as exc:
            failure = exc
    if payload is None:
        WEBHOOKS_RECEIVED.labels(provider=provider, outcome="rejected").inc()
        logger.warning("webhook rejected provider=%s reason=%s", provider, failure or "no account configured")
        raise failure or WebhookVerificationFailed(
            f"No {provider} account is configured to verify this webhook."
        )
    event_id = adapter.event_id(payload)
    with transaction.atomic():
        # one statement: insert, or learn that the event is already stored (a redelivery, or the
        # same event arriving concurrently -- the unique index decides, exactly once)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {InboxEvent._meta.db_table} (provider, event_id, event_type, payload, received_at, status, "
                "attempts, last_error) VALUES (%s, %s, %s, %s, now(), %s, 0, '') "
                "ON CONFLICT (provider, event_id) DO NOTHING RETURNING id",
                [
                    provider,
                    event_id,
                    adapter_event_type(adapter, payload)[:100],
                    Jsonb(payload),
                    InboxStatus.PENDING,
                ],
            )
            row = cursor.fetchone()
        created = row is not None
        if created:
            inbox_id = row[0]
            transaction.on_commit(lambda: _enqueue(inbox_id))
    WEBHOOKS_RECEIVED.labels(provider=provider, outcome="stored" if created else "duplicate").inc()
    return InboxEvent(pk=row[0]) if created else InboxEvent.objects.get(
        provider=provider, event_id=event_id
    ), created


def _apply(event: InboxEvent) -> InboxStatus:
    accounts = provider_accounts_for_webhook(provider=event.provider)
    if not accounts:
        raise WebhookVerificationFailed(f"No {event.provider} account to parse this event.")
    adapter = provider_for(accounts[0])
    normalized: NormalizedEvent = adapter.parse_event(event.payload)
    if normalized.subscription is not None:
        membership_sync_from_provider(
            provider=event.provider,
            state=normalized.subscription,
            occurred_at=normalized.occurred_at,
            event_id=event.event_id,
        )
        return InboxStatus.APPLIED
    # payments, checkouts and invoices change memberships their own way: a batch's knowledge of
    # them is read again (billing.inbox.drain applies events in batches)
    memberships_batch_forget()
    applied = False
    if normalized.checkout is not None:
        applied = (
            checkout_complete(
                provider=event.provider,
                checkout_id=normalized.checkout.checkout_id,
                occurred_at=normalized.occurred_at,
                provider_customer_id=normalized.checkout.provider_customer_id,
                event_id=event.event_id,
            )
            is not None
        )
        if applied and normalized.checkout.provider_customer_id:
            _replay_unmatched(provider=event.provider, named=(normalized.checkout.provider_customer_id,))
    payments = [normalized.payment] if normalized.payment is not None else []
    for payment in [*payments, *normalized.more_payments]:
        recorded = payment_record(
            provider=event.provider,
            event_type=normalized.type,
            payment=_with_fee(adapter, provider=event.provider, event_type=normalized.type, payment=payment),
            occurred_at=normalized.occurred_at,
            event_id=event.event_id,
        )
        applied = applied or recorded is not None
        if recorded is not None and recorded.kind == PaymentKind.CHARGE:
            # refunds and disputes parked while they waited for this charge apply now
            _replay_unmatched(
                provider=event.provider, named=(payment.payment_id, payment.reference, payment.intent)
            )
    # what apps above the inbox act on; the invoice last: it is mirrored after its payments, which it links
    for name, signal in (
        ("account", provider_account_reported), ("payout", provider_payout_reported),
        ("invoice", provider_invoice_reported),
    ):  # fmt: skip
        reported = getattr(normalized, name)
        if reported is not None:
            answers = signal.send(
                sender=InboxEvent, provider=event.provider, occurred_at=normalized.occurred_at,
                event_id=event.event_id, **{name: reported},
            )  # fmt: skip
            applied = applied or any(answer for _, answer in answers)
    return InboxStatus.APPLIED if applied else InboxStatus.IGNORED


def _with_fee(adapter, *, provider: str, event_type: str, payment: PaymentState) -> PaymentState:
    """A charge whose event did not carry the provider's fee, with the fee the adapter fetches
    (Stripe's balance transaction), once: a charge already recorded is not asked about again."""
    fetch = getattr(adapter, "payment_fee", None)
    if (
        fetch is None
        or payment.fee is not None
        or payment.amount <= 0
        or event_type not in (EventType.PAYMENT_SUCCEEDED, EventType.ORDER_PAID)
        or Payment.objects.filter(
            provider=provider, provider_payment_id=payment.payment_id, kind=PaymentKind.CHARGE
        ).exists()
    ):
        return payment
    return replace(payment, fee=fetch(payment))


def _replay_unmatched(*, provider: str, named: tuple[str, ...]) -> None:
    """An event just brought what parked events named: a checkout linked a provider customer to ours
    (a subscription that arrived before its checkout's completion), or a charge was recorded that a
    refund or dispute had waited for past its retries. Those events apply again."""
    names = [name for name in named if name]
    if not names:
        return
    mentions = Q()
    for name in names:
        mentions |= Q(last_error__contains=f"'{name}'")
    ids = list(
        InboxEvent.objects.filter(mentions, provider=provider, status=InboxStatus.UNMATCHED).values_list(
            "pk", flat=True
        )[:100]
    )
    if ids:
        inbox_replay(inbox_ids=ids)


def inbox_process(*, inbox_id: int) -> str:
    """Apply one stored event; returns its status afterwards. Safe to call twice or concurrently.
    (The worker applies bursts with billing.inbox.drain.inbox_drain, the same steps per event.)"""
    with transaction.atomic():
        event = InboxEvent.objects.select_for_update().filter(pk=inbox_id).first()
        if event is None or event.status in (
            InboxStatus.APPLIED,
            InboxStatus.IGNORED,
            InboxStatus.DEAD,
            InboxStatus.UNMATCHED,
        ):
            return event.status if event else "missing"
        _attempt(event)
        # the bookkeeping only: rewriting the stored payload cost as much as the rest of the row
        event.save(update_fields=BOOKKEEPING_FIELDS)
    return event.status


BOOKKEEPING_FIELDS = ["status", "attempts", "processed_at", "last_error", "next_attempt_at"]


def _attempt(event: InboxEvent) -> bool:
    """Apply a locked, not yet settled event in a savepoint and set its bookkeeping fields (not
    saved). True when it applied (or was ignored); a failure rolls back the application, not the
    caller's transaction, and is recorded: unmatched at once when permanent, else retried later."""
    event.attempts += 1
    try:
        with transaction.atomic():  # a failure rolls back the application, not the bookkeeping
            event.status = _apply(event)
        event.processed_at, event.last_error, event.next_attempt_at = timezone.now(), "", None
        return True
    except InvalidProviderEvent as exc:  # permanent: retrying cannot help, staff must act
        logger.warning("inbox event %s unmatched: %s", event.pk, exc)
        event.last_error = f"{exc.code}: {exc}"[:2000]
        event.status, event.next_attempt_at = InboxStatus.UNMATCHED, None
    except Exception as exc:  # recorded and retried; after the last attempt the row is dead
        logger.warning("inbox event %s failed (attempt %s): %r", event.pk, event.attempts, exc)
        event.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
        awaits = getattr(exc, "awaits", "")
        if event.attempts >= settings.WEBHOOK_MAX_ATTEMPTS and awaits:
            # it waits for another event (a refund for its charge) that never came: parked for
            # staff with what it waits for, and applied again by itself if that event comes
            event.last_error = f"awaiting '{awaits}': {exc}"[:2000]
            event.status, event.next_attempt_at = InboxStatus.UNMATCHED, None
        elif event.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            event.status, event.next_attempt_at = InboxStatus.DEAD, None
        else:
            delay = BACKOFF_SECONDS[min(event.attempts, len(BACKOFF_SECONDS)) - 1]
            event.status = InboxStatus.FAILED
            event.next_attempt_at = timezone.now() + dt.timedelta(seconds=delay)
            pk = event.pk
            transaction.on_commit(lambda: _enqueue(pk, countdown=delay))
    return False


def inbox_sweep(*, now: dt.datetime | None = None) -> int:
    """Re-enqueue rows that stayed pending too long or are due for a retry."""
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    due = InboxEvent.objects.filter(
        Q(status=InboxStatus.PENDING, received_at__lte=stale)
        | Q(status=InboxStatus.FAILED, next_attempt_at__lte=now)
    ).values_list("pk", flat=True)[:1000]
    ids = list(due)
    if ids:
        from billing.inbox.drain import drain_flag_clear

        drain_flag_clear()  # a drain flagged as due whose message was lost: ask again now
    for inbox_id in ids:  # (with drains, the first publishes one and the others find it due)
        _enqueue(inbox_id)
    return len(ids)


def inbox_replay(*, inbox_ids: list[int]) -> int:
    """Give failed, dead or unmatched events a fresh set of attempts (the back-office's replay,
    e.g. after staff mapped the price or customer an unmatched event named)."""
    with transaction.atomic():
        ids = list(
            InboxEvent.objects.select_for_update()
            .filter(
                pk__in=inbox_ids, status__in=[InboxStatus.DEAD, InboxStatus.FAILED, InboxStatus.UNMATCHED]
            )
            .values_list("pk", flat=True)
        )
        InboxEvent.objects.filter(pk__in=ids).update(
            status=InboxStatus.PENDING, attempts=0, next_attempt_at=None
        )
        for inbox_id in ids:
            transaction.on_commit(lambda inbox_id=inbox_id: _enqueue(inbox_id))
    return len(ids)
