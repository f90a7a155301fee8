"""Reads for the staff creator pages: a page of creators with their balances, payouts by status."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import F, Q, QuerySet

from billing.ledger.creators.earnings import available_account, pending_account
from billing.ledger.creators.models import Creator, Payout
from billing.ledger.models import AccountBalance

# the lists' sort keys (?sort=key, -key for descending) and what the database orders by. Creators
# are a platform's sellers (hundreds, a few thousand): sorting them is cheap without more indexes;
# their balances are ledger accounts per currency, so the list does not sort by them. Payouts
# grow with every run of every schedule: each order has an index on (column, id) (creators 0004).
CREATOR_SORTS = {
    "name": F("display_name"),
    "handle": F("handle"),
    "payouts": F("payout_status"),
    "created": F("created_at"),
}
DEFAULT_CREATOR_SORT = "handle"
PAYOUT_SORTS = {"requested": F("requested_at"), "amount": F("amount"), "status": F("status")}
DEFAULT_PAYOUT_SORT = "-requested"


def creator_search(*, q: str = "") -> QuerySet[Creator]:
    creators = Creator.objects.order_by("handle")
    q = q.strip()[:100]
    if q:
        creators = creators.filter(
            Q(handle__icontains=q) | Q(display_name__icontains=q) | Q(email__icontains=q)
        )
    return creators


def balances_for(creators: list[Creator]) -> dict[int, list[dict]]:
    """{creator id: [{currency, pending, available}]} for a page of creators, in one query."""
    codes = {}
    for creator in creators:
        codes[pending_account(creator.handle)] = (creator.pk, "pending")
        codes[available_account(creator.handle)] = (creator.pk, "available")
    found: dict[int, dict[str, dict]] = defaultdict(dict)
    for code, currency, balance in AccountBalance.objects.filter(account__code__in=list(codes)).values_list(
        "account__code", "currency", "balance"
    ):
        pk, kind = codes[code]
        row = found[pk].setdefault(currency, {"currency": currency, "pending": 0, "available": 0})
        row[kind] = -balance  # liabilities: a credit balance is what the platform owes
    return {pk: [rows[c] for c in sorted(rows)] for pk, rows in found.items()}


PAYOUT_STATUSES = ("requested", "processing", "paid", "failed")


def payout_search(*, status: str = "", handle: str = "") -> QuerySet[Payout]:
    payouts = Payout.objects.select_related("creator").order_by("-requested_at", "-id")
    if status in PAYOUT_STATUSES:
        payouts = payouts.filter(status=status)
    if handle:
        payouts = payouts.filter(creator__handle=handle.strip()[:40])
    return payouts
