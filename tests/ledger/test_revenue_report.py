"""GET /api/v1/reports/revenue: billed, collected, deferred and recognized per day or month, JSON or
CSV, reconciling with the invoices and the ledger's balances; bad queries are 400s."""

import csv
import datetime as dt
import io

import pytest
from django_tenants.utils import tenant_context

from billing.invoicing.services import LineDraft, engine_invoice_ref, invoice_draft_create, invoice_finalize
from billing.ledger.models import RecognitionSchedule
from billing.ledger.recognition import recognition_run
from billing.ledger.selectors import ledger_balance
from billing.memberships.services import customer_upsert, payment_record
from billing.providers.base import PaymentState

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
URL = "/api/v1/reports/revenue"


def billed(amount, start, days, *, currency="usd", customer="ada", clock=None):
    if clock is not None:
        clock[0] = start + dt.timedelta(hours=9)
    buyer, _ = customer_upsert(external_id=customer)
    draft, _ = invoice_draft_create(
        customer=buyer,
        currency=currency,
        lines=[
            LineDraft(
                kind="fee", description="Plan", amount=amount, period_start=start,
                period_end=start + dt.timedelta(days=days),
            )
        ],
    )  # fmt: skip
    return invoice_finalize(invoice_id=draft.pk)


@pytest.fixture
def books(alpha, monkeypatch):
    """Two invoices in January (one paid), one in February, in usd; one in krw; recognized daily
    through 2026-02-14. Each invoice is finalized when its period starts (the clock is set)."""
    from django.utils import timezone

    clock = [T0]
    monkeypatch.setattr(timezone, "now", lambda: clock[0])
    with tenant_context(alpha.tenant):
        first = billed(31_000, T0, 31, clock=clock)
        billed(6_000, T0 + dt.timedelta(days=10), 30, customer="bob", clock=clock)
        billed(2_800, dt.datetime(2026, 2, 1, tzinfo=dt.UTC), 28, clock=clock)
        billed(30_000, T0, 30, currency="krw", customer="kim", clock=clock)
        payment_record(
            provider="sandbox", event_type="payment.succeeded",
            payment=PaymentState(payment_id="pay_1", amount=31_000, currency="usd", customer="ada",
                                 invoice=engine_invoice_ref(first)),
            occurred_at=T0 + dt.timedelta(days=2, hours=5), event_id="evt_pay_1",
        )  # fmt: skip
        for n in range(45):
            recognition_run(day=dt.date(2026, 1, 1) + dt.timedelta(days=n))
    return alpha


def test_a_monthly_report_reconciles_with_invoices_and_balances(books):
    response = books.api().get(URL, {"from": "2026-01-01", "to": "2026-02-14", "interval": "month"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["from"] == "2026-01-01" and body["interval"] == "month" and body["currency"] is None
    rows = {(r["period_start"], r["currency"]): r for r in body["periods"]}
    jan, feb = rows[("2026-01-01", "usd")], rows[("2026-02-01", "usd")]
    assert jan["period_end"] == "2026-02-01" and feb["period_end"] == "2026-02-15"  # clipped to `to`
    assert (jan["billed"], jan["collected"]) == (37_000, 31_000)
    assert (feb["billed"], feb["collected"]) == (2_800, 0)
    # January: all of the first invoice's 31 days, 21 of the second's 30
    assert jan["recognized"] == 31_000 + 6_000 * 21 // 30
    assert jan["deferred"] == 37_000 - jan["recognized"]
    with tenant_context(books.tenant):
        recognized = sum(s.recognized for s in RecognitionSchedule.objects.filter(currency="usd"))
        assert jan["recognized"] + feb["recognized"] == recognized
        assert feb["deferred"] == -ledger_balance(account="deferred_revenue", currency="usd")
        assert jan["deferred"] + feb["billed"] - feb["recognized"] == feb["deferred"]
        assert -ledger_balance(account="revenue", currency="usd") == recognized
    krw = rows[("2026-01-01", "krw")]
    assert (krw["billed"], krw["recognized"], krw["deferred"]) == (30_000, 30_000, 0)


def test_a_paid_tip_is_billed_collected_and_recognized_on_its_day(books):
    from billing.ledger.services import ledger_post

    day = dt.datetime(2026, 1, 3, 12, tzinfo=dt.UTC)
    with tenant_context(books.tenant):
        # as the creators' earnings post a paid tip, then its payment clears the receivable
        ledger_post(source="tip", source_id="tip-1", occurred_at=day, description="Tip to ann",
                    entries=[("receivable", "usd", 1_000), ("tips", "usd", -1_000)])  # fmt: skip
        payment_record(
            provider="sandbox", event_type="payment.succeeded",
            payment=PaymentState(payment_id="pay_tip", amount=1_000, currency="usd", customer="ada"),
            occurred_at=day, event_id="evt_pay_tip",
        )  # fmt: skip
    body = books.api().get(URL, {"from": "2026-01-03", "to": "2026-01-03", "currency": "usd"}).json()
    (row,) = body["periods"]
    assert (row["billed"], row["collected"], row["recognized"]) == (1_000, 31_000 + 1_000, 1_000 + 1_000)


def test_a_daily_report_in_one_currency_and_its_csv(books):
    query = {"from": "2026-01-01", "to": "2026-01-03", "currency": "usd"}
    body = books.api().get(URL, query).json()
    assert [r["period_start"] for r in body["periods"]] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert [r["recognized"] for r in body["periods"]] == [1_000, 1_000, 1_000]
    assert [r["deferred"] for r in body["periods"]] == [30_000, 29_000, 28_000]
    assert [r["collected"] for r in body["periods"]] == [0, 0, 31_000]

    for response in (
        books.api().get(URL, {**query, "format": "csv"}),
        books.api().get(URL, query, HTTP_ACCEPT="text/csv"),
    ):
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert [int(r["deferred"]) for r in rows] == [30_000, 29_000, 28_000]
        assert set(rows[0]) == {
            "period_start",
            "period_end",
            "currency",
            "billed",
            "collected",
            "deferred",
            "recognized",
        }


@pytest.mark.parametrize(
    "query, field",
    [
        ({}, "from"),
        ({"from": "2026-01-01"}, "to"),
        ({"from": "2026-13-01", "to": "2026-12-31"}, "from"),
        ({"from": "yesterday", "to": "2026-12-31"}, "from"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),  # 2,193 days
        ({"from": "2000-01-01", "to": "2026-01-01", "interval": "month"}, "to"),
        ({"from": "2026-01-01", "to": "2026-01-02", "interval": "week"}, "interval"),
        ({"from": "2026-01-01", "to": "2026-01-02", "currency": "USD"}, "currency"),
    ],
)
def test_bad_queries_are_400_json_even_when_csv_is_asked_for(alpha, query, field):
    for extra in ({}, {"HTTP_ACCEPT": "text/csv"}):
        response = alpha.api().get(URL, query, **extra)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_report_query"
        assert response.json()["error"]["details"]["field"] == field


def test_the_schema_describes_json_and_csv(alpha):
    import yaml

    schema = yaml.safe_load(alpha.client().get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/reports/revenue"]["get"]
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    names = {p["name"] for p in operation["parameters"]}
    assert {"from", "to", "interval", "currency", "format"} <= names
    report = schema["components"]["schemas"]["RevenueReportOutput"]
    assert set(report["properties"]) == {"from", "to", "interval", "currency", "periods"}
