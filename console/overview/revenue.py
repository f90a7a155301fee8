"""Net revenue from the ledger, per currency and UTC day, from the postings of the money the
providers moved (source `payment`: charges, refunds, lost disputes), read from the ledger's daily
totals (one query over a row per account and day, however many payments):

    charges      their debits to `cash:<provider>` (money in)
    refunds      their debits to `refunds` (a refund of an invoiced charge also gets a credit note,
                 which credits `refunds` back and takes the amount off revenue: the `refunds`
                 account then nets to zero, so its balance is not the money refunded)
    chargebacks  their debits to `chargebacks` (disputes lost)
    fees         their debits to `provider_fees` (what the providers kept of charges)
    net          charges - refunds - chargebacks (Stripe's "net volume": fees are not taken off)

So over any range `net - fees` is the change of the `cash:*` balances made by payment postings,
and `chargebacks` and `fees` the change of those accounts' balances.
"""

from __future__ import annotations

from collections import defaultdict

from billing.ledger.selectors import ledger_daily_debits
from console.overview.range import DateRange

KINDS = ("charges", "refunds", "chargebacks", "fees")
ACCOUNTS = {"refunds": "refunds", "chargebacks": "chargebacks", "provider_fees": "fees"}
CASH_PREFIX = "cash:"


def revenue_figures(*, period: DateRange) -> list[dict]:
    """Per currency: charges, refunds, chargebacks and net over `period`, and net each day."""
    rows = ledger_daily_debits(
        source="payment", start=period.start, end=period.end, codes=tuple(ACCOUNTS), prefixes=(CASH_PREFIX,)
    )
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    daily: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for code, currency, day, amount in rows:
        kind = ACCOUNTS.get(code, "charges")
        totals[currency][kind] += int(amount)
        if kind != "fees":
            daily[currency][day] += int(amount) if kind == "charges" else -int(amount)
    dates = period.dates()
    return [
        {
            "currency": currency,
            **totals[currency],
            "net": totals[currency]["charges"]
            - totals[currency]["refunds"]
            - totals[currency]["chargebacks"],
            "series": [{"date": d, "net": daily[currency].get(d, 0)} for d in dates],
        }
        for currency in sorted(totals)
    ]
