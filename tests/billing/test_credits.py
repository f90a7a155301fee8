"""Credits: grants, burning at ingestion (priority, expiry, fractions, duplicates, concurrency),
expiry, the append-only ledger, AI prices, insufficient_credits, thresholds, the API."""

import contextlib
import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django_tenants.utils import tenant_context

from billing.memberships.models import Customer
from billing.metering.credit_models import MICROS, CreditAccount, CreditGrant, CreditLedgerEntry
from billing.metering.credits import (
    ai_price_create,
    burn_rate_create,
    credit_alert_create,
    credit_grant_create,
    credit_requirement_set,
    credits_allowance_renew,
    credits_expire,
)
from tests.billing.test_metering import NOW, ev, meter, post

DAY = dt.timedelta(days=1)


@pytest.fixture
def shop(ci_catalog):
    from tests.billing.test_entitlements import make_customer

    make_customer(ci_catalog, "c1")
    make_customer(ci_catalog, "c2")
    # the CI catalog's meters: build-minutes (sum of properties.minutes, feature build_minutes), builds
    with tenant_context(ci_catalog.tenant):
        burn_rate_create(
            meter_code="build-minutes", credits_per_unit=Decimal(1), effective_from=NOW - 30 * DAY
        )
    return ci_catalog


def grant(external_id="c1", credits=None, micros=None, **kwargs):
    customer = Customer.objects.get(external_id=external_id)
    amount = micros if micros is not None else int(credits * MICROS)
    kwargs.setdefault("effective_at", NOW - 7 * DAY)
    return credit_grant_create(customer=customer, amount=amount, **kwargs)[0]


def invariants(external_id="c1") -> int:
    """The account balance equals its grants' remaining and its ledger's sum; returns it."""
    customer = Customer.objects.get(external_id=external_id)
    account = CreditAccount.objects.get(customer=customer)
    remaining = sum(CreditGrant.objects.filter(customer=customer).values_list("remaining", flat=True))
    ledger = sum(CreditLedgerEntry.objects.filter(customer=customer).values_list("amount", flat=True))
    assert account.balance == remaining == ledger
    return account.balance


def minutes(event_id, value, **kw):
    return ev(event_id, properties={"minutes": value}, **kw)


def test_burn_takes_priority_then_earliest_expiry_then_creation(shop):
    with tenant_context(shop.tenant):
        a = grant(credits=10)  # priority 100, no expiry: last
        b = grant(credits=5, expires_at=NOW + 10 * DAY)
        c = grant(credits=3, expires_at=NOW + 5 * DAY)
        d = grant(credits=4, priority=50)  # lowest priority number burns first
        e = grant(credits=2, effective_at=NOW + DAY)  # not effective yet at the event's time
    assert post(shop, minutes("m1", 15)).json()["inserted"] == 1
    with tenant_context(shop.tenant):
        remaining = {g.pk: g.remaining for g in CreditGrant.objects.all()}
        assert remaining == {a.pk: 7 * MICROS, b.pk: 0, c.pk: 0, d.pk: 0, e.pk: 2 * MICROS}
        burns = list(CreditLedgerEntry.objects.filter(kind="burn").order_by("id"))
        assert [(x.grant_id, x.amount, x.balance_after) for x in burns] == [
            (d.pk, -4 * MICROS, 20 * MICROS), (c.pk, -3 * MICROS, 17 * MICROS),
            (b.pk, -5 * MICROS, 12 * MICROS), (a.pk, -3 * MICROS, 9 * MICROS),
        ]  # fmt: skip
        assert burns[0].details["events"] == 1 and burns[0].details["first_event"] == "m1"
        assert invariants() == 9 * MICROS
    body = shop.api().get("/api/v1/customers/c1/credits").json()
    assert body["balance"] == "9.000000" and body["available"] == "7.000000" and body["overage"] == "0.000000"
    assert [g["id"] for g in body["grants"]] == [a.pk, e.pk]
    assert [x["kind"] for x in body["ledger"]][:4] == ["burn"] * 4


def test_a_shortfall_is_recorded_as_overage(shop):
    with tenant_context(shop.tenant):
        grant(credits=2)
    post(shop, minutes("m1", 5))
    with tenant_context(shop.tenant):
        entry = CreditLedgerEntry.objects.get(kind="burn")
        assert entry.amount == -2 * MICROS and entry.overage == 3 * MICROS and entry.balance_after == 0
        assert CreditAccount.objects.get().overage == 3 * MICROS
    post(shop, minutes("m2", 1))  # nothing left at all: a zero burn row still carries the overage
    with tenant_context(shop.tenant):
        last = CreditLedgerEntry.objects.filter(kind="burn").latest("id")
        assert last.amount == 0 and last.grant_id is None and last.overage == MICROS
        assert CreditAccount.objects.get().overage == 4 * MICROS and invariants() == 0


def test_fractional_burns_are_exact_over_many_events(shop):
    meter(shop, code="calls", event_type="api.call", aggregation="count")
    with tenant_context(shop.tenant):
        # 0.123 micro-credits per call: every batch alone costs less than one micro-credit
        burn_rate_create(
            meter_code="calls", credits_per_unit=Decimal("0.000000123"), effective_from=NOW - DAY
        )
        burn_rate_create(
            meter_code="build-minutes", credits_per_unit=Decimal("0.5"), effective_from=NOW - DAY
        )
        grant(credits=100)
    for batch in range(143):  # 1,001 calls in batches of 7
        post(shop, {"events": [ev(f"a{batch}-{i}", type="api.call") for i in range(7)]})
    post(shop, {"events": [minutes(f"h{i}", 0.3) for i in range(10)]})  # 10 x 0.15 credit
    with tenant_context(shop.tenant):
        burned = 100 * MICROS - invariants()
        assert burned == 123 + 1_500_000  # floor(1,001 x 0.123) = 123 and 1.5 credits exactly
        assert CreditAccount.objects.get().carry == Decimal("0.123")  # the fraction is kept, not lost


def test_the_same_batch_ingested_twice_burns_once(shop):
    with tenant_context(shop.tenant):
        grant(credits=50)
    batch = {"events": [minutes(f"d{i}", 2) for i in range(10)]}
    assert post(shop, batch).json()["inserted"] == 10
    assert post(shop, batch).json() == {"inserted": 0, "duplicates": 10, "rejected": []}
    with tenant_context(shop.tenant):
        assert invariants() == 30 * MICROS
        assert CreditLedgerEntry.objects.filter(kind="burn").count() == 1


def test_concurrent_ingestion_burns_exactly(live_tenant):
    from billing.metering.ingest import events_ingest
    from billing.metering.services import meter_create
    from tests.helpers import committed, run_parallel

    def setup():
        with tenant_context(live_tenant.tenant):
            meter_create(code="jobs", event_type="job", aggregation="sum")
            burn_rate_create(
                meter_code="jobs", credits_per_unit=Decimal("0.0000015"), effective_from=NOW - DAY
            )
            grant(micros=100, priority=0)  # runs out part-way through the concurrent burns
            grant(credits=1000)

    committed(setup)
    shared = [ev(f"s{i}", type="job", value=1) for i in range(300)]

    def ingest(i):
        own = [ev(f"t{i}-{j}", type="job", value=1) for j in range(50)]
        batch = shared[i * 50 :] + own + shared[: i * 50]
        with tenant_context(live_tenant.tenant):
            return events_ingest(events=batch)

    results = run_parallel(ingest, 4)
    assert sum(r.inserted for r in results) == 500

    def check():
        with tenant_context(live_tenant.tenant):
            return invariants(), CreditAccount.objects.get().carry, sorted(CreditGrant.objects.values_list("remaining", flat=True))  # fmt: skip

    balance, carry, remaining = committed(check)
    assert balance == 1000 * MICROS + 100 - 750  # 500 events x 1.5 micro-credits
    assert carry == 0 and remaining == [0, 1000 * MICROS - 650]


def test_concurrent_adjustments_are_exact(live_tenant):
    """The same reference from four threads adjusts once; four different ones take what there is
    and no more (the account row is locked first)."""
    from billing.metering.credit_adjustments import InsufficientCredits, credits_adjust
    from tests.helpers import committed, run_parallel

    committed(lambda: _in(live_tenant, lambda: grant(credits=3)))

    def adjust(reference):
        def go():
            customer = Customer.objects.get(external_id="c1")
            try:
                return credits_adjust(
                    customer=customer, amount=-MICROS, reason="r", reference=reference
                ).created
            except InsufficientCredits:
                return "short"

        return _in(live_tenant, go)

    assert sorted(run_parallel(lambda i: adjust("same"), 4), key=str) == [False, False, False, True]
    # 2 credits are left: two of four different adjustments of 1 go through
    assert sorted(run_parallel(lambda i: adjust(f"own-{i}"), 4), key=str) == [True, True, "short", "short"]
    assert committed(lambda: _in(live_tenant, invariants)) == 0


def _in(fixture, fn):
    with tenant_context(fixture.tenant):
        return fn()


def test_expiry_job_twice_writes_one_expire_entry(shop):
    with tenant_context(shop.tenant):
        old = grant(credits=5, effective_at=NOW - 10 * DAY, expires_at=NOW - DAY)
        grant(credits=1)
        assert credits_expire() == 1
        assert credits_expire() == 0
        entries = CreditLedgerEntry.objects.filter(kind="expire")
        assert [(x.grant_id, x.amount, x.balance_after) for x in entries] == [(old.pk, -5 * MICROS, MICROS)]
        assert invariants() == MICROS


def test_the_expiry_task_is_registered_under_its_name():
    from billing.metering.credits_tasks import credits_expire_task

    assert credits_expire_task.name == "metering.credits_expire"


def test_the_database_refuses_to_change_the_ledger(shop):
    with tenant_context(shop.tenant):
        entry = CreditLedgerEntry.objects.get(pk=grant(credits=1).entries.get().pk)
        for sql in ("UPDATE metering_credit_ledger SET amount = 0 WHERE id = %s",
                    "DELETE FROM metering_credit_ledger WHERE id = %s"):  # fmt: skip
            with pytest.raises(DatabaseError, match="pgtrigger"), transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(sql, [entry.pk])
        assert CreditLedgerEntry.objects.get(pk=entry.pk).amount == MICROS


def test_ai_events_are_priced_by_the_price_effective_at_their_timestamp(shop):
    with tenant_context(shop.tenant):
        ai_price_create(provider="openai", model="gpt-x", input_per_1k=Decimal(1), output_per_1k=Decimal(2),
                        effective_from=NOW - 10 * DAY)  # fmt: skip
        ai_price_create(provider="openai", model="gpt-x", input_per_1k=Decimal("0.5"), output_per_1k=Decimal(1),
                        effective_from=NOW - DAY)  # fmt: skip
        grant(credits=100)
    tokens = {"model": "gpt-x", "provider": "openai", "input_tokens": 1000, "output_tokens": 1000}
    post(shop, {"events": [ev("old", type="llm", hours_ago=48, properties=tokens),  # 1 + 2 credits
                           ev("new", type="llm", properties=tokens),  # 0.5 + 1
                           ev("any", type="llm", properties={"model": "gpt-x", "input_tokens": 150}),  # 0.075
                           ev("nope", type="llm", properties={"model": "unknown", "input_tokens": 5})]})  # fmt: skip
    with tenant_context(shop.tenant):
        assert 100 * MICROS - invariants() == 4_575_000
    body = shop.api().get(f"/api/v1/customers/c1/ai-costs?from={(NOW - 5 * DAY).isoformat()}&to={(NOW + DAY).isoformat()}".replace("+", "%2B")).json()  # fmt: skip
    assert body["data"] == [
        {"provider": "", "model": "gpt-x", "events": 1, "input_tokens": 150, "output_tokens": 0,
         "credits": "0.075000", "unpriced_events": 0},
        {"provider": "", "model": "unknown", "events": 1, "input_tokens": 5, "output_tokens": 0,
         "credits": "0.000000", "unpriced_events": 1},
        {"provider": "openai", "model": "gpt-x", "events": 2, "input_tokens": 2000, "output_tokens": 2000,
         "credits": "4.500000", "unpriced_events": 0},
    ]  # fmt: skip


def test_a_feature_requiring_credits_denies_with_insufficient_credits(shop):
    def check():
        response = shop.api().post(
            "/api/v1/entitlements/check",
            {"customer": "c1", "feature": "build_minutes"},
            content_type="application/json",
        )
        assert response.status_code == 200
        return response.json()

    assert check()["allowed"] is True
    with tenant_context(shop.tenant):
        credit_requirement_set(feature_code="build_minutes", minimum=MICROS)
    denied = check()
    assert denied["allowed"] is False and denied["reason"] == "insufficient_credits"
    with tenant_context(shop.tenant):
        grant(credits=2)
    assert check()["allowed"] is True  # the grant dropped the cached snapshot
    post(shop, minutes("m1", 1.5))
    decision = check()  # the burn did too: 0.5 credit left
    assert decision["allowed"] is False and decision["reason"] == "insufficient_credits"


def test_thresholds_publish_once_per_crossing(shop):
    from billing.events.models import OutboundEvent
    from billing.events.services import endpoint_create

    with tenant_context(shop.tenant):
        endpoint_create(url="https://hooks.example.test/in")
        credit_alert_create(threshold=5 * MICROS)
        grant(credits=10)

    def published():
        with tenant_context(shop.tenant):
            return list(
                OutboundEvent.objects.filter(type__startswith="credits.").values_list("type", flat=True)
            )

    post(shop, minutes("m1", 3))  # 10 -> 7
    assert published() == []
    post(shop, minutes("m2", 3))  # 7 -> 4: crosses 5
    post(shop, minutes("m3", 1))  # 4 -> 3: already below
    assert published() == ["credits.low"]
    post(shop, minutes("m4", 5))  # 3 -> 0 (2 overage)
    post(shop, minutes("m5", 1))  # stays at 0
    assert published() == ["credits.low", "credits.exhausted"]
    with tenant_context(shop.tenant):
        grant(credits=10)
        payload = OutboundEvent.objects.get(type="credits.low").payload
        assert payload == {
            "customer": "c1",
            "threshold": "5.000000",
            "balance": "4.000000",
            "balance_micros": 4 * MICROS,
        }
    post(shop, minutes("m6", 6))  # 10 -> 4: a new crossing
    assert published() == ["credits.low", "credits.exhausted", "credits.low"]


def test_allowance_renews_once_per_period(shop):
    with tenant_context(shop.tenant):
        customer = Customer.objects.get(external_id="c1")
        start = NOW.replace(day=1, hour=0, minute=0, second=0)
        first, created = credits_allowance_renew(customer=customer, period_start=start, amount=5 * MICROS)
        again, created_again = credits_allowance_renew(
            customer=customer, period_start=start, amount=5 * MICROS
        )
        assert created and not created_again and first.pk == again.pk and first.priority == 0
        assert first.source == "tier_allowance" and invariants() == 5 * MICROS


def test_grant_api_is_idempotent_by_reference_and_key(shop):
    api = shop.api()
    body = {"amount": "2.5", "reference": "order-1", "source": "purchase", "priority": 10}
    first = api.post("/api/v1/customers/c1/credits/grants", body, content_type="application/json")
    assert first.status_code == 201 and first.json()["amount"] == "2.500000"
    again = api.post(
        "/api/v1/customers/c1/credits/grants", {**body, "priority": 11}, content_type="application/json"
    )
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    conflict = api.post(
        "/api/v1/customers/c1/credits/grants", {**body, "amount": 3}, content_type="application/json"
    )
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "grant_reference_reused"
    keyed = [api.post("/api/v1/customers/c1/credits/grants", {"amount": 1}, content_type="application/json",
                      HTTP_IDEMPOTENCY_KEY="k-1") for _ in range(2)]  # fmt: skip
    assert [r.status_code for r in keyed] == [201, 201] and keyed[0].json()["id"] == keyed[1].json()["id"]
    assert api.get("/api/v1/customers/c1/credits").json()["balance_micros"] == 3_500_000


def test_adjustments_add_and_take_back_credits_once_per_reference(shop):
    from billing.events.models import OutboundEvent
    from billing.events.services import endpoint_create

    with tenant_context(shop.tenant):
        endpoint_create(url="https://hooks.example.test/in")
        credit_alert_create(threshold=5 * MICROS)
        early = grant(credits=4, priority=10)
        late = grant(credits=4, priority=20)
    api = shop.api()
    url = "/api/v1/customers/c1/credits/adjustments"
    add = api.post(
        url, {"amount": "2.5", "reason": "goodwill", "reference": "t-1"}, content_type="application/json"
    )
    assert add.status_code == 201 and add.json()["balance"] == "10.500000"
    assert [e["kind"] for e in add.json()["entries"]] == ["adjust"]
    again = api.post(
        url, {"amount": "2.5", "reason": "goodwill", "reference": "t-1"}, content_type="application/json"
    )
    assert again.status_code == 200 and again.json()["entries"][0]["id"] == add.json()["entries"][0]["id"]
    other = api.post(
        url, {"amount": "3", "reason": "goodwill", "reference": "t-1"}, content_type="application/json"
    )
    assert other.status_code == 409 and other.json()["error"]["code"] == "grant_reference_reused"
    # taking back 6 credits draws from the grants in burn order, one entry per grant
    take = api.post(
        url, {"amount": "-6", "reason": "double grant", "reference": "t-2"}, content_type="application/json"
    )
    assert take.status_code == 201 and take.json()["balance_micros"] == 4_500_000
    assert [(e["grant"], e["amount_micros"]) for e in take.json()["entries"]] == [
        (early.pk, -4 * MICROS), (late.pk, -2 * MICROS)]  # fmt: skip
    assert take.json()["entries"][0]["details"] == {"reason": "double grant"}
    short = api.post(url, {"amount": "-5", "reason": "too much"}, content_type="application/json")
    assert short.status_code == 409 and short.json()["error"]["code"] == "insufficient_credits"
    with tenant_context(shop.tenant):
        assert invariants() == 4_500_000  # balance == grants' remaining == the ledger's sum
        assert list(OutboundEvent.objects.filter(type__startswith="credits.").values_list("type", flat=True)) == [
            "credits.low"]  # 10.5 -> 4.5 crossed the 5-credit threshold  # fmt: skip
    # the added credits burn like any others
    assert post(shop, minutes("m1", 1)).json()["inserted"] == 1
    with tenant_context(shop.tenant):
        assert invariants() == 3_500_000


@pytest.mark.parametrize(
    "body",
    [{"amount": 0, "reason": "x"}, {"amount": "1"}, {"amount": "1", "reason": ""}, {"amount": "x", "reason": "y"},
     {"amount": "0.0000001", "reason": "y"}, {"amount": 1, "reason": "y" * 501}, {"amount": 1, "reason": 5}],
)  # fmt: skip
def test_bad_adjustments_are_400_and_change_nothing(shop, body):
    response = shop.api().post(
        "/api/v1/customers/c1/credits/adjustments", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"]
    with tenant_context(shop.tenant):
        assert not CreditLedgerEntry.objects.exists()


def test_burn_rate_and_ai_price_history_api(shop):
    api = shop.api()
    later = (NOW + DAY).isoformat()
    created = api.post("/api/v1/burn-rates", {"meter": "build-minutes", "credits_per_unit": "0.25", "effective_from": later},
                       content_type="application/json")  # fmt: skip
    assert created.status_code == 201
    rates = api.get("/api/v1/burn-rates").json()["results"]
    assert [r["credits_per_unit"] for r in rates] == ["1.000000000", "0.250000000"]
    price = {"provider": "anthropic", "model": "m", "input_per_1k": "0.15", "output_per_1k": 0.6}
    assert api.post("/api/v1/ai-prices", price, content_type="application/json").status_code == 201
    assert api.get("/api/v1/ai-prices").json()["results"][0]["input_per_1k"] == "0.150000000"


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("/api/v1/customers/c1/credits/grants", {"amount": "abc"}, 400),
        ("/api/v1/customers/c1/credits/grants", {"amount": -1}, 400),
        ("/api/v1/customers/c1/credits/grants", {"amount": 0}, 400),
        ("/api/v1/customers/c1/credits/grants", {"amount": "1.0000001"}, 400),
        ("/api/v1/customers/c1/credits/grants", {"amount": True}, 400),
        ("/api/v1/customers/c1/credits/grants", {"amount": 1, "source": "gift"}, 400),
        ("/api/v1/customers/c1/credits/grants", {"amount": 1, "priority": "high"}, 400),
        ("/api/v1/customers/c1/credits/grants", {"amount": 1, "reference": 5}, 400),
        ("/api/v1/customers/c1/credits/grants", {"amount": 1, "expires_at": "2001-01-01T00:00:00Z"}, 400),
        ("/api/v1/customers/c1/credits/grants", {"amount": 1, "expires_at": "soon"}, 400),
        ("/api/v1/customers/nobody/credits/grants", {"amount": 1}, 404),
        ("/api/v1/burn-rates", {"meter": "nope", "credits_per_unit": 1}, 404),
        ("/api/v1/burn-rates", {"meter": "build-minutes", "credits_per_unit": -1}, 400),
        ("/api/v1/burn-rates", {"meter": 7, "credits_per_unit": 1}, 400),
        ("/api/v1/burn-rates", {"meter": "peak", "credits_per_unit": 1}, 400),  # a max meter
        ("/api/v1/ai-prices", {"provider": "p", "input_per_1k": 1, "output_per_1k": 1}, 400),
        ("/api/v1/ai-prices", {"provider": "p", "model": "m", "input_per_1k": "x", "output_per_1k": 1}, 400),
    ],
)
def test_bad_input_is_a_4xx_and_changes_nothing(shop, path, body, status):
    meter(shop, code="peak", event_type="build.finished", aggregation="max", value_property="minutes")
    response = shop.api().post(path, json.dumps(body), content_type="application/json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"]
    with tenant_context(shop.tenant):
        assert not CreditGrant.objects.exists()


def test_bad_queries_and_unknown_customers(shop):
    api = shop.api()
    assert api.get("/api/v1/customers/nobody/credits").status_code == 404
    response = api.get("/api/v1/customers/c1/ai-costs?from=yesterday")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_query"
    assert (
        api.post("/api/v1/customers/c1/credits/grants", "{bad", content_type="application/json").status_code
        == 400
    )


def test_key_verification_answers_402_when_credits_are_short(shop):
    from billing.entitlements.services import customer_key_create
    from billing.memberships.models import Customer

    with tenant_context(shop.tenant):
        credit_requirement_set(feature_code="build_minutes", minimum=MICROS)
        _, key = customer_key_create(customer=Customer.objects.get(external_id="c1"))
    response = shop.api().post(
        "/api/v1/keys/verify", {"key": key, "feature": "build_minutes"}, content_type="application/json"
    )
    assert response.status_code == 402, response.content
    assert response.json()["entitlement"]["reason"] == "insufficient_credits"


def test_the_plan_page_shows_the_balance_and_its_history(shop):
    from django.test import Client

    from accounts.roles import Role
    from accounts.services import user_create
    from billing.memberships.services import customer_for_user
    from tests.conftest import PASSWORD

    with tenant_context(shop.tenant):
        buyer = user_create(email="credits@alpha.test", password=PASSWORD, role=Role.CUSTOMER)
        own = customer_for_user(user=buyer).external_id
        grant(external_id=own, credits=10, source="purchase", reference="pack-1")
    post(shop, minutes("pg1", 2.5, customer=own))
    client = Client(HTTP_HOST=shop.host)
    client.force_login(buyer)
    page = client.get("/account/plan/").content.decode()
    assert 'data-testid="credit-balance">7.5<' in page
    assert "Purchase" in page and "-2.5" in page and ">10<" in page  # the grant and the burn in the history


def test_tenant_ai_costs_api_and_staff_page(shop):
    from django.test import Client

    from accounts.roles import Role
    from accounts.services import user_create
    from tests.conftest import PASSWORD

    with tenant_context(shop.tenant):
        ai_price_create(provider="openai", model="gpt-x", input_per_1k=Decimal(1), output_per_1k=Decimal(2),
                        effective_from=NOW - 10 * DAY)  # fmt: skip
        staff = user_create(email="ops@alpha.test", password=PASSWORD, role=Role.ADMIN)
    tokens = {"model": "gpt-x", "provider": "openai", "input_tokens": 2000, "output_tokens": 500}
    batch = {
        "events": [
            ev("a1", type="llm", properties=tokens),
            ev("a2", type="llm", customer="c2", properties=tokens),
        ]
    }
    post(shop, batch)
    post(shop, batch)  # a replay adds nothing
    body = shop.api().get("/api/v1/ai-costs").json()
    assert body["data"] == [{"provider": "openai", "model": "gpt-x", "events": 2, "input_tokens": 4000,
                             "output_tokens": 1000, "credits": "6.000000", "unpriced_events": 0}]  # fmt: skip
    per_customer = shop.api().get("/api/v1/ai-costs?by=customer").json()["data"]
    assert sorted((r["customer"], r["credits"]) for r in per_customer) == [
        ("c1", "3.000000"),
        ("c2", "3.000000"),
    ]
    assert shop.api().get("/api/v1/ai-costs?by=planet").status_code == 400
    client = Client(HTTP_HOST=shop.host)
    client.force_login(staff)
    page = client.get("/usage/ai/").content.decode()
    assert "gpt-x" in page and "6 credits" in page and "c2" in page and "6.000000" not in page


@contextlib.contextmanager
def eager_tasks():
    """Run the tasks sent in the block in this process, as the worker would."""
    from monetize.celery import app

    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


def test_a_membership_change_does_not_grant_the_allowance_inline(
    ci_catalog, django_capture_on_commit_callbacks, monkeypatch
):
    """The grant is a housekeeping task: not on the path of the change (an inbox worker applying a
    provider event, a request)."""
    from billing.memberships.services import customer_upsert, membership_set_tier
    from billing.metering.credits_tasks import credits_allowance_for_task
    from billing.tiers.models import Tier
    from monetize.celery import app

    sent = []
    monkeypatch.setattr(credits_allowance_for_task, "delay", lambda external_id: sent.append(external_id))
    with tenant_context(ci_catalog.tenant):
        customer, _ = customer_upsert(external_id="c9")
        with django_capture_on_commit_callbacks(execute=True):
            membership_set_tier(customer=customer, tier=Tier.objects.get(code="team"))
        assert sent == ["c9"]
    assert app.amqp.router.route({}, credits_allowance_for_task.name)["queue"].name == "housekeeping"


def test_tier_allowances_are_granted_once_per_period_and_follow_the_tier(
    ci_catalog, django_capture_on_commit_callbacks
):
    from billing.memberships.services import customer_upsert, membership_set_tier
    from billing.metering.credits import credits_allowances_renew
    from billing.metering.tasks import credits_expire_task  # noqa: F401  (the module registers both tasks)
    from billing.tiers.catalog import catalog_export, catalog_import
    from billing.tiers.models import Tier

    with tenant_context(ci_catalog.tenant):
        text = catalog_export().replace("  name: Team\n", "  name: Team\n  credits_per_period: 250.5\n", 1)
        catalog_import(text=text)
        assert Tier.objects.get(code="team").credit_allowance == 250_500_000
        assert "credits_per_period: 250.5" in catalog_export()
        customer, _ = customer_upsert(external_id="c9")
        assert credits_allowances_renew() == 0  # Community has no allowance
        with eager_tasks(), django_capture_on_commit_callbacks(execute=True):
            membership_set_tier(customer=customer, tier=Tier.objects.get(code="team"))
        granted = CreditGrant.objects.get(customer=customer, source="tier_allowance")
        assert granted.amount == 250_500_000 and granted.priority == 0 and granted.expires_at is not None
        assert credits_allowances_renew() == 0  # the hourly job: this period's grant exists
        assert invariants("c9") == 250_500_000


def test_staff_see_credits_and_prices_in_the_admin(shop):
    from django.test import Client

    from accounts.models import User

    with tenant_context(shop.tenant):
        grant(credits=3, source="manual", reference="gift")
        owner = User.objects.get(email=shop.owner_email)
    client = Client(HTTP_HOST=shop.host)
    client.force_login(owner)
    for model in ("creditgrant", "creditledgerentry", "burnrate", "aiprice", "aiusage", "creditrequirement",
                  "creditalert", "meter", "metersyncrun"):  # fmt: skip
        assert client.get(f"/admin/metering/{model}/").status_code == 200, model
    assert b"gift" in client.get("/admin/metering/creditgrant/").content
    assert client.get("/admin/metering/creditgrant/add/").status_code == 403  # grants go through the API
    response = client.post(
        "/admin/metering/creditrequirement/add/", {"feature": feature_id(shop, "sso"), "minimum": 5}
    )
    assert response.status_code == 302
    with tenant_context(shop.tenant):
        from billing.metering.credit_models import CreditRequirement

        assert CreditRequirement.objects.get().minimum == 5


def feature_id(fixture, code):
    from billing.tiers.models import Feature

    with tenant_context(fixture.tenant):
        return Feature.objects.get(code=code).pk
