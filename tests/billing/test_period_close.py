"""Period close and collection by our engine, on the sandbox: a customer on a graduated usage price
uses the product through a sandbox month, is invoiced the hand-computed amount, pays it with the
sandbox card; closing the same period twice makes one invoice; a failing card leaves the invoice
open through dunning."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.invoicing.close import BilledSubscription, PeriodToClose, period_close, period_close_many
from billing.invoicing.models import Invoice, InvoicePayment
from billing.memberships.models import Payment
from billing.metering.ingest import events_ingest
from billing.providers.models import EngineSubscription
from billing.providers.services import provider_account_upsert
from billing.tiers.catalog import catalog_import
from tests.billing.test_sandbox_checkout import advance, pay, start_checkout
from tests.billing.test_usage_prices import USAGE
from tests.billing.test_webhooks_in import process_all


@pytest.fixture
def shop(alpha, monkeypatch):
    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
        provider_account_upsert(provider="sandbox")
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    response = alpha.api().post("/api/v1/customers", {"external_id": "c1"}, content_type="application/json")
    assert response.status_code == 201
    return alpha


def subscribe(shop, capture, card="4242424242424242"):
    url = start_checkout(shop, price="pro-monthly").json()["url"]
    pay(shop, url, card, capture)
    process_all(shop)


def use(shop, *tokens):
    with tenant_context(shop.tenant):
        stamp = timezone.now().isoformat()
        result = events_ingest(
            events=[
                {"id": f"u{i}-{n}", "customer": "c1", "type": "llm.call", "timestamp": stamp,
                 "properties": {"tokens": n}}
                for i, n in enumerate(tokens)
            ]
        )  # fmt: skip
        assert result.inserted == len(tokens), result.rejected


def invoices(shop):
    with tenant_context(shop.tenant):
        return list(Invoice.objects.order_by("id").prefetch_related("lines"))


def test_a_sandbox_month_on_a_graduated_usage_price_is_invoiced_to_the_cent_and_paid(
    shop, django_capture_on_commit_callbacks
):
    subscribe(shop, django_capture_on_commit_callbacks)
    [first] = invoices(shop)
    assert (first.billing_reason, first.total, first.status, first.amount_paid) == (
        "subscription_create", 2900, "paid", 2900
    )  # fmt: skip
    use(shop, 12_000, 501)
    advance(shop, 31, django_capture_on_commit_callbacks)
    first_again, renewal = invoices(shop)
    assert first_again.pk == first.pk
    amounts = [(line.description, line.amount) for line in renewal.lines.all()]
    # 12,501 tokens: 1,000 free + 9,000 × 2¢ + 2,501 × 0.25¢ + $5 flat = 19,125.25¢ → 19,125¢
    # 2 calls × 0.1¢ = 0.2¢ → 0; 2 calls make no whole package of 1,000 → 0; next month's fee 2,900¢
    assert amounts == [("Tokens: 12,501", 19_125), ("Calls: 2", 0), ("Calls: 2", 0), ("Pro (monthly)", 2900)]
    assert (renewal.billing_reason, renewal.total, renewal.status, renewal.amount_paid) == (
        "subscription_cycle", 22_025, "paid", 22_025
    )  # fmt: skip
    assert renewal.number.startswith("ALPHA-") and renewal.collected_by == "engine"
    with tenant_context(shop.tenant):
        paid = Payment.objects.filter(kind="charge").order_by("id")
        assert [p.amount for p in paid] == [2900, 22_025]
        assert InvoicePayment.objects.filter(invoice=renewal, amount_applied=22_025).count() == 1
    pdf = shop.api().get(f"/api/v1/invoices/{renewal.pk}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_closing_the_same_period_twice_makes_one_invoice(shop, django_capture_on_commit_callbacks):
    subscribe(shop, django_capture_on_commit_callbacks)
    use(shop, 5_000)
    with tenant_context(shop.tenant):
        sub = EngineSubscription.objects.get()
        engine_sub = BilledSubscription(
            provider="sandbox", subscription_id=sub.id, customer="c1", price_code=sub.price, quantity=1
        )
        closes = [
            period_close(
                sub=engine_sub, period_start=sub.period_start, period_end=sub.period_end, renews=True
            )
            for _ in range(2)
        ]
        assert closes[0].pk == closes[1].pk and closes[0].total == 8_000 + 2900  # 4,000 × 2¢
    advance(shop, 31, django_capture_on_commit_callbacks)  # the renewal finds the invoice made above
    with tenant_context(shop.tenant):
        assert Invoice.objects.filter(billing_reason="subscription_cycle").count() == 1
        assert Invoice.objects.get(pk=closes[0].pk).status == "paid"


def test_a_failing_card_leaves_the_renewal_invoice_open_through_dunning(
    shop, django_capture_on_commit_callbacks
):
    from billing.events.models import OutboundEvent
    from billing.events.services import endpoint_create

    with tenant_context(shop.tenant):
        endpoint_create(url="https://hooks.example.test/in")
    subscribe(shop, django_capture_on_commit_callbacks, card="4000000000000341")
    use(shop, 2_000)
    advance(shop, 31, django_capture_on_commit_callbacks)  # renewal fails
    advance(shop, 3, django_capture_on_commit_callbacks)  # the first retry fails too
    _, renewal = invoices(shop)
    assert (renewal.status, renewal.total, renewal.amount_due) == ("open", 2000 + 2900, 4900)
    with tenant_context(shop.tenant):
        attempts = InvoicePayment.objects.filter(invoice=renewal).values_list("payment__kind", flat=True)
        assert list(attempts) == ["failed", "failed"]
        assert OutboundEvent.objects.filter(type="invoice.payment_failed").count() == 2


def test_an_upgrade_now_is_invoiced_as_a_proration(shop, django_capture_on_commit_callbacks):
    subscribe(shop, django_capture_on_commit_callbacks)
    with tenant_context(shop.tenant):
        sub = EngineSubscription.objects.get()
    from billing.invoicing.engine.sandbox import subscription_change

    with django_capture_on_commit_callbacks(execute=True), tenant_context(shop.tenant):
        subscription_change(subscription_id=sub.id, price_ref="pro-monthly", unit_amount=2900, interval="month",
                            quantity=3)  # fmt: skip
    process_all(shop)
    _, change = invoices(shop)
    [line] = change.lines.all()
    assert change.billing_reason == "subscription_update" and line.proration and line.kind == "proration"
    # two more seats for (almost) the whole month, rounded down in the customer's favour
    assert 5790 <= change.total <= 5800 and change.status == "paid"
    assert re.search(r"× 1 to Pro \(monthly\) × 3", line.description)


# --- a billing run --------------------------------------------------------------------------------

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _items(n, **extra):
    return [
        PeriodToClose(
            sub=BilledSubscription("sandbox", f"sub_{i}", f"cust{i}", "pro-monthly", 1),
            period_start=START,
            period_end=END,
            renews=True,
            **extra,
        )
        for i in range(n)
    ]


def test_a_billing_run_closes_many_periods_once_each_with_their_usage(alpha):
    from billing.events.models import OutboundEvent
    from billing.events.services import endpoint_create

    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
        endpoint_create(url="https://hooks.example.test/in")
        events_ingest(
            events=[
                {"id": "a", "customer": "cust1", "type": "llm.call", "timestamp": "2026-11-05T10:00:00Z",
                 "properties": {"tokens": 3_000}},
                {"id": "b", "customer": "cust1", "type": "llm.call", "timestamp": "2026-12-01T00:10:00Z",
                 "properties": {"tokens": 99_000}},  # the next period's first hour: not this invoice
            ],
            create_customers=True,
            now=dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC),
        )  # fmt: skip
        first = period_close_many(_items(3))
        assert [i.number for i in first] == ["ALPHA-000001", "ALPHA-000002", "ALPHA-000003"]
        assert [i.total for i in first] == [2900, 2900 + 4_000, 2900]  # 2,000 tokens past 1,000 free × 2¢
        trial = period_close_many(_items(4, bill_usage=False))  # three closed before, one new
        assert [i.pk for i in trial[:3]] == [i.pk for i in first] and trial[3].number == "ALPHA-000004"
        assert Invoice.objects.count() == 4
        kinds = list(OutboundEvent.objects.values_list("type", flat=True))
        assert kinds.count("invoice.created") == 4 and kinds.count("invoice.finalized") == 4


def test_racing_billing_runs_make_one_invoice_per_period(live_tenant):
    from tests.helpers import committed, run_parallel

    committed(lambda: _seed_usage_catalog(live_tenant))

    def run(_):
        with tenant_context(live_tenant.tenant):
            return [invoice.pk for invoice in period_close_many(_items(20))]

    results = run_parallel(run, 3)
    assert results[0] == results[1] == results[2]

    def count():
        with tenant_context(live_tenant.tenant):
            return Invoice.objects.count(), sorted(Invoice.objects.values_list("number", flat=True))

    total, numbers = committed(count)
    prefix = live_tenant.tenant.slug.upper().replace("-", "")
    assert total == 20 and numbers == [f"{prefix}-{n:06d}" for n in range(1, 21)]


def _seed_usage_catalog(fixture):
    with tenant_context(fixture.tenant):
        catalog_import(text=USAGE)
