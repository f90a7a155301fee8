"""What the overview page shows of the figures: one card per figure (its value, a line under it,
an empty state that says what to do) and the data of its chart (labels and series, for the
charting include). Amounts are formatted by kernel.money, never by hand."""

from __future__ import annotations

from kernel.money import format_amount


def _money(rows: list[dict], key: str = "amount") -> str:
    return " · ".join(format_amount(row[key], row["currency"]) for row in rows)


def _dates(series: list[dict]) -> list[str]:
    return [point["date"].isoformat() for point in series]


def open_invoice_rows(figures: dict) -> list[dict]:
    return [
        {**row, "amount_display": format_amount(row["amount_due"], row["currency"])}
        for row in figures["failed_payments"]["open_invoices"]
    ]


def overview_charts(figures: dict) -> dict[str, dict]:
    """{chart id: {"labels": [dates], "datasets": [{"label", "data", "kind"?}], "money": currency?}}"""
    subs, failed = figures["subscriptions"], figures["failed_payments"]
    sync, hooks = figures["usage_sync"], figures["webhooks"]
    labels = _dates(subs["series"])

    def line(series, key, label, kind="line"):
        return {"label": label, "data": [point[key] for point in series], "kind": kind}

    return {
        "mrr": {
            "labels": labels,
            "datasets": [
                line(row["series"], "amount", f"MRR ({row['currency'].upper()})") for row in figures["mrr"]
            ],
            "currencies": [row["currency"] for row in figures["mrr"]],
        },
        "subscriptions": {
            "labels": labels,
            "datasets": [
                line(subs["series"], "active", "Active"),
                line(subs["series"], "trialing", "Trialing"),
                line(subs["series"], "past_due", "Past due"),
            ],
        },
        "movement": {
            "labels": labels,
            "datasets": [
                line(subs["series"], "new", "New", "bar"),
                line(subs["series"], "churned", "Churned", "bar"),
            ],
        },
        "revenue": {
            "labels": labels,
            "datasets": [
                line(row["series"], "net", f"Net ({row['currency'].upper()})", "bar")
                for row in figures["revenue"]
            ],
            "currencies": [row["currency"] for row in figures["revenue"]],
        },
        "failed": {
            "labels": labels,
            "datasets": [line(failed["series"], "failed_charges", "Failed charges", "bar")],
        },
        "sync": {
            "labels": labels,
            "datasets": [
                line(sync["series"], "units", "Units reported", "bar"),
                line(sync["series"], "failures", "Failures", "bar"),
            ],
        },
        "webhooks": {
            "labels": labels,
            "datasets": [
                line(hooks["series"], "inbox", "Provider events not applied", "bar"),
                line(hooks["series"], "deliveries", "Failing deliveries", "bar"),
            ],
        },
    }


def overview_cards(figures: dict) -> list[dict]:
    """The figure cards in page order: key (its chart), title, value, a note, and an empty state."""
    subs, failed = figures["subscriptions"], figures["failed_payments"]
    sync, hooks = figures["usage_sync"], figures["webhooks"]
    mrr, revenue = figures["mrr"], figures["revenue"]
    inbox_bad = hooks["inbox_dead"] + hooks["inbox_failed"] + hooks["inbox_unmatched"]
    deliveries_bad = hooks["deliveries_dead"] + hooks["deliveries_failed"]
    last = sync["last_run"]
    anything = (
        any(subs[s] for s in ("active", "trialing", "past_due", "paused")) or subs["new"] or subs["churned"]
    )
    return [
        {
            "key": "mrr",
            "title": "MRR",
            "value": _money(mrr) if mrr else format_amount(0, "usd"),
            "note": f"ARR {_money(mrr, 'arr')}" if mrr else "",
            "empty": None
            if mrr
            else {
                "title": "No paying subscriptions yet",
                "text": "MRR counts active and past-due subscriptions at their price. Share your pricing page "
                "or start a checkout through the API.",
                "href": "/pricing/",
                "action": "Open the pricing page",
            },
        },
        {
            "key": "subscriptions",
            "title": "Subscriptions",
            "value": f"{subs['active']:,} active",
            "note": f"{subs['trialing']:,} trialing · {subs['past_due']:,} past due · {subs['paused']:,} paused",
            "empty": None
            if anything
            else {
                "title": "No subscriptions yet",
                "text": "Customers appear here when they subscribe from your pricing page or the API.",
                "href": "/api/docs/",
                "action": "See the API",
            },
        },
        {
            "key": "movement",
            "title": "New vs churned",
            "value": f"+{subs['new']:,} / −{subs['churned']:,}",
            "note": "subscriptions started / canceled in this period",
            "empty": None,
        },
        {
            "key": "revenue",
            "title": "Net revenue",
            "value": _money(revenue, "net") if revenue else format_amount(0, "usd"),
            "note": " · ".join(
                f"{format_amount(r['charges'], r['currency'])} charged − "
                f"{format_amount(r['refunds'], r['currency'])} refunded − "
                f"{format_amount(r['chargebacks'], r['currency'])} charged back "
                f"({format_amount(r['fees'], r['currency'])} provider fees)"
                for r in revenue
            ),
            "empty": None
            if revenue
            else {
                "title": "No payments in this period",
                "text": "Net revenue is charges less refunds and chargebacks, from the ledger. Try a longer range.",
                "href": "?range=90d",
                "action": "Last 90 days",
            },
        },
        {
            "key": "failed",
            "title": "Failed payments",
            "value": f"{failed['past_due']:,} past due",
            "note": f"{failed['invoices']:,} open invoice{'s' if failed['invoices'] != 1 else ''} with a failed attempt"
            + (f" ({_money(failed['amount_due'])} due)" if failed["amount_due"] else "")
            + f" · {failed['failed_charges']:,} failed charge{'s' if failed['failed_charges'] != 1 else ''} "
            "in this period",
            "attention": bool(failed["past_due"] or failed["invoices"]),
            "empty": None,
        },
        {
            "key": "sync",
            "title": "Unsynced usage",
            "value": f"{sync['pending_units']:,} unit{'s' if sync['pending_units'] != 1 else ''} pending"
            if sync["pending_units"] or not (last and last["failures"])
            else f"{last['failures']:,} failure{'s' if last['failures'] != 1 else ''} in the last sync",
            "note": (
                f"{sync['pending_reports']:,} report{'s' if sync['pending_reports'] != 1 else ''} waiting · "
                f"{sync['refused_reports']:,} refused in this period · last sync "
                + (
                    f"{last['started_at']:%Y-%m-%d %H:%M} UTC ({last['status']}, {last['failures']:,} failures)"
                    if last
                    else "never"
                )
            ),
            "attention": bool(
                sync["pending_reports"] or sync["refused_reports"] or (last and last["failures"])
            ),
            "empty": None,
        },
        {
            "key": "webhooks",
            "title": "Webhook health",
            "value": "Healthy"
            if not (inbox_bad or deliveries_bad or hooks["failing_endpoints"])
            else f"{inbox_bad:,} event{'s' if inbox_bad != 1 else ''} need{'s' if inbox_bad == 1 else ''} a replay",
            "note": f"{hooks['inbox_dead']:,} dead · {hooks['inbox_failed']:,} retrying · "
            f"{hooks['inbox_unmatched']:,} unmatched provider events · {deliveries_bad:,} failing deliveries · "
            f"{len(hooks['failing_endpoints']):,} failing endpoint{'s' if len(hooks['failing_endpoints']) != 1 else ''}",
            "attention": bool(inbox_bad or deliveries_bad or hooks["failing_endpoints"]),
            "empty": None,
        },
    ]
