"""Payouts: a creator's available balance paid to their connected account, once.

    requested   Dr payable:creator:<handle>; Cr payouts_in_transit      (source `payout`, the payout's id)
    paid        Dr payouts_in_transit; Cr cash:<provider>              (source `payout_paid`)
    failed      Dr payouts_in_transit; Cr payable:creator:<handle>      (source `payout`, `<id>:failed`)

A request takes the creator's row lock and checks the available balance (its running balance row)
before it posts, so two concurrent requests cannot pay the same money twice. The transfer is one
provider call keyed `payout-<id>` (a retry is the same transfer), made by a Celery task after the
request commits: the sandbox pays at once; Stripe transfers to the connected account and pays it
out there (`payout-<id>-payout`), then reports `payout.paid` or `payout.failed`. A refusal fails
the payout and returns its amount to `available`. A creator's `paid_out` balance counts what left
`available` for payouts (in transit included) less what failed payouts returned.

Schedules (tenant setting `payout_schedule`): `manual` (creators or the integrator ask), `weekly`
(Mondays) or `monthly` (the 1st): the daily beat job then pays out every active creator's available
balance per currency at or above `payout_min_amount`, once per run (`schedule_key`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.db import connection, transaction
from django.utils import timezone

from billing.events.services import event_publish
from billing.ledger.creators.earnings import available_account
from billing.ledger.creators.exceptions import CreatorInvalid
from billing.ledger.creators.models import Creator, Payout, PayoutState, PayoutStatus
from billing.ledger.creators.selectors import PAYOUT_SOURCE
from billing.ledger.models import AccountBalance
from billing.ledger.services import ledger_post
from kernel.enqueue import enqueue
from kernel.errors import ApplicationError

logger = logging.getLogger(__name__)

PAID_SOURCE = "payout_paid"
IN_TRANSIT = "payouts_in_transit"
_CURRENCY = re.compile(r"^[a-z]{3}$")


class PayoutRefused(ApplicationError):
    """The payout cannot be made: payouts not enabled for the creator, too little available, below
    the tenant's minimum."""

    code = "payout_refused"
    status_code = 409


class PayoutNotFound(ApplicationError):
    code = "unknown_payout"
    status_code = 404


def available_balance(*, creator: Creator, currency: str) -> int:
    """What the creator may be paid out in `currency` now (minor units; negative after a refund)."""
    balance = (
        AccountBalance.objects.filter(account__code=available_account(creator.handle), currency=currency)
        .values_list("balance", flat=True)
        .first()
    )
    return -(balance or 0)  # a liability: its balance is a credit


def payout_payload(payout: Payout) -> dict:
    return {
        "id": payout.pk,
        "creator": payout.creator.handle,
        "amount": payout.amount,
        "currency": payout.currency,
        "status": payout.status,
        "provider": payout.provider,
        "failure_message": payout.failure_message or None,
    }


def _publish(kind: str, payout: Payout) -> None:
    event_publish(type=kind, payload=payout_payload(payout))


def payout_request(
    *, creator: Creator, currency: str, amount: int | None = None, schedule_key: str = ""
) -> Payout:
    """Pay `amount` (default: all that is available) of the creator's `currency` balance out to their
    connected account. With a `schedule_key`, the payout of that run when one was made already."""
    currency = (currency or "").lower()
    if not _CURRENCY.match(currency):
        raise CreatorInvalid("'currency' is a three-letter ISO code.", details={"field": "currency"})
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0):
        raise CreatorInvalid("'amount' is a positive integer in minor units.", details={"field": "amount"})
    tenant = connection.tenant
    with transaction.atomic():
        creator = Creator.objects.select_for_update().get(pk=creator.pk)
        if schedule_key:
            done = Payout.objects.filter(
                creator=creator, currency=currency, schedule_key=schedule_key
            ).first()
            if done is not None:
                return done
        if creator.payout_status != PayoutStatus.ACTIVE or not creator.provider_account_id:
            raise PayoutRefused(
                f"{creator.handle} cannot be paid out until their payout account is active "
                f"(it is {creator.get_payout_status_display().lower()}).",
                code="payouts_not_enabled",
                details={"payout_status": creator.payout_status},
            )
        available = available_balance(creator=creator, currency=currency)
        amount = available if amount is None else amount
        if amount <= 0 or amount > available:
            raise PayoutRefused(
                f"{creator.handle} has {max(available, 0)} {currency} available.",
                code="insufficient_balance",
                details={"available": available, "amount": amount},
            )
        minimum = int(getattr(tenant, "payout_min_amount", 0) or 0)
        if amount < minimum:
            raise PayoutRefused(
                f"The smallest payout is {minimum} (minor units of {currency}).",
                code="payout_below_minimum",
                details={"minimum": minimum, "amount": amount},
            )
        payout = Payout.objects.create(
            creator=creator, amount=amount, currency=currency, provider=creator.payout_provider,
            account_id=creator.provider_account_id, schedule_key=schedule_key,
        )  # fmt: skip
        ledger_post(
            source=PAYOUT_SOURCE, source_id=str(payout.pk), occurred_at=timezone.now(),
            description=f"Payout {payout.key} to {creator.handle} requested",
            entries=[(available_account(creator.handle), currency, amount), (IN_TRANSIT, currency, -amount)],
            metadata={"payout": payout.pk, "creator": creator.handle},
        )  # fmt: skip
        _publish("payout.created", payout)
        transaction.on_commit(lambda: _enqueue_transfer(payout.pk))
    return payout


def _enqueue_transfer(payout_id: int) -> None:
    from billing.ledger.creators.tasks import payout_transfer_task

    enqueue(
        payout_transfer_task, args=(payout_id,), fallback="the daily payouts job retries requested payouts"
    )


def payout_transfer(*, payout_id: int) -> Payout:
    """Make the requested payout's transfer at its provider (once: keyed `payout-<id>`). A provider
    that does not answer raises ProviderUnavailable (the task retries); a refusal fails the payout."""
    from billing.providers.base import ProviderError, ProviderUnavailable, Transfer
    from billing.providers.registry import provider_for
    from billing.providers.selectors import provider_account_for_checkout

    with transaction.atomic():
        payout = Payout.objects.select_for_update().select_related("creator").get(pk=payout_id)
        if payout.status != PayoutState.REQUESTED:
            return payout
        adapter = provider_for(provider_account_for_checkout(provider=payout.provider))
        transfer = getattr(adapter, "transfer", None)
        if transfer is None:
            _failed(payout, f"{payout.provider} cannot pay out to connected accounts.")
            return payout
        try:
            result = transfer(
                Transfer(
                    transfer_id=payout.key,
                    account_id=payout.account_id,
                    amount=payout.amount,
                    currency=payout.currency,
                    description=f"Payout to {payout.creator.handle}",
                )  # fmt: skip
            )
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            _failed(payout, exc.message)
            return payout
        payout.status, payout.processing_at = PayoutState.PROCESSING, timezone.now()
        payout.provider_transfer_id, payout.provider_payout_id = result.transfer_id, result.payout_id
        payout.save(update_fields=["status", "processing_at", "provider_transfer_id", "provider_payout_id"])
        if result.status == "paid":
            _paid(payout)
    return payout


def _paid(payout: Payout) -> None:
    payout.status, payout.paid_at = PayoutState.PAID, timezone.now()
    payout.save(update_fields=["status", "paid_at"])
    ledger_post(
        source=PAID_SOURCE, source_id=str(payout.pk), occurred_at=payout.paid_at,
        description=f"Payout {payout.key} to {payout.creator.handle} paid",
        entries=[(IN_TRANSIT, payout.currency, payout.amount),
                 (f"cash:{payout.provider}", payout.currency, -payout.amount)],
        metadata={"payout": payout.pk, "creator": payout.creator.handle, "provider_payout_id": payout.provider_payout_id},
    )  # fmt: skip
    _publish("payout.paid", payout)


def _failed(payout: Payout, message: str) -> None:
    """The payout failed: its amount returns to the creator's available balance (a paid payout that
    bounces later returns it too: the money came back to the provider's cash)."""
    was_paid = payout.status == PayoutState.PAID
    payout.status, payout.failed_at = PayoutState.FAILED, timezone.now()
    payout.failure_message = (message or "The provider did not pay it out.")[:500]
    payout.save(update_fields=["status", "failed_at", "failure_message"])
    handle, currency, amount = payout.creator.handle, payout.currency, payout.amount
    if was_paid:  # the money is back at the provider: undo the paid posting's cash movement
        ledger_post(
            source=PAID_SOURCE, source_id=f"{payout.pk}:returned", occurred_at=payout.failed_at,
            description=f"Payout {payout.key} to {handle} returned",
            entries=[(f"cash:{payout.provider}", currency, amount), (IN_TRANSIT, currency, -amount)],
            metadata={"payout": payout.pk, "creator": handle},
        )  # fmt: skip
    ledger_post(
        source=PAYOUT_SOURCE, source_id=f"{payout.pk}:failed", occurred_at=payout.failed_at,
        description=f"Payout {payout.key} to {handle} failed: its amount is available again",
        entries=[(IN_TRANSIT, currency, amount), (available_account(handle), currency, -amount)],
        metadata={"payout": payout.pk, "creator": handle},
    )  # fmt: skip
    _publish("payout.failed", payout)


def payout_reported(*, provider: str, report) -> Payout | None:
    """A provider's word on a payout (providers.base.PayoutReport): processing → paid, or failed
    (from processing or paid). Found by the provider's payout id or our key in its metadata; None
    when it is not one of ours. A report that changes nothing (a redelivery) changes nothing."""
    with transaction.atomic():
        rows = Payout.objects.select_for_update().select_related("creator").filter(provider=provider)
        payout = rows.filter(provider_payout_id=report.payout_id).first() if report.payout_id else None
        if payout is None and report.reference.startswith("payout-") and report.reference[7:].isdigit():
            payout = rows.filter(pk=int(report.reference[7:])).first()
        if payout is None:
            return None
        if report.status == "paid" and payout.status in (PayoutState.REQUESTED, PayoutState.PROCESSING):
            if not payout.provider_payout_id:
                payout.provider_payout_id = report.payout_id
                payout.save(update_fields=["provider_payout_id"])
            _paid(payout)
        elif report.status == "failed" and payout.status != PayoutState.FAILED:
            _failed(payout, report.failure_message)
    return payout


def payout_list(*, creator: Creator):
    return Payout.objects.filter(creator=creator).select_related("creator")


def payout_get(*, creator: Creator, payout_id) -> Payout:
    try:
        pk = int(payout_id)
    except (TypeError, ValueError):
        pk = 0
    payout = payout_list(creator=creator).filter(pk=pk).first() if 0 < pk < 2**63 else None
    if payout is None:
        raise PayoutNotFound("No such payout.", details={"id": payout_id})
    return payout


def _run_key(now: dt.datetime, schedule: str) -> str | None:
    day = now.date()
    if schedule == "weekly" and day.weekday() == 0:
        return f"weekly:{day.isoformat()}"
    if schedule == "monthly" and day.day == 1:
        return f"monthly:{day.isoformat()}"
    return None


def payouts_scheduled_run(*, now: dt.datetime | None = None) -> int:
    """On the tenant's payout day, pay out every active creator's available balance per currency at
    or above the minimum (once per run); also retries the transfers of payouts left requested (a
    lost task). Returns how many payouts this run has (one made earlier in the run included)."""
    now = now or timezone.now()
    for payout_id in Payout.objects.filter(
        status=PayoutState.REQUESTED, requested_at__lt=now - dt.timedelta(minutes=10)
    ).values_list("pk", flat=True):
        _enqueue_transfer(payout_id)
    key = _run_key(now, getattr(connection.tenant, "payout_schedule", "manual"))
    if key is None:
        return 0
    minimum = max(int(getattr(connection.tenant, "payout_min_amount", 0) or 0), 1)
    made = 0
    rows = AccountBalance.objects.filter(account__code__startswith="payable:creator:", balance__lte=-minimum)
    for code, currency in rows.values_list("account__code", "currency"):
        creator = Creator.objects.filter(
            handle=code.removeprefix("payable:creator:"), payout_status=PayoutStatus.ACTIVE
        ).first()
        if creator is None:
            continue
        try:
            payout_request(creator=creator, currency=currency, schedule_key=key)
            made += 1
        except PayoutRefused as exc:
            logger.info("scheduled payout of %s %s skipped: %s", creator.handle, currency, exc.message)
    return made
