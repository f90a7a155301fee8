"""What the creator dashboard reads (one query per section, never per row): monthly earnings,
members per tier, tips per item, and the creator's ledger lines."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from billing.ledger.creators.earnings import available_account, pending_account
from billing.ledger.creators.models import Creator, Earning, EarningKind
from billing.ledger.models import JournalEntry
from billing.memberships.models import LIVE_STATUSES, Membership
from billing.tiers.models import Price, Tier

MONTHS = 12


def _month_starts(now: dt.datetime, months: int) -> list[dt.datetime]:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = []
    year, month = first.year, first.month
    for _ in range(months):
        starts.append(first.replace(year=year, month=month))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(starts))


def creator_monthly_earnings(
    *, creator: Creator, currency: str, now: dt.datetime | None = None
) -> list[dict]:
    """Net earned per calendar month (UTC) over the last twelve, oldest first: [{"start", "value"}]."""
    starts = _month_starts(now or timezone.now(), MONTHS)
    rows = dict(
        Earning.objects.filter(creator=creator, currency=currency, earned_at__gte=starts[0])
        .annotate(month=TruncMonth("earned_at", tzinfo=dt.UTC))
        .values_list("month")
        .annotate(total=Sum("net"))
        .values_list("month", "total")
    )
    return [{"start": start, "value": rows.get(start, 0)} for start in starts]


def creator_tier_members(*, creator: Creator) -> QuerySet[Tier]:
    """The creator's published tiers with their live members counted and their active prices
    (`active_prices`, monthly first)."""
    return (
        Tier.objects.filter(creator=creator, is_public=True)
        .annotate(members=Count("memberships", filter=Q(memberships__status__in=LIVE_STATUSES)))
        .prefetch_related(
            Prefetch(
                "prices",
                queryset=Price.objects.filter(active=True).order_by("interval", "id"),
                to_attr="active_prices",
            )
        )
        .order_by("sort_order", "id")
    )


def creator_tips_by_item(*, creator: Creator) -> list[dict]:
    """Tips per item (blank: tips for the channel), most earned first."""
    return list(
        Earning.objects.filter(creator=creator, kind=EarningKind.TIP)
        .values("item_id", "currency")
        .annotate(tips=Count("id"), gross=Sum("gross"), net=Sum("net"))
        .order_by("-net", "item_id")
    )


def creator_ledger_lines(*, creator: Creator) -> QuerySet[JournalEntry]:
    """Every entry on the creator's two accounts, newest first, with its transaction."""
    return (
        JournalEntry.objects.filter(
            account__code__in=[pending_account(creator.handle), available_account(creator.handle)]
        )
        .select_related("transaction", "account")
        .order_by("-occurred_at", "-id")
    )


def live_members(*, creator: Creator) -> int:
    return Membership.objects.filter(tier__creator=creator, status__in=LIVE_STATUSES).count()
