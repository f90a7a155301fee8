"""Credits paying for usage: where the tenant gave a credit a value in the invoice's currency, a
customer's usable credits pay the usage lines of its invoices (after coupons, before tax), once per
invoice, never more than the balance holds, never the fee."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.invoicing.adjustments import Credits, Discount, Line, Rate, adjust, credits_value
from billing.invoicing.close import period_close_many
from billing.invoicing.models import CreditValue, Invoice
from billing.memberships.models import Customer
from billing.metering.credit_models import CreditAccount, CreditLedgerEntry
from billing.metering.credits import credit_grant_create
from billing.metering.ingest import events_ingest
from billing.tiers.catalog import catalog_import
from tests.billing.test_invoice_pages import _login
from tests.billing.test_period_close import _items, invoices, subscribe, use
from tests.billing.test_period_close import shop as period_shop
from tests.billing.test_sandbox_checkout import advance
from tests.billing.test_usage_prices import USAGE

CREDIT = 1_000_000  # micro-credits


# --- the rule (pure) -------------------------------------------------------------------------------


def test_credits_pay_the_usage_lines_not_the_fee():
    lines = [Line(amount=2900), Line(amount=19_125, usage=True)]
    adjusted = adjust(
        currency="usd", lines=lines, credits=Credits(balance=5_000 * CREDIT, unit_amount=Decimal(1))
    )
    assert (adjusted.credits_applied, adjusted.credits_used) == (5_000, 5_000 * CREDIT)
    assert adjusted.discount == 0 and adjusted.total == 2900 + 19_125 - 5_000
    assert [share.discount for share in adjusted.lines] == [0, 5_000]


def test_credits_pay_at_most_the_usage_and_keep_the_rest():
    lines = [Line(amount=2900), Line(amount=700, usage=True), Line(amount=300, usage=True)]
    adjusted = adjust(
        currency="usd", lines=lines, credits=Credits(balance=5_000 * CREDIT, unit_amount=Decimal(1))
    )
    assert (adjusted.credits_applied, adjusted.credits_used) == (1_000, 1_000 * CREDIT)
    assert adjusted.total == 2900 and [s.discount for s in adjusted.lines] == [0, 700, 300]


def test_credits_come_after_coupons_and_before_tax():
    lines = [Line(amount=1_000, usage=True)]
    adjusted = adjust(
        currency="usd",
        lines=lines,
        discounts=[Discount(key=1, code="HALF", percent_off=Decimal(50))],
        rates=[Rate(key=1, name="VAT", percent=Decimal(10))],
        credits=Credits(balance=200 * CREDIT, unit_amount=Decimal(1)),
    )
    # 1,000 - 500 (coupon) - 200 (credits) = 300, tax 10 % = 30
    assert (adjusted.discount, adjusted.credits_applied, adjusted.tax, adjusted.total) == (500, 200, 30, 330)


def test_a_fraction_of_a_cent_of_credits_pays_nothing_and_values_round_in_the_customers_favour():
    assert credits_value(Credits(balance=CREDIT // 2, unit_amount=Decimal(1)), 1_000) == (0, 0)
    # 7 credits at 0.3¢ are worth 2.1¢ → 2¢, which takes 6.666667 credits (rounded up, ≤ the balance)
    assert credits_value(Credits(balance=7 * CREDIT, unit_amount=Decimal("0.3")), 1_000) == (2, 6_666_667)
    # krw: 1 credit = ₩10
    assert credits_value(Credits(balance=15 * CREDIT, unit_amount=Decimal(10)), 1_000) == (150, 15 * CREDIT)


@settings(max_examples=300, deadline=None)
@given(
    fee=st.integers(0, 10**7),
    usage=st.lists(st.integers(-(10**5), 10**7), max_size=4),
    balance=st.integers(0, 10**13),
    unit=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=4),
    percent=st.one_of(st.none(), st.decimals(min_value=1, max_value=100, places=2)),
)
def test_credits_never_pay_more_than_the_usage_or_use_more_than_the_balance(
    fee, usage, balance, unit, percent
):
    lines = [Line(amount=fee)] + [Line(amount=a, usage=True) for a in usage]
    discounts = [Discount(key=1, code="C", percent_off=percent)] if percent else []
    adjusted = adjust(
        currency="usd", lines=lines, discounts=discounts, credits=Credits(balance=balance, unit_amount=unit)
    )
    applied, used = adjusted.credits_applied, adjusted.credits_used
    assert 0 <= used <= balance and applied >= 0 and adjusted.total >= 0
    assert applied <= sum(max(a, 0) for a in usage)
    assert applied <= Decimal(balance) * unit / CREDIT  # never worth more than the balance
    assert Decimal(used) * unit / CREDIT >= applied  # the credits used pay the amount …
    assert used == 0 or Decimal(used - 1) * unit / CREDIT < applied  # … and not a micro-credit more
    assert sum(s.discount for s in adjusted.lines) == adjusted.discount + applied


# --- on invoices -----------------------------------------------------------------------------------


@pytest.fixture
def shop(alpha, monkeypatch):
    return period_shop.__wrapped__(alpha, monkeypatch)


def _balance(fixture, external_id="c1"):
    with tenant_context(fixture.tenant):
        account = CreditAccount.objects.filter(customer__external_id=external_id).first()
        return account.balance if account else 0


def _grant(fixture, credits, external_id="c1"):
    with tenant_context(fixture.tenant):
        customer, _ = Customer.objects.get_or_create(external_id=external_id)
        credit_grant_create(customer=customer, amount=credits * CREDIT)


def test_a_sandbox_month_paid_partly_with_credits(shop, django_capture_on_commit_callbacks):
    with tenant_context(shop.tenant):
        CreditValue.objects.create(currency="usd", unit_amount_decimal=Decimal(1))  # 1 credit = 1¢
    _grant(shop, 5_000)
    subscribe(shop, django_capture_on_commit_callbacks)
    [first] = invoices(shop)
    assert (first.total, first.credits_applied) == (2900, 0)  # the fee in advance: credits pay no fee
    assert _balance(shop) == 5_000 * CREDIT
    use(shop, 12_000, 501)
    upcoming = shop.api().get("/api/v1/customers/c1/invoices/upcoming").json()
    assert (upcoming["credits_applied"], upcoming["total"]) == (5_000, 19_125 + 2900 - 5_000)
    assert _balance(shop) == 5_000 * CREDIT  # a preview spends nothing
    advance(shop, 31, django_capture_on_commit_callbacks)
    _, renewal = invoices(shop)
    # 19,125¢ of usage (test_period_close's hand computation) + 2,900¢ fee - 5,000¢ of credits
    assert (renewal.credits_applied, renewal.credits_used) == (5_000, 5_000 * CREDIT)
    assert (renewal.total, renewal.status, renewal.amount_paid) == (17_025, "paid", 17_025)
    assert _balance(shop) == 0
    with tenant_context(shop.tenant):
        spent = CreditLedgerEntry.objects.filter(kind="invoice", reference=f"invoice:{renewal.pk}")
        assert sum(e.amount for e in spent) == -5_000 * CREDIT
    body = shop.api().get(f"/api/v1/invoices/{renewal.pk}").json()
    assert (body["credits_applied"], body["credits_used"], body["total"]) == (5_000, "5000.000000", 17_025)
    page = _login(shop, shop.owner_email).get(f"/invoices/{renewal.pk}/")
    text = re.sub(r"\s+", " ", page.content.decode())
    assert page.status_code == 200 and "Credits applied" in text and "5,000 credits on usage" in text, text[
        text.find("Subtotal") - 200 :
    ][:1500]
    assert shop.api().get(f"/api/v1/invoices/{renewal.pk}/pdf").content.startswith(b"%PDF")


def test_without_a_credit_value_credits_pay_nothing(shop, django_capture_on_commit_callbacks):
    _grant(shop, 5_000)
    subscribe(shop, django_capture_on_commit_callbacks)
    use(shop, 12_000, 501)
    advance(shop, 31, django_capture_on_commit_callbacks)
    _, renewal = invoices(shop)
    assert (renewal.credits_applied, renewal.total) == (0, 22_025)
    assert _balance(shop) == 5_000 * CREDIT


START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _usage_for(fixture, customers):
    with tenant_context(fixture.tenant):
        catalog_import(text=USAGE)
        CreditValue.objects.create(currency="usd", unit_amount_decimal=Decimal("0.5"))  # 2 credits = 1¢
        events_ingest(
            events=[
                {"id": f"e-{c}", "customer": c, "type": "llm.call", "timestamp": "2026-11-05T10:00:00Z",
                 "properties": {"tokens": 3_000}}
                for c in customers
            ],
            create_customers=True,
            now=dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC),
        )  # fmt: skip


def test_a_billing_run_spends_each_customers_credits_once(alpha):
    _usage_for(alpha, ["cust0", "cust1"])
    _grant(alpha, 1_000, "cust0")  # worth 500¢, of 4,000¢ usage
    _grant(alpha, 100_000, "cust1")  # worth 50,000¢: pays all 4,000¢ of usage
    with tenant_context(alpha.tenant):
        first = period_close_many(_items(3))
        again = period_close_many(_items(3))
        assert [i.pk for i in again] == [i.pk for i in first]
        assert [(i.credits_applied, i.total) for i in first] == [
            (500, 2900 + 3_500),
            (4_000, 2900),
            (0, 2900),
        ]
    assert _balance(alpha, "cust0") == 0
    assert _balance(alpha, "cust1") == (100_000 - 8_000) * CREDIT


def test_racing_billing_runs_spend_credits_once(live_tenant):
    from tests.helpers import committed, run_parallel

    committed(lambda: _usage_for(live_tenant, [f"cust{i}" for i in range(6)]))
    for i in range(6):
        committed(lambda i=i: _grant(live_tenant, 3_000, f"cust{i}"))  # 1,500¢ each

    def run(_):
        with tenant_context(live_tenant.tenant):
            return [(i.pk, i.credits_applied) for i in period_close_many(_items(6))]

    results = run_parallel(run, 3)
    assert results[0] == results[1] == results[2]
    assert [applied for _, applied in results[0]] == [1_500] * 6

    def spent():
        with tenant_context(live_tenant.tenant):
            return (
                CreditLedgerEntry.objects.filter(kind="invoice").count(),
                sorted(CreditAccount.objects.values_list("balance", flat=True)),
                Invoice.objects.count(),
            )

    assert committed(spent) == (6, [0] * 6, 6)


@pytest.mark.parametrize("value", ["0", "-1", "abc", ""])
def test_a_credit_value_must_be_positive(alpha, value):
    response = alpha.api().put(
        "/api/v1/credit-values/usd", {"unit_amount_decimal": value}, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
    assert alpha.api().get("/api/v1/credit-values").json()["results"] == []


def test_credit_values_are_set_listed_and_removed(alpha):
    api = alpha.api()
    set_ = api.put(
        "/api/v1/credit-values/USD", {"unit_amount_decimal": "0.25"}, content_type="application/json"
    )
    assert set_.status_code == 200 and set_.json() == {"currency": "usd", "unit_amount_decimal": "0.25"}
    again = api.put(
        "/api/v1/credit-values/usd", {"unit_amount_decimal": "2"}, content_type="application/json"
    )
    assert again.json()["unit_amount_decimal"] == "2"
    assert api.get("/api/v1/credit-values").json()["results"] == [
        {"currency": "usd", "unit_amount_decimal": "2"}
    ]
    assert api.put(
        "/api/v1/credit-values/us1", {"unit_amount_decimal": "2"}, content_type="application/json"
    ).status_code in (400, 404)
    assert api.delete("/api/v1/credit-values/usd").status_code == 204
    assert api.delete("/api/v1/credit-values/usd").status_code == 404
