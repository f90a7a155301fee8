"""The owner's overview (issue 13 item 3): MRR/ARR, subscriptions by status, new and churned, net
revenue, failed payments, unsynced usage and webhook health over a date range, each with a daily
series; the page and `GET /api/v1/reports/overview` show the same numbers, which reconcile with
hand-computed values and with the ledger's balances."""

import datetime as dt

import pytest
from django.db.models import Sum
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.roles import Role
from accounts.services import user_create
from billing.events.models import WebhookEndpoint
from billing.inbox.models import InboxEvent
from billing.invoicing.services import LineDraft, engine_invoice_ref, invoice_draft_create, invoice_finalize
from billing.ledger.selectors import ledger_balance
from billing.memberships.models import Membership, MembershipHistory, Payment
from billing.memberships.services import customer_upsert, payment_record
from billing.metering.models import MeterSyncRun
from billing.providers.base import PaymentState
from billing.tiers.models import Price
from console.overview.range import DateRange, range_parse, range_preset
from console.overview.selectors import overview_get
from tests.conftest import PASSWORD

TODAY = dt.datetime.now(dt.UTC).date()
FROM, TO = TODAY - dt.timedelta(days=9), TODAY
PERIOD = DateRange(FROM, TO)


def day(n: int, hour: int = 12) -> dt.datetime:
    """`n` days before today, at `hour` UTC."""
    return dt.datetime.combine(TODAY - dt.timedelta(days=n), dt.time(hour), tzinfo=dt.UTC)


def subscribe(external_id, price, *, status="active", at, quantity=1, tier=None):
    customer, _ = customer_upsert(external_id=external_id, email=f"{external_id}@example.com")
    membership = Membership.objects.create(
        customer=customer, tier=tier or price.tier, price=price, status=status, quantity=quantity,
        started_at=at, past_due_since=at if status == "past_due" else None,
    )  # fmt: skip
    _history(membership, at)
    return membership


def change(membership, status, *, at):
    membership.status = status
    if status == "past_due":
        membership.past_due_since = at
    membership.save()
    _history(membership, at)


def _history(membership, at):
    row = MembershipHistory.objects.create(
        membership=membership, status=membership.status, tier_id=membership.tier_id,
        quantity=membership.quantity, reason="test",
    )  # fmt: skip
    MembershipHistory.objects.filter(pk=row.pk).update(at=at)


def pay(kind, payment_id, amount, customer, *, at, currency="usd", invoice="", reference="", fee=None):
    return payment_record(
        provider="sandbox",
        event_type=kind,
        payment=PaymentState(
            payment_id=payment_id, amount=amount, currency=currency, customer=customer,
            invoice=invoice, reference=reference or payment_id, fee=fee,
        ),
        occurred_at=at,
        event_id=f"evt_{payment_id}",
    )  # fmt: skip


def invoice(external_id, amount, currency="usd"):
    customer, _ = customer_upsert(external_id=external_id)
    draft, _ = invoice_draft_create(
        customer=customer, currency=currency, lines=[LineDraft(kind="fee", description="Plan", amount=amount)]
    )
    return invoice_finalize(invoice_id=draft.pk)


def seed_overview(tenant) -> dict:
    """Memberships, invoices, payments, refunds, a lost dispute, a failed charge, a dead provider
    event, a failing endpoint and a meter sync run with failures, dated around the last 10 days
    (the tenant has the CI catalog)."""
    with tenant_context(tenant):
        team, pro = Price.objects.get(code="team-monthly"), Price.objects.get(code="pro-yearly")
        pro_monthly = Price.objects.get(code="pro-monthly")
        team_eur = Price.objects.create(
            tier=team.tier, code="team-eur", currency="eur", unit_amount=1500, interval="month", model="flat"
        )
        subscribe("ann", team, quantity=3, at=day(30))  # 3 x 19.00 = 57.00
        subscribe("bob", pro, at=day(5))  # new: 490.00 a year = 40.8333 a month
        subscribe("cat", team, status="trialing", at=day(3))  # new, trialing: no MRR
        eve = subscribe("eve", team, quantity=2, at=day(40))  # 38.00, past due since 2 days ago
        change(eve, "past_due", at=day(2))
        fay = subscribe("fay", pro_monthly, at=day(40))  # 49.00 until she cancels 4 days ago
        change(fay, "canceled", at=day(4))
        subscribe("gus", team_eur, quantity=2, at=day(20))  # 2 x 15.00 EUR, flat x quantity
        manual = subscribe("hal", team, at=day(25))  # granted by hand: active, no price, no MRR
        Membership.objects.filter(pk=manual.pk).update(price=None)

        paid = invoice("ann", 5700)
        pay("payment.succeeded", "ch_old", 500, "ann", at=day(15))  # before the range
        pay("payment.succeeded", "ch_ann", 5700, "ann", at=day(8), invoice=engine_invoice_ref(paid), fee=195)
        pay("refund.created", "re_ann", 1000, "ann", at=day(6), reference="ch_ann")
        pay("dispute.lost", "dp_ann", 700, "ann", at=day(1), reference="ch_ann")
        pay("payment.succeeded", "ch_gus", 3000, "gus", at=day(2), currency="eur")
        due = invoice("eve", 3800)
        pay("payment.failed", "fail_eve", 3800, "eve", at=day(2), invoice=engine_invoice_ref(due))
        invoice("cat", 1234)  # open, never attempted: not "needing attention"

        dead = InboxEvent.objects.create(provider="stripe", event_id="evt_dead", payload={}, status="dead")
        InboxEvent.objects.filter(pk=dead.pk).update(received_at=day(3))
        InboxEvent.objects.create(provider="stripe", event_id="evt_ok", payload={}, status="applied")
        WebhookEndpoint.objects.create(
            url="https://hooks.example.com/x", secret_encrypted="x", consecutive_failures=4
        )
        WebhookEndpoint.objects.create(url="https://ok.example.com/", secret_encrypted="x")
        MeterSyncRun.objects.create(started_at=day(1), status="partial", customers=10, units=120, failures=2)
        return {"paid": paid, "due": due}


@pytest.fixture
def tenant(ci_catalog):
    return ci_catalog, seed_overview(ci_catalog.tenant)


def _series(figure, key):
    return [point[key] for point in figure["series"]]


def test_the_figures_match_hand_computed_values(tenant):
    fixture, invoices = tenant
    with tenant_context(fixture.tenant):
        overview = overview_get(period=PERIOD)

    # MRR: active and past due, at the current price x quantity, a yearly price / 12, per currency
    eur, usd = overview["mrr"]
    assert (eur["currency"], usd["currency"]) == ("eur", "usd")
    assert usd["amount"] == 5700 + 3800 + 4083 and usd["arr"] == usd["amount"] * 12
    assert eur["amount"] == 3000 and eur["arr"] == 36000
    mrr = _series(usd, "amount")
    assert len(mrr) == 10 and mrr[0] == 5700 + 3800 + 4900  # bob not yet, fay still paying
    assert mrr[4] == round(5700 + 3800 + 4900 + 49000 / 12)  # bob from 5 days ago
    assert mrr[5] == mrr[-1] == 13583  # fay canceled 4 days ago; eve past due still counts

    subs = overview["subscriptions"]
    assert (subs["active"], subs["trialing"], subs["past_due"], subs["paused"]) == (4, 1, 1, 0)
    assert (subs["new"], subs["churned"]) == (2, 1)
    assert _series(subs, "active")[0] == 5  # ann, eve, fay, gus, hal
    assert _series(subs, "new") == [0, 0, 0, 0, 1, 0, 1, 0, 0, 0]
    assert _series(subs, "churned") == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert _series(subs, "past_due")[-4:] == [0, 1, 1, 1]

    # net revenue: charges - refunds - chargebacks in the range (the 5.00 before it left out)
    revenue = {row["currency"]: row for row in overview["revenue"]}
    assert {k: revenue["usd"][k] for k in ("charges", "refunds", "chargebacks", "net", "fees")} == {
        "charges": 5700, "refunds": 1000, "chargebacks": 700, "net": 4000, "fees": 195,
    }  # fmt: skip
    assert revenue["eur"]["net"] == revenue["eur"]["charges"] == 3000
    assert _series(revenue["usd"], "net") == [0, 5700, 0, -1000, 0, 0, 0, 0, -700, 0]

    failed = overview["failed_payments"]
    assert (failed["past_due"], failed["invoices"], failed["failed_charges"]) == (1, 1, 1)
    assert failed["amount_due"] == [{"currency": "usd", "amount": 3800}]
    assert [m["customer"] for m in failed["past_due_memberships"]] == ["eve"]
    assert [i["invoice"] for i in failed["open_invoices"]] == [invoices["due"].pk]
    assert _series(failed, "failed_charges")[7] == 1

    hooks = overview["webhooks"]
    assert (hooks["inbox_dead"], hooks["inbox_failed"], hooks["deliveries_dead"]) == (1, 0, 0)
    assert [e["url"] for e in hooks["failing_endpoints"]] == ["https://hooks.example.com/x"]
    assert _series(hooks, "inbox")[6] == 1

    sync = overview["usage_sync"]
    assert sync["last_run"]["failures"] == 2 and sync["pending_reports"] == 0
    assert _series(sync, "units")[8] == 120 and _series(sync, "failures")[8] == 2


def test_revenue_reconciles_with_the_ledger_balances(tenant):
    fixture, _ = tenant
    with tenant_context(fixture.tenant):
        for period in (PERIOD, DateRange(TODAY - dt.timedelta(days=60), TODAY), DateRange(FROM, FROM)):
            figures = {row["currency"]: row for row in overview_get(period=period)["revenue"]}
            for currency, row in figures.items():

                def moved(account, currency=currency, period=period):
                    return ledger_balance(
                        account=account, currency=currency, at=period.until
                    ) - ledger_balance(account=account, currency=currency, at=period.since)

                assert row["chargebacks"] == moved("chargebacks")
                assert row["fees"] == moved("provider_fees")
                # only payment postings touch cash here: its change is net revenue less fees
                assert row["net"] - row["fees"] == moved("cash:sandbox")
                # refunds are the money the providers gave back (the refund's credit note credits
                # the `refunds` account back, so its balance is not that)
                refunded = Payment.objects.filter(
                    kind="refund",
                    currency=currency,
                    occurred_at__gte=period.since,
                    occurred_at__lt=period.until,
                ).aggregate(total=Sum("amount"))["total"]
                assert row["refunds"] == (refunded or 0)
                assert row["net"] == sum(p["net"] for p in row["series"])
        everything = overview_get(period=DateRange(TODAY - dt.timedelta(days=60), TODAY))
        usd = next(row for row in everything["revenue"] if row["currency"] == "usd")
        assert (
            usd["net"] - usd["fees"]
            == ledger_balance(account="cash:sandbox", currency="usd")
            == 500 + 4000 - 195
        )


def test_todays_figures_match_the_memberships_as_they_are(tenant):
    fixture, _ = tenant
    with tenant_context(fixture.tenant):
        subs = overview_get(period=PERIOD)["subscriptions"]
        for status in ("active", "trialing", "past_due", "paused"):
            assert subs[status] == Membership.objects.filter(status=status).count()


def test_the_api_gives_the_same_numbers(tenant):
    fixture, _ = tenant
    response = fixture.api().get(f"/api/v1/reports/overview?from={FROM}&to={TO}")
    assert response.status_code == 200, response.content
    body = response.json()
    with tenant_context(fixture.tenant):
        expected = overview_get(period=PERIOD)
    assert body["from"] == str(FROM) and body["to"] == str(TO)
    assert body["mrr"][0]["amount"] == expected["mrr"][0]["amount"] == 3000
    assert body["mrr"][1]["series"][0] == {"date": str(FROM), "amount": 14400}
    assert body["subscriptions"]["active"] == 4 and len(body["subscriptions"]["series"]) == 10
    assert body["revenue"][1]["net"] == 4000
    assert body["failed_payments"]["past_due_memberships"][0]["customer"] == "eve"
    assert body["webhooks"]["inbox_dead"] == 1


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-13-01",
        "to=yesterday",
        "from=2026-02-01&to=2026-01-01",
        "from=2024-01-01&to=2026-01-01",
        "from=1999-12-31&to=2000-01-02",
        "from=2026-1-1",
    ],
)
def test_a_bad_range_is_a_400(alpha, query):
    response = alpha.api().get(f"/api/v1/reports/overview?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_report_range"


def test_the_api_defaults_to_the_last_30_days_and_a_new_tenant_has_zeros(alpha):
    # today as the API sees it, not as this module saw it on import: a run may cross midnight (UTC)
    before = dt.datetime.now(dt.UTC).date()
    body = alpha.api().get("/api/v1/reports/overview").json()
    today = dt.date.fromisoformat(body["to"])
    assert before <= today <= dt.datetime.now(dt.UTC).date()
    assert body["from"] == str(today - dt.timedelta(days=29))
    assert body["mrr"] == [] and body["revenue"] == []
    assert body["subscriptions"]["active"] == 0 and len(body["subscriptions"]["series"]) == 30
    assert body["usage_sync"]["last_run"] is None


def test_another_tenants_figures_are_not_seen(tenant, beta):
    body = beta.api().get(f"/api/v1/reports/overview?from={FROM}&to={TO}").json()
    assert body["mrr"] == [] and body["subscriptions"]["active"] == 0 and body["webhooks"]["inbox_dead"] == 0


def test_ranges_and_presets():
    on = dt.date(2026, 3, 15)
    assert range_preset("7d", on=on) == DateRange(dt.date(2026, 3, 9), on)
    assert range_preset("month", on=on) == DateRange(dt.date(2026, 3, 1), on)
    assert range_preset("90d", on=on).days == 90
    assert range_parse(start=None, end="2026-03-15") == DateRange(dt.date(2026, 2, 14), on)
    assert range_parse(start="2025-03-15", end="2026-03-15").days == 366
    period = DateRange(on, on)
    assert period.until - period.since == dt.timedelta(days=1)


# --- the page ---------------------------------------------------------------------------------------


def _client(fixture, role) -> Client:
    email = f"{role}@overview.test"
    with tenant_context(fixture.tenant):
        user_create(email=email, password=PASSWORD, role=role)
    client = fixture.client()
    assert client.post("/accounts/login/", {"login": email, "password": PASSWORD}).status_code == 302
    return client


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.FINANCE, Role.SUPPORT])
def test_staff_see_the_overview_with_the_apis_numbers(tenant, role):
    fixture, invoices = tenant
    page = _client(fixture, role).get(f"/dashboard/?from={FROM}&to={TO}&range=custom")
    assert page.status_code == 200
    text = page.content.decode()
    assert "$135.83" in text and "$1,629.96" in text  # MRR and ARR (usd)
    assert "€30.00" in text and "$40.00" in text  # eur MRR, usd net revenue
    assert f"/invoices/{invoices['due'].pk}/" in text  # the invoice needing attention
    assert "https://hooks.example.com/x" in text


def test_the_page_presets_and_a_bad_range(tenant):
    fixture, _ = tenant
    client = _client(fixture, Role.OWNER)
    assert client.get("/dashboard/?range=7d").status_code == 200
    bad = client.get("/dashboard/?range=custom&from=2026-02-01&to=2026-01-01")
    assert bad.status_code == 200 and "must not be before" in bad.content.decode()


def test_a_new_tenant_gets_empty_states_that_say_what_to_do(alpha):
    text = _client(alpha, Role.OWNER).get("/dashboard/").content.decode()
    assert "No paying subscriptions yet" in text and "/pricing/" in text


def test_a_customer_does_not_see_the_overview(tenant):
    fixture, _ = tenant
    text = _client(fixture, Role.CUSTOMER).get("/dashboard/").content.decode()
    assert "MRR" not in text


def test_the_figures_are_kept_a_minute_and_refresh_recomputes_them(tenant):
    fixture, _ = tenant
    with tenant_context(fixture.tenant):
        first = overview_get(period=PERIOD)
        subscribe("ivy", Price.objects.get(code="team-monthly"), at=day(0))
        assert overview_get(period=PERIOD) == first  # from the cache
        fresh = overview_get(period=PERIOD, fresh=True)
        assert fresh["subscriptions"]["active"] == first["subscriptions"]["active"] + 1
        assert fresh["as_of"] > first["as_of"]
        assert overview_get(period=PERIOD)["subscriptions"]["active"] == fresh["subscriptions"]["active"]
    # the page's "Refresh now" recomputes too; another range is computed on its own
    client = _client(fixture, Role.OWNER)
    assert (
        "Refresh now" in client.get(f"/dashboard/?range=custom&from={FROM}&to={TO}&fresh=1").content.decode()
    )


def test_the_figures_take_thirteen_queries_whatever_the_range(tenant, django_assert_num_queries):
    from console.overview.selectors import overview_compute

    fixture, _ = tenant
    with tenant_context(fixture.tenant):
        overview_compute(period=PERIOD)  # the connection's schema is set by the first query
        for period in (PERIOD, range_preset("90d"), DateRange(TODAY - dt.timedelta(days=365), TODAY)):
            # subscriptions 1, revenue 1 (the ledger's daily totals), failed payments 5, usage sync 3
            # (pending and refused reports together), webhooks 3 (each source's problems now and
            # per day together)
            with django_assert_num_queries(13):
                overview_compute(period=period)


def test_the_page_charts_draw_the_apis_series(tenant):
    fixture, _ = tenant
    body = fixture.api().get(f"/api/v1/reports/overview?from={FROM}&to={TO}").json()
    page = _client(fixture, Role.OWNER).get(f"/dashboard/?range=custom&from={FROM}&to={TO}")
    charts = page.context["charts"]
    usd = next(row for row in body["mrr"] if row["currency"] == "usd")
    mrr = next(chart for chart in charts["mrr"] if chart["currency"] == "usd")
    assert mrr["series"][0]["values"] == [point["amount"] for point in usd["series"]]
    assert mrr["labels"] == [point["date"] for point in usd["series"]]
    revenue = next(chart for chart in charts["revenue"] if chart["currency"] == "usd")
    assert sum(revenue["series"][0]["values"]) == 4000
    active = charts["subscriptions"]["series"][0]
    assert active["label"] == "Active" and active["values"][-1] == body["subscriptions"]["active"]
    assert f'id="{mrr["id"]}"' in page.content.decode()  # its data is on the page for Chart.js
