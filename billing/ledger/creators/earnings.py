"""Creators' earnings: each paid charge for a creator split once, held, released, taken back.

    tip paid               Dr receivable gross; Cr tips gross   (the payment's own posting clears receivable)
    earning (per charge)   Dr creator_share gross; Cr provider_fees fee; Cr platform_fees platform fee;
                           Cr payable:creator_pending:<handle> net
    release (after hold)   Dr payable:creator_pending:<handle>; Cr payable:creator:<handle>   (what is left)
    refund / lost dispute  the earning's components in proportion to the money returned, negated, from
                           the account that holds the net then (pending or available)

Gross is the charge less the tax it collected (its invoice's tax in proportion; the creator gets no
share of the tax). The platform fee is `gross * fee_bps / 10000` rounded half up, at the tenant's rate when the charge
was paid (recorded on the Earning and the transaction's metadata: a later change of the rate never
rewrites it). The provider fee is the one the provider reported (Payment.fee_amount; the sandbox's
is the tenant's `sandbox_fee_bps`, none by default); the creator bears it: its credit to
`provider_fees` offsets the payment posting's debit of what the provider kept. A creator's available balance may go negative after a refund: later earnings
make it up as they are released.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.invoicing.engine.core import engine_now
from billing.invoicing.selectors import charge_tax_share
from billing.ledger.creators.models import (
    Creator,
    CreatorTotal,
    Earning,
    EarningKind,
    EarningReversal,
    EarningStatus,
    Tip,
    TipStatus,
)
from billing.ledger.services import ledger_post
from billing.memberships.models import Payment, PaymentKind

EARNING_SOURCE = "earning"
RELEASE_SOURCE = "earning_release"
REVERSAL_SOURCE = "earning_reversal"
TIP_SOURCE = "tip"
RELEASE_BATCH = 500


def pending_account(handle: str) -> str:
    return f"payable:creator_pending:{handle}"


def available_account(handle: str) -> str:
    return f"payable:creator:{handle}"


def _tenant():
    return connection.tenant


def fee_split(*, gross: int, provider_fee: int, fee_bps: int) -> tuple[int, int, int]:
    """(provider fee, platform fee, net) of `gross`: the platform's basis points rounded half up,
    neither fee more than what is left, so net is never negative."""
    provider_fee = min(max(provider_fee, 0), gross)
    platform_fee = min((gross * fee_bps + 5_000) // 10_000, gross - provider_fee)
    return provider_fee, platform_fee, gross - provider_fee - platform_fee


def _provider_fee(payment: Payment) -> int:
    """What the provider kept of the charge, as it reported it (the sandbox: its simulated fee)."""
    return int(getattr(payment, "fee_amount", 0) or 0)


def _creator_of_charge(payment: Payment, checkout_id: str) -> tuple[Creator, EarningKind, Tip | None] | None:
    if checkout_id:
        tip = (
            Tip.objects.select_for_update()
            .select_related("creator")
            .filter(pk=checkout_id, provider=payment.provider)
            .first()
            if _is_uuid(checkout_id)
            else None
        )
        if tip is not None:
            return tip.creator, EarningKind.TIP, tip
    if payment.membership_id is not None:
        creator = Creator.objects.filter(tiers__memberships=payment.membership_id).first()
        if creator is not None:
            return creator, EarningKind.MEMBERSHIP, None
    return None


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def earning_from_payment(*, payment: Payment, charge: Payment | None = None, checkout_id: str = "") -> None:
    """What a newly recorded provider payment does to creators: a charge for a creator (a tip's,
    or a creator tier membership's) becomes an earning; a refund or lost dispute of such a charge
    takes its share back. Anything else: nothing."""
    if payment.kind == PaymentKind.CHARGE:
        earning_record(payment=payment, checkout_id=checkout_id)
    elif payment.kind in (PaymentKind.REFUND, PaymentKind.DISPUTE_LOST):
        charge = charge or payment.disputed
        if charge is not None:
            earning_reverse(earning_payment=charge, payment=payment)


def earning_record(*, payment: Payment, checkout_id: str = "") -> Earning | None:
    """Split a paid charge for a creator, once (unique per payment): the earning row and its
    posting (pending for the tenant's hold period; on the sandbox's clock for sandbox payments).
    A tip's payment also marks the tip paid. None: the charge is no creator's."""
    if payment.kind != PaymentKind.CHARGE or payment.amount <= 0:
        return None
    with transaction.atomic():
        found = _creator_of_charge(payment, checkout_id)
        if found is None:
            return None
        creator, kind, tip = found
        # the same charge split twice at once (a redelivered event applied concurrently): the
        # second waits here for the first, then finds its earning
        Payment.objects.select_for_update().filter(pk=payment.pk).first()
        existing = Earning.objects.filter(payment=payment).first()
        if existing is not None:
            return existing
        tenant = _tenant()
        fee_bps = int(getattr(tenant, "creator_fee_bps", 1000))
        hold = dt.timedelta(days=int(getattr(tenant, "earnings_hold_days", 7)))
        currency = payment.currency.lower()
        # the tax collected with a membership's charge is the tax authority's, not the creator's
        tax = charge_tax_share(
            provider=payment.provider, invoice_ref=payment.invoice_ref or "", amount=payment.amount
        )
        gross = payment.amount - tax
        provider_fee, platform_fee, net = fee_split(
            gross=gross, provider_fee=_provider_fee(payment), fee_bps=fee_bps
        )
        earning = Earning.objects.create(
            creator=creator, payment=payment, kind=kind, currency=currency, gross=gross,
            provider_fee=provider_fee, platform_fee=platform_fee, fee_bps=fee_bps, net=net,
            earned_at=payment.occurred_at, available_at=payment.occurred_at + hold,
            item_id=tip.item_id if tip is not None else "",
        )  # fmt: skip
        _add_totals(creator_id=creator.pk, currency=currency, earned=net)
        if tip is not None:
            if tip.status != TipStatus.PAID:
                tip.status, tip.payment, tip.paid_at = TipStatus.PAID, payment, payment.occurred_at
                tip.save(update_fields=["status", "payment", "paid_at"])
            ledger_post(
                source=TIP_SOURCE, source_id=str(tip.pk), occurred_at=payment.occurred_at,
                description=f"Tip to {creator.handle}" + (f" for {tip.item_id}" if tip.item_id else ""),
                entries=[("receivable", currency, payment.amount), ("tips", currency, -payment.amount)],
                metadata={"tip": str(tip.pk), "creator": creator.handle, "item_id": tip.item_id,
                          "customer": payment.customer.external_id},
            )  # fmt: skip
        entries = [("creator_share", currency, gross)]
        entries += [
            (code, currency, -amount)
            for code, amount in (
                ("provider_fees", provider_fee),
                ("platform_fees", platform_fee),
                (pending_account(creator.handle), net),
            )
            if amount
        ]
        ledger_post(
            source=EARNING_SOURCE, source_id=str(payment.pk), occurred_at=payment.occurred_at,
            description=f"{kind.label} earning of {creator.handle}: {payment.provider_payment_id}",
            entries=entries,
            metadata={"earning": earning.pk, "creator": creator.handle, "kind": kind, "payment": payment.pk,
                      "gross": gross, "tax": tax, "provider_fee": provider_fee, "platform_fee": platform_fee,
                      "fee_bps": fee_bps, "net": net, "available_at": earning.available_at.isoformat()},
        )  # fmt: skip
    return earning


def _add_totals(*, creator_id: int, currency: str, earned: int = 0, reversed_: int = 0) -> None:
    """Add to the creator's running totals (one statement: a concurrent writer queues on the row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {CreatorTotal._meta.db_table} (creator_id, currency, earned, reversed) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (creator_id, currency) DO UPDATE SET "
            f"earned = {CreatorTotal._meta.db_table}.earned + EXCLUDED.earned, "
            f"reversed = {CreatorTotal._meta.db_table}.reversed + EXCLUDED.reversed",
            [creator_id, currency, earned, reversed_],
        )


def _proportional(total: int, part: int, whole: int) -> int:
    """`total * part / whole` rounded half up (exact at part == whole)."""
    return (total * part * 2 + whole) // (2 * whole)


def earning_reverse(*, earning_payment: Payment, payment: Payment) -> EarningReversal | None:
    """Take back the share of the charge's earning that a refund or lost dispute (`payment`)
    returned, once per payment: every component in proportion to the money returned so far (so
    the whole charge returned reverses exactly the earning), from the account the net is in now."""
    with transaction.atomic():
        earning = (
            Earning.objects.select_for_update()
            .select_related("creator")
            .filter(payment=earning_payment)
            .first()
        )
        if earning is None:
            return None
        existing = EarningReversal.objects.filter(payment=payment).first()
        if existing is not None:
            return existing
        done = earning.reversals.aggregate(
            gross=Sum("gross"),
            provider_fee=Sum("provider_fee"),
            platform_fee=Sum("platform_fee"),
            net=Sum("net"),
        )
        done = {key: value or 0 for key, value in done.items()}
        # the money returned so far, charge's units; its share of the earning's gross (which left
        # the charge's tax out) in proportion -- exact when the whole charge is returned
        charged = earning_payment.amount
        money = earning.reversals.aggregate(money=Sum("payment__amount"))["money"] or 0
        returned = _proportional(earning.gross, min(money + payment.amount, charged), charged)
        gross = returned - done["gross"]
        if gross <= 0:
            return None
        provider_fee = _proportional(earning.provider_fee, returned, earning.gross) - done["provider_fee"]
        platform_fee = _proportional(earning.platform_fee, returned, earning.gross) - done["platform_fee"]
        net = gross - provider_fee - platform_fee
        reversal = EarningReversal.objects.create(
            earning=earning, payment=payment, gross=gross, provider_fee=provider_fee, platform_fee=platform_fee,
            net=net, from_status=earning.status, occurred_at=payment.occurred_at,
        )  # fmt: skip
        _add_totals(creator_id=earning.creator_id, currency=earning.currency, reversed_=net)
        handle, currency = earning.creator.handle, earning.currency
        payable = (
            pending_account(handle) if earning.status == EarningStatus.PENDING else available_account(handle)
        )
        entries = [("creator_share", currency, -gross)]
        entries += [
            (code, currency, amount)
            for code, amount in (
                ("provider_fees", provider_fee),
                ("platform_fees", platform_fee),
                (payable, net),
            )
            if amount
        ]
        ledger_post(
            source=REVERSAL_SOURCE, source_id=str(payment.pk), occurred_at=payment.occurred_at,
            description=f"{payment.get_kind_display()} of {earning_payment.provider_payment_id}: "
            f"{handle}'s earning taken back",
            entries=entries,
            metadata={"earning": earning.pk, "creator": handle, "payment": payment.pk, "kind": payment.kind,
                      "gross": gross, "provider_fee": provider_fee, "platform_fee": platform_fee, "net": net,
                      "from": earning.status},
        )  # fmt: skip
    return reversal


def _now_for(provider: str) -> dt.datetime:
    return engine_now(provider) if provider == "sandbox" else timezone.now()


def earnings_release(*, provider: str | None = None, now: dt.datetime | None = None) -> int:
    """Make available every pending earning whose hold ended (on the sandbox's clock for sandbox
    payments): the net not taken back meanwhile moves from pending to available, once per earning.
    Returns how many were released. The daily beat job runs it; moving the sandbox clock too."""
    released = 0
    providers = (
        [provider]
        if provider
        else list(
            Earning.objects.filter(status=EarningStatus.PENDING)
            .values_list("payment__provider", flat=True)
            .distinct()
        )
    )
    for name in providers:
        until = now or _now_for(name)
        while True:
            with transaction.atomic():
                batch = list(
                    Earning.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("creator")
                    .filter(status=EarningStatus.PENDING, available_at__lte=until, payment__provider=name)
                    .order_by("available_at", "id")[:RELEASE_BATCH]
                )
                for earning in batch:
                    _release(earning, at=until)
                released += len(batch)
            if len(batch) < RELEASE_BATCH:
                break
    return released


def _release(earning: Earning, *, at: dt.datetime) -> None:
    taken = earning.reversals.filter(from_status=EarningStatus.PENDING).aggregate(net=Sum("net"))["net"] or 0
    amount = earning.net - taken
    if amount:
        handle = earning.creator.handle
        ledger_post(
            source=RELEASE_SOURCE, source_id=str(earning.pk), occurred_at=earning.available_at,
            description=f"{handle}'s earning {earning.pk} is available",
            entries=[(pending_account(handle), earning.currency, amount),
                     (available_account(handle), earning.currency, -amount)],
            metadata={"earning": earning.pk, "creator": handle, "amount": amount},
        )  # fmt: skip
    earning.status, earning.released_at = EarningStatus.AVAILABLE, at
    earning.save(update_fields=["status", "released_at"])
