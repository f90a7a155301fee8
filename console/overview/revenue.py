"""Net revenue from the ledger (one query), per currency and UTC day, from the postings of the
money the providers moved (source `payment`: charges, refunds, lost disputes):

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

from django.db import connection

from console.overview.range import DateRange

KINDS = ("charges", "refunds", "chargebacks", "fees")
ACCOUNTS = {"refunds": "refunds", "chargebacks": "chargebacks", "provider_fees": "fees"}

_SQL = """
SELECT a.code, e.currency, (e.occurred_at AT TIME ZONE 'UTC')::date, SUM(e.amount)
  FROM ledger_journalentry e
  JOIN ledger_ledgeraccount a ON a.id = e.account_id
 WHERE e.transaction_id IN (SELECT id FROM ledger_journaltransaction
                             WHERE source = 'payment' AND occurred_at >= %(since)s AND occurred_at < %(until)s)
   AND e.occurred_at >= %(since)s AND e.occurred_at < %(until)s
   AND e.amount > 0
   AND (a.code LIKE 'cash:%%' OR a.code IN ('refunds', 'chargebacks', 'provider_fees'))
 GROUP BY 1, 2, 3
"""


def revenue_figures(*, period: DateRange) -> list[dict]:
    """Per currency: charges, refunds, chargebacks and net over `period`, and net each day."""
    with connection.cursor() as cursor:
        cursor.execute(_SQL, {"since": period.since, "until": period.until})
        rows = cursor.fetchall()
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
