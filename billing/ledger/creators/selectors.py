"""Creators' reads: profiles, channel tiers, balances (pending / available / paid out / lifetime)."""

from __future__ import annotations

from collections import defaultdict

from django.db import connection
from django.db.models import Prefetch, QuerySet

from billing.ledger.creators.exceptions import CreatorNotFound, CreatorTierNotFound
from billing.ledger.creators.models import Creator, CreatorTotal, Payout, PayoutState
from billing.ledger.models import AccountBalance, LedgerAccount
from billing.tiers.models import Price, Tier, TierFeature

PAYOUT_SOURCE = "payout"  # what payouts (issue 12 item 6) will post from the available account


def creator_get(*, handle: str) -> Creator:
    creator = Creator.objects.filter(handle=handle).first()
    if creator is None:
        raise CreatorNotFound(f"No creator '{handle}'.", details={"handle": handle})
    return creator


def creator_list() -> QuerySet[Creator]:
    return Creator.objects.all()


def creator_tiers(*, creator: Creator) -> QuerySet[Tier]:
    """The creator's published channel tiers with their active prices, in display order."""
    return (
        Tier.objects.filter(creator=creator, is_public=True)
        .prefetch_related(
            Prefetch(
                "prices",
                queryset=Price.objects.filter(active=True).order_by("unit_amount", "id"),
                to_attr="active_prices",
            ),
            Prefetch(
                "tier_features",
                queryset=TierFeature.objects.select_related("feature").order_by("feature__code"),
            ),
        )
        .order_by("sort_order", "id")
    )


def channel_tiers(*, creator: Creator) -> list[Tier]:
    """What the public channel page lists: the creator's published tiers that have a price to join
    at (monthly first), each with `benefits` (its description's non-blank lines)."""
    tiers = [tier for tier in creator_tiers(creator=creator) if tier.active_prices]
    for tier in tiers:
        tier.active_prices.sort(key=lambda price: (price.interval != "month", price.unit_amount, price.id))
        tier.benefits = [line.strip() for line in tier.description.splitlines() if line.strip()]
    return tiers


def fan_live_tier_ids(*, user, creator: Creator) -> set[int]:
    """The creator's tiers the signed-in person is a live member of (none for a visitor)."""
    from billing.memberships.models import LIVE_STATUSES, Membership

    if not getattr(user, "is_authenticated", False):
        return set()
    return set(
        Membership.objects.filter(
            customer__user=user, tier__creator=creator, status__in=LIVE_STATUSES
        ).values_list("tier_id", flat=True)
    )


def creator_tier_get(*, creator: Creator, code: str, for_update: bool = False) -> Tier:
    """A published tier of the creator's, by its code (`<handle>-<code>`, or just `<code>`)."""
    full = code if code.startswith(f"{creator.handle}-") else f"{creator.handle}-{code}"
    qs = Tier.objects.select_for_update() if for_update else Tier.objects
    tier = qs.filter(creator=creator, code=full, is_public=True).first()
    if tier is None:
        raise CreatorTierNotFound(f"{creator.handle} has no tier '{code}'.", details={"tier": code})
    return tier


def creator_balance(*, creator: Creator) -> dict[str, dict[str, int]]:
    """{currency: {pending, available, paid_out, lifetime}} in minor units. Pending and available
    are the creator's two ledger accounts (running balances: one row each, however many entries);
    paid out is what payouts took from the available account; lifetime is the net of every earning
    less what refunds and lost disputes took back (the creator's running totals, kept apart from the
    ledger), so lifetime = paid out + available + pending holds whenever the ledger agrees with the
    earnings. A handful of rows whatever the number of earnings."""
    from billing.ledger.creators.earnings import available_account, pending_account

    pending, available = pending_account(creator.handle), available_account(creator.handle)
    result: dict[str, dict[str, int]] = defaultdict(
        lambda: {"pending": 0, "available": 0, "paid_out": 0, "lifetime": 0}
    )
    # one round trip: the two running-balance rows, the payouts' own rows (a few per creator, not the
    # available account's entries), the running totals row
    sql = f"""
        SELECT a.code, b.currency, b.balance FROM {AccountBalance._meta.db_table} b
        JOIN {LedgerAccount._meta.db_table} a ON a.id = b.account_id WHERE a.code IN (%s, %s)
        UNION ALL
        SELECT 'paid_out', currency, SUM(amount) FROM {Payout._meta.db_table}
        WHERE creator_id = %s AND status <> %s GROUP BY currency
        UNION ALL
        SELECT 'lifetime', currency, earned - reversed FROM {CreatorTotal._meta.db_table} WHERE creator_id = %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [pending, available, creator.pk, PayoutState.FAILED, creator.pk])
        rows = cursor.fetchall()
    for code, currency, amount in rows:
        if code in (pending, available):  # liabilities: credit balances
            result[currency]["pending" if code == pending else "available"] = -int(amount)
        else:
            result[currency][code] = int(amount)
    return {currency: result[currency] for currency in sorted(result)}


def fan_supporting(*, customer, limit: int = 50) -> tuple[list, list]:
    """A fan's channel memberships (any status) and paid tips, newest first."""
    from billing.ledger.creators.models import Tip, TipStatus
    from billing.memberships.models import Membership

    memberships = list(
        Membership.objects.filter(customer=customer, tier__creator__isnull=False)
        .select_related("tier__creator", "price")
        .order_by("-created_at")[:limit]
    )
    tips = list(
        Tip.objects.filter(customer=customer, status=TipStatus.PAID)
        .select_related("creator")
        .order_by("-paid_at")[:limit]
    )
    return memberships, tips
