"""Coupons (issue 11 item 6): the discount rules to the cent (billing/invoicing/adjustments.py), the
coupons API, a customer's discount, checkout with a coupon, consumption over finalized invoices
(once / repeating / forever) and redemption counted exactly under concurrency."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.discounts.exceptions import CouponExhausted, DiscountsError
from billing.discounts.models import Coupon
from billing.discounts.services import coupon_create
from billing.invoicing.adjustments import Discount, Line, Rate, adjust
from billing.invoicing.models import InvoiceDiscount
from billing.invoicing.services import LineDraft, invoice_draft_create, invoice_finalize
from billing.memberships.models import Checkout, CouponRedemption
from billing.memberships.services import (
    checkout_complete,
    checkout_mark_completed,
    customer_discount_apply,
    customer_upsert,
)
from billing.tiers.models import Price
from tests.helpers import committed, run_parallel

# --- the rules, by hand ---------------------------------------------------------------------------


def pct(p, **extra):
    return Discount(key=1, code="P", percent_off=Decimal(p), **extra)


def off(amount, currency="usd", **extra):
    return Discount(key=2, code="A", amount_off=amount, currency=currency, **extra)


def amounts(*values, tier=None):
    return [Line(amount=v, tier_id=tier) for v in values]


def test_percent_off_rounds_each_line_once_half_up():
    # 15% of 19.99 = 2.9985 → 3.00; 15% of 10.01 = 1.5015 → 1.50
    result = adjust(currency="usd", lines=amounts(1999, 1001), discounts=[pct("15")])
    assert [line.discount for line in result.lines] == [300, 150]
    assert (result.subtotal, result.discount, result.tax, result.total) == (3000, 450, 0, 2550)
    # 12.5% of 0.04 = 0.005 → 0.01 (a half goes up)
    assert adjust(currency="usd", lines=amounts(4), discounts=[pct("12.5")]).discount == 1


def test_amount_off_is_spread_in_proportion_and_never_makes_a_total_negative():
    # 2.50 over 10.00 / 5.00 / 0.01: 166.56, 83.28, 0.17 → 166, 83, 0 and the cent left to the largest remainder
    result = adjust(currency="usd", lines=amounts(1000, 500, 1), discounts=[off(250)])
    assert [line.discount for line in result.lines] == [167, 83, 0] and result.total == 1251
    # 5.00 off a 4.00 invoice takes 4.00
    result = adjust(currency="usd", lines=amounts(300, 100), discounts=[off(500)])
    assert (result.discount, result.total, [line.discount for line in result.lines]) == (400, 0, [300, 100])
    # a credit line lowers what a discount can take: 10.00 - 7.00 leaves 3.00 to discount
    assert adjust(currency="usd", lines=amounts(1000, -700), discounts=[off(500)]).discount == 300
    # an amount off in another currency takes nothing
    assert adjust(currency="eur", lines=amounts(1000), discounts=[off(500)]).discount == 0


def test_percent_off_discounts_a_credit_line_too():
    # a plan change: 100.00 for the new plan, -50.00 for the old one's unused time, 50% off both
    result = adjust(currency="usd", lines=amounts(10_000, -5_000), discounts=[pct("50")])
    assert [line.discount for line in result.lines] == [5_000, -2_500]
    assert (result.discount, result.total) == (2_500, 2_500)


def test_a_restricted_coupon_discounts_only_its_tiers_lines():
    lines = [Line(2000, tier_id=7), Line(1000, tier_id=8), Line(500)]
    result = adjust(currency="usd", lines=lines, discounts=[pct("50", tier_ids=frozenset({7}))])
    assert [line.discount for line in result.lines] == [1000, 0, 0] and result.total == 2500
    result = adjust(currency="usd", lines=lines, discounts=[off(5000, tier_ids=frozenset({8}))])
    assert [line.discount for line in result.lines] == [0, 1000, 0]


def test_zero_decimal_currencies():
    # 10% off ₩39,000 and ¥1,005 (100.5 → 101)
    assert adjust(currency="krw", lines=amounts(39_000), discounts=[pct("10")]).total == 35_100
    assert adjust(currency="jpy", lines=amounts(1005), discounts=[pct("10")]).discount == 101
    assert adjust(currency="krw", lines=amounts(39_000), discounts=[off(5_000, "krw")]).total == 34_000


line_amounts = st.lists(st.integers(min_value=-(10**7), max_value=10**8), min_size=0, max_size=8)
percents = st.decimals(min_value=Decimal("0.0001"), max_value=100, places=4)
rates = st.lists(
    st.builds(
        lambda p, inclusive: Rate(key=id(p), name="T", percent=p, inclusive=inclusive),
        st.decimals(min_value=Decimal("0.01"), max_value=40, places=2),
        st.booleans(),
    ),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    values=line_amounts,
    tiers=st.lists(st.sampled_from([None, 1, 2]), min_size=8, max_size=8),
    percent=percents,
    amount_off=st.integers(min_value=1, max_value=10**8),
    restricted=st.booleans(),
    rates=rates,
)
def test_property_discounts_stay_within_the_subtotal_and_totals_add_up(
    values, tiers, percent, amount_off, restricted, rates
):
    lines = [Line(v, tier_id=t) for v, t in zip(values, tiers, strict=False)]
    only = frozenset({1}) if restricted else None
    result = adjust(
        currency="usd",
        lines=lines,
        discounts=[pct(percent, tier_ids=only), off(amount_off, tier_ids=only)],
        rates=rates,
    )
    assert 0 <= result.discount <= result.subtotal
    assert result.total >= 0 and result.tax >= 0 and 0 <= result.tax_inclusive <= result.tax
    assert (
        result.discount
        == sum(line.discount for line in result.lines)
        == sum(d.amount for d in result.discounts)
    )
    assert result.tax == sum(line.tax for line in result.lines) == sum(t.amount for t in result.taxes)
    assert result.total == result.subtotal - result.discount + result.tax - result.tax_inclusive
    for line, share in zip(lines, result.lines, strict=True):
        if restricted and line.tier_id != 1:
            assert share.discount == 0
        assert abs(share.discount) <= abs(line.amount)


# --- the coupons API ------------------------------------------------------------------------------


def post(fixture, path, body=None, **headers):
    return fixture.api().post(path, body or {}, content_type="application/json", **headers)


def test_create_list_get_and_deactivate_coupons(ci_catalog):
    created = post(
        ci_catalog, "/api/v1/coupons",
        {"code": "launch20", "name": "Launch", "percent_off": "20", "duration": "repeating",
         "duration_in_periods": 3, "max_redemptions": 100, "tiers": ["pro", "team"]},
        HTTP_IDEMPOTENCY_KEY="c-1",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["code"] == "LAUNCH20" and body["percent_off"] == "20" and body["amount_off"] is None
    assert (body["currency"], body["tiers"], body["times_redeemed"], body["active"]) == (
        None,
        ["pro", "team"],
        0,
        True,
    )
    replay = post(
        ci_catalog, "/api/v1/coupons",
        {"code": "launch20", "name": "Launch", "percent_off": "20", "duration": "repeating",
         "duration_in_periods": 3, "max_redemptions": 100, "tiers": ["pro", "team"]},
        HTTP_IDEMPOTENCY_KEY="c-1",
    )  # fmt: skip
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    amount = post(
        ci_catalog,
        "/api/v1/coupons",
        {"code": "FIVE", "amount_off": 500, "currency": "USD", "duration": "once"},
    )
    assert amount.status_code == 201 and (amount.json()["amount_off"], amount.json()["currency"]) == (
        500,
        "usd",
    )
    assert (
        post(ci_catalog, "/api/v1/coupons", {"code": "Five", "percent_off": 5, "duration": "forever"}).json()[
            "error"
        ]["code"]
        == "coupon_exists"
    )

    page = ci_catalog.api().get("/api/v1/coupons", {"limit": 1}).json()
    assert [c["code"] for c in page["results"]] == ["FIVE"] and page["next"]
    assert [c["code"] for c in ci_catalog.api().get(page["next"]).json()["results"]] == ["LAUNCH20"]
    assert ci_catalog.api().get("/api/v1/coupons/launch20").json()["duration_in_periods"] == 3
    assert ci_catalog.api().get("/api/v1/coupons/NOPE").json()["error"]["code"] == "unknown_coupon"

    deactivated = post(ci_catalog, "/api/v1/coupons/FIVE/deactivate")
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"percent_off": 10, "amount_off": 100, "currency": "usd"}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
        ({"percent_off": 0}, 400, "invalid_request"),
        ({"percent_off": "100.01"}, 400, "invalid_request"),
        ({"amount_off": 100}, 400, "invalid_request"),
        ({"amount_off": 0, "currency": "usd"}, 400, "invalid_request"),
        ({"percent_off": 10, "duration": "repeating"}, 400, "invalid_request"),
        ({"percent_off": 10, "duration_in_periods": 2}, 400, "invalid_request"),
        ({"percent_off": 10, "code": "no spaces"}, 400, "invalid_request"),
        ({"percent_off": 10, "max_redemptions": 0}, 400, "invalid_request"),
        ({"percent_off": 10, "tiers": ["pro", "nope"]}, 422, "coupon_not_applicable"),
    ],
)
def test_bad_coupons_are_refused(ci_catalog, body, status, code):
    response = post(ci_catalog, "/api/v1/coupons", {"code": "X", "duration": "once", **body})
    assert response.status_code == status and response.json()["error"]["code"] == code, response.content
    with tenant_context(ci_catalog.tenant):
        assert not Coupon.objects.exists()


@pytest.mark.parametrize(
    "terms, field",
    [
        ({"code": "no spaces", "percent_off": Decimal(10)}, "code"),
        ({"code": "NUL\x00", "percent_off": Decimal(10)}, "code"),
        ({"code": "X" * 65, "percent_off": Decimal(10)}, "code"),
        ({"name": "n" * 201, "percent_off": Decimal(10)}, "name"),
        ({"name": "a\x00b", "percent_off": Decimal(10)}, "name"),
        ({"percent_off": Decimal(0)}, "percent_off"),
        ({"percent_off": Decimal("100.01")}, "percent_off"),
        ({"percent_off": Decimal("-5")}, "percent_off"),
        ({"percent_off": Decimal("Infinity")}, "percent_off"),
        ({"percent_off": Decimal("10.00001")}, "percent_off"),
        ({}, "percent_off"),
        ({"percent_off": Decimal(10), "amount_off": 100, "currency": "usd"}, "percent_off"),
        ({"amount_off": 0, "currency": "usd"}, "amount_off"),
        ({"amount_off": -100, "currency": "usd"}, "amount_off"),
        ({"amount_off": 10**16, "currency": "usd"}, "amount_off"),
        ({"amount_off": 500}, "currency"),
        ({"amount_off": 500, "currency": "us$"}, "currency"),
        ({"percent_off": Decimal(10), "duration": "weekly"}, "duration"),
        ({"percent_off": Decimal(10), "duration": "repeating"}, "duration_in_periods"),
        ({"percent_off": Decimal(10), "duration": "repeating", "duration_in_periods": 0}, "duration_in_periods"),
        ({"percent_off": Decimal(10), "duration_in_periods": 3}, "duration_in_periods"),
        ({"percent_off": Decimal(10), "max_redemptions": 0}, "max_redemptions"),
        ({"percent_off": Decimal(10), "max_redemptions": 2**31}, "max_redemptions"),
    ],
)  # fmt: skip
def test_the_service_refuses_terms_the_database_would_with_the_field_named(in_alpha, terms, field):
    """The console's form has no serializer in front: the service says which term is wrong (never an
    IntegrityError), and creates nothing."""
    with pytest.raises(DiscountsError) as refused:
        coupon_create(**{"code": "X", "duration": "once", **terms})
    assert refused.value.code == "invalid_coupon" and refused.value.details["field"] == field
    assert refused.value.details["errors"][field] == refused.value.message
    assert not Coupon.objects.exists()


def test_the_service_names_every_bad_term_at_once(in_alpha):
    with pytest.raises(DiscountsError) as refused:
        coupon_create(code="no spaces", duration="repeating", amount_off=-1, currency="", max_redemptions=0)
    assert set(refused.value.details["errors"]) == {
        "code", "amount_off", "currency", "duration_in_periods", "max_redemptions"
    }  # fmt: skip


def test_coupon_terms_are_immutable_in_the_database(in_alpha):
    coupon = coupon_create(code="ten", percent_off=Decimal(10), duration="forever")
    with pytest.raises(DatabaseError), transaction.atomic():
        Coupon.objects.filter(pk=coupon.pk).update(percent_off=50)
    with pytest.raises(DatabaseError), transaction.atomic():
        Coupon.objects.filter(pk=coupon.pk).delete()
    with pytest.raises(DatabaseError), transaction.atomic():  # the count never passes the bound
        Coupon.objects.filter(pk=coupon_create(code="one", percent_off=Decimal(1), duration="once",
                                               max_redemptions=1).pk).update(times_redeemed=2)  # fmt: skip


# --- a customer's discount ------------------------------------------------------------------------


def test_apply_show_replace_and_remove_a_customers_discount(ci_catalog):
    with tenant_context(ci_catalog.tenant):
        customer_upsert(external_id="ada")
        coupon_create(code="TEN", percent_off=Decimal(10), duration="forever")
        coupon_create(code="FIVE", amount_off=500, currency="usd", duration="once", max_redemptions=5)
    applied = post(ci_catalog, "/api/v1/customers/ada/discount", {"coupon": "ten"})
    assert applied.status_code == 201, applied.content
    body = applied.json()
    assert body["coupon"]["code"] == "TEN" and body["customer"] == "ada"
    assert (body["periods_applied"], body["periods_remaining"], body["ended_at"]) == (0, None, None)
    again = post(ci_catalog, "/api/v1/customers/ada/discount", {"coupon": "TEN"})
    assert again.status_code == 200  # the coupon it holds: nothing counted twice
    assert ci_catalog.api().get("/api/v1/coupons/TEN").json()["times_redeemed"] == 1

    replaced = post(ci_catalog, "/api/v1/customers/ada/discount", {"coupon": "FIVE"})
    assert replaced.status_code == 201 and replaced.json()["periods_remaining"] == 1
    assert ci_catalog.api().get("/api/v1/customers/ada/discount").json()["coupon"]["code"] == "FIVE"
    with tenant_context(ci_catalog.tenant):
        assert (
            CouponRedemption.objects.filter(customer__external_id="ada", ended_at__isnull=True).count() == 1
        )

    assert ci_catalog.api().delete("/api/v1/customers/ada/discount").status_code == 204
    assert ci_catalog.api().delete("/api/v1/customers/ada/discount").status_code == 204
    missing = ci_catalog.api().get("/api/v1/customers/ada/discount")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_discount"


def test_unusable_coupons_are_refused_with_their_reason(ci_catalog, beta):
    with tenant_context(ci_catalog.tenant):
        customer_upsert(external_id="ada")
        customer_upsert(external_id="bob")
        coupon_create(code="OLD", percent_off=Decimal(10), duration="once",
                      expires_at=timezone.now() - dt.timedelta(minutes=1))  # fmt: skip
        coupon_create(code="ONE", percent_off=Decimal(10), duration="once", max_redemptions=1)
        coupon_create(code="GONE", percent_off=Decimal(10), duration="once")
    post(ci_catalog, "/api/v1/coupons/GONE/deactivate")
    assert post(ci_catalog, "/api/v1/customers/bob/discount", {"coupon": "ONE"}).status_code == 201
    for code, status, error in [
        ("OLD", 409, "coupon_expired"),
        ("ONE", 409, "coupon_exhausted"),
        ("GONE", 409, "coupon_inactive"),
        ("NOPE", 404, "unknown_coupon"),
    ]:
        response = post(ci_catalog, "/api/v1/customers/ada/discount", {"coupon": code})
        assert (response.status_code, response.json()["error"]["code"]) == (status, error)
    assert post(ci_catalog, "/api/v1/customers/ada/discount", {"coupon": 5}).status_code == 400
    assert post(ci_catalog, "/api/v1/customers/nobody/discount", {"coupon": "ONE"}).status_code == 404
    assert post(beta, "/api/v1/customers/bob/discount", {"coupon": "ONE"}).status_code == 404  # other tenant
    with tenant_context(ci_catalog.tenant):
        assert not CouponRedemption.objects.filter(customer__external_id="ada").exists()
        assert Coupon.objects.get(code="ONE").times_redeemed == 1


def test_concurrent_redemptions_of_a_one_use_coupon_give_it_to_exactly_one(live_tenant):
    n = 6

    def seed():
        with tenant_context(live_tenant.tenant):
            coupon_create(code="ONLYONE", percent_off=Decimal(50), duration="once", max_redemptions=1)
            for i in range(n):
                customer_upsert(external_id=f"racer-{i}")

    committed(seed)

    def redeem(i):
        client = Client(HTTP_HOST=live_tenant.host, HTTP_AUTHORIZATION=f"Bearer {live_tenant.api_key}")
        response = client.post(
            f"/api/v1/customers/racer-{i}/discount", {"coupon": "ONLYONE"}, content_type="application/json"
        )
        return response.status_code, response.json().get("error", {}).get("code")

    outcomes = sorted(run_parallel(redeem, n), key=str)
    assert outcomes == [(201, None)] + [(409, "coupon_exhausted")] * (n - 1)

    def counted():
        with tenant_context(live_tenant.tenant):
            return Coupon.objects.get(code="ONLYONE").times_redeemed, CouponRedemption.objects.count()

    assert committed(counted) == (1, 1)


# --- checkout -------------------------------------------------------------------------------------


@pytest.fixture
def shop(ci_catalog, monkeypatch):
    from billing.providers.services import provider_account_upsert

    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="sandbox")
        customer_upsert(external_id="c1")
        coupon_create(code="TEAM50", percent_off=Decimal(50), duration="repeating", duration_in_periods=3,
                      tier_codes=["team"], max_redemptions=10)  # fmt: skip
        coupon_create(code="EURO", amount_off=500, currency="eur", duration="once")
        coupon_create(code="SOLDOUT", percent_off=Decimal(5), duration="once", max_redemptions=1)
        coupon_create(code="LATE", percent_off=Decimal(5), duration="once",
                      expires_at=timezone.now() - dt.timedelta(days=1))  # fmt: skip
        customer_upsert(external_id="early")
        customer_discount_apply(customer=customer_upsert(external_id="early")[0], coupon_code="SOLDOUT")
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    return ci_catalog


def start_checkout(fixture, **body):
    payload = {
        "customer": "c1",
        "success_url": "https://app.test/ok",
        "cancel_url": "https://app.test/no",
        **body,
    }
    return post(fixture, "/api/v1/checkouts", payload)


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"tier": "team", "coupon": "NOPE"}, 404, "unknown_coupon"),
        ({"tier": "team", "coupon": "LATE"}, 409, "coupon_expired"),
        ({"tier": "team", "coupon": "SOLDOUT"}, 409, "coupon_exhausted"),
        ({"tier": "pro", "coupon": "TEAM50"}, 422, "coupon_not_applicable"),
        ({"tier": "team", "coupon": "EURO"}, 422, "coupon_not_applicable"),
        ({"tier": "team", "coupon": ["TEAM50"]}, 400, "invalid_request"),
    ],
)
def test_checkout_refuses_a_coupon_it_cannot_honor(shop, body, status, code):
    response = start_checkout(shop, **body)
    assert response.status_code == status and response.json()["error"]["code"] == code, response.content
    with tenant_context(shop.tenant):
        assert not Checkout.objects.exists()


def test_a_checkout_redeems_its_coupon_once_when_it_completes(shop, django_capture_on_commit_callbacks):
    import re

    from tests.billing.test_webhooks_in import process_all

    created = start_checkout(shop, tier="team", coupon="team50")
    assert created.status_code == 201 and created.json()["coupon"] == "TEAM50"
    with tenant_context(shop.tenant):
        assert Coupon.objects.get(code="TEAM50").times_redeemed == 0  # checked, not yet redeemed
    path = re.sub(r"^https?://[^/]+", "", created.json()["url"])
    with django_capture_on_commit_callbacks(execute=True):
        shop.client().post(path, {"card": "4242 4242 4242 4242"})
    process_all(shop)
    process_all(shop)  # the completing event again
    with tenant_context(shop.tenant):
        checkout = Checkout.objects.get()
        assert checkout.status == "completed"
        assert checkout_mark_completed(checkout_id=str(checkout.pk), occurred_at=timezone.now()) is None
        redemption = CouponRedemption.objects.get(customer__external_id="c1")
        assert redemption.checkout_id == checkout.pk and redemption.periods_remaining == 3
        assert Coupon.objects.get(code="TEAM50").times_redeemed == 1
    assert shop.api().get("/api/v1/customers/c1/discount").json()["checkout"] == str(checkout.pk)


def test_a_provider_completion_delivered_twice_redeems_once(shop):
    with tenant_context(shop.tenant):
        customer = customer_upsert(external_id="c1")[0]
        price = Price.objects.get(code="team-monthly")
        checkout = Checkout.objects.create(
            customer=customer, price=price, provider="stripe", success_url="https://a.test", cancel_url="https://a.test",
            expires_at=timezone.now() + dt.timedelta(hours=1), coupon=Coupon.objects.get(code="TEAM50"),
        )  # fmt: skip
        for _ in range(2):
            checkout_complete(provider="stripe", checkout_id=str(checkout.pk), occurred_at=timezone.now())
        assert CouponRedemption.objects.filter(checkout=checkout).count() == 1
        assert Coupon.objects.get(code="TEAM50").times_redeemed == 1


def test_a_coupon_used_up_before_the_checkout_completes_is_not_applied(shop):
    with tenant_context(shop.tenant):
        coupon = coupon_create(code="LAST", percent_off=Decimal(20), duration="once", max_redemptions=1)
        customer = customer_upsert(external_id="c1")[0]
        checkout = Checkout.objects.create(
            customer=customer, price=Price.objects.get(code="team-monthly"), provider="stripe",
            success_url="https://a.test", cancel_url="https://a.test",
            expires_at=timezone.now() + dt.timedelta(hours=1), coupon=coupon,
        )  # fmt: skip
        customer_discount_apply(customer=customer_upsert(external_id="quick")[0], coupon_code="LAST")
        completed = checkout_complete(
            provider="stripe", checkout_id=str(checkout.pk), occurred_at=timezone.now()
        )
        assert (
            completed.status == "completed"
            and not CouponRedemption.objects.filter(checkout=checkout).exists()
        )
        with pytest.raises(CouponExhausted):
            customer_discount_apply(customer=customer, coupon_code="LAST")


# --- consumption over finalized invoices ----------------------------------------------------------


def fee(amount=10_000, price=None):
    return [LineDraft(kind="fee", description="Plan", amount=amount, price_id=price)]


def invoice(customer, amount=10_000, price=None, *, finalize=True):
    draft, _ = invoice_draft_create(customer=customer, currency="usd", lines=fee(amount, price))
    return invoice_finalize(invoice_id=draft.pk) if finalize else draft


@pytest.mark.parametrize(
    "terms, discounted",
    [
        ({"duration": "once"}, [2500, 0, 0, 0]),
        ({"duration": "repeating", "duration_in_periods": 2}, [2500, 2500, 0, 0]),
        ({"duration": "forever"}, [2500, 2500, 2500, 2500]),
    ],
)
def test_durations_count_finalized_invoices(in_alpha, terms, discounted):
    customer = customer_upsert(external_id="ada")[0]
    coupon_create(code="QUARTER", percent_off=Decimal(25), **terms)
    redemption, _ = customer_discount_apply(customer=customer, coupon_code="QUARTER")
    invoice(customer, finalize=False)  # a draft left unfinalized consumes nothing
    invoices = [invoice(customer) for _ in range(4)]
    assert [i.discount for i in invoices] == discounted
    assert [i.total for i in invoices] == [10_000 - d for d in discounted]
    redemption.refresh_from_db()
    assert redemption.periods_applied == sum(1 for d in discounted if d)
    assert (redemption.ended_at is None) == (terms["duration"] == "forever")
    assert invoice_finalize(invoice_id=invoices[0].pk).discount == discounted[0]  # again: counted once
    redemption.refresh_from_db()
    assert redemption.periods_applied == sum(1 for d in discounted if d)
    records = InvoiceDiscount.objects.filter(redemption=redemption)
    assert (
        sorted(records.values_list("invoice__status", flat=True))
        == ["draft"] + ["open"] * redemption.periods_applied
    )


def test_two_drafts_made_while_a_once_coupon_was_live_discount_one_invoice(in_alpha):
    customer = customer_upsert(external_id="ada")[0]
    coupon_create(code="ONCE", amount_off=1500, currency="usd", duration="once")
    customer_discount_apply(customer=customer, coupon_code="ONCE")
    first, second = invoice(customer, finalize=False), invoice(customer, finalize=False)
    assert first.discount == second.discount == 1500  # both previews show it
    assert invoice_finalize(invoice_id=second.pk).total == 8500
    assert invoice_finalize(invoice_id=first.pk).total == 10_000  # recomputed when finalized
    assert not InvoiceDiscount.objects.filter(invoice=first).exists()


def test_concurrent_finalizations_use_a_once_coupon_once(live_tenant, monkeypatch):
    import time

    from billing.invoicing import totals

    # finalizing locks the invoice's customer and the redemptions; widen the window between reading
    # the redemption and counting its use, so a missing lock would show
    def slow_adjust(**kwargs):
        result = adjust(**kwargs)
        time.sleep(0.2)
        return result

    monkeypatch.setattr(totals, "adjust", slow_adjust)

    def seed():
        with tenant_context(live_tenant.tenant):
            customer = customer_upsert(external_id="c1")[0]
            coupon_create(code="RACE", percent_off=Decimal(10), duration="once")
            customer_discount_apply(customer=customer, coupon_code="RACE")
            return [invoice(customer, finalize=False).pk for _ in range(4)]

    ids = committed(seed)

    def finalize(i):
        with tenant_context(live_tenant.tenant):
            return invoice_finalize(invoice_id=ids[i]).discount

    assert sorted(run_parallel(finalize, 4)) == [0, 0, 0, 1000]


def test_a_restricted_coupon_discounts_its_tiers_lines_on_the_invoice(ci_catalog):
    with tenant_context(ci_catalog.tenant):
        customer = customer_upsert(external_id="ada")[0]
        coupon_create(code="PROHALF", percent_off=Decimal(50), duration="forever", tier_codes=["pro"])
        customer_discount_apply(customer=customer, coupon_code="PROHALF")
        pro, team = Price.objects.get(code="pro-monthly"), Price.objects.get(code="team-monthly")
        lines = [
            *fee(4900, pro.pk),
            *fee(1900, team.pk),
            LineDraft(kind="adjustment", description="x", amount=101),
        ]
        draft, _ = invoice_draft_create(customer=customer, currency="usd", lines=lines)
        final = invoice_finalize(invoice_id=draft.pk)
        assert (final.subtotal, final.discount, final.total) == (6901, 2450, 4451)
        assert list(final.lines.values_list("discount_amount", flat=True)) == [2450, 0, 0]


def test_the_invoice_api_and_pdf_show_the_discount(alpha):
    from tests.billing.test_invoices import _pdf_text

    with tenant_context(alpha.tenant):
        customer = customer_upsert(external_id="ada")[0]
        coupon_create(code="SPRING", name="Spring sale", amount_off=1234, currency="usd", duration="forever")
        customer_discount_apply(customer=customer, coupon_code="SPRING")
        final = invoice(customer)
    body = alpha.api().get(f"/api/v1/invoices/{final.pk}").json()
    assert (body["subtotal"], body["discount"], body["total"]) == (10_000, 1234, 8766)
    assert body["discounts"] == [{"coupon": "SPRING", "name": "Spring sale", "amount": 1234}]
    assert body["lines"][0]["discount_amount"] == 1234 and body["taxes"] == []
    text = _pdf_text(alpha.api().get(f"/api/v1/invoices/{final.pk}/pdf").content)
    assert "Discount (SPRING)" in text and "-$12.34" in text and "$87.66" in text


# --- our engines: the first invoice and a billing run ---------------------------------------------


def test_a_sandbox_checkout_with_a_coupon_charges_the_discounted_first_invoice(
    shop, django_capture_on_commit_callbacks
):
    import re

    from billing.invoicing.models import Invoice
    from billing.memberships.models import Payment
    from tests.billing.test_webhooks_in import process_all

    created = start_checkout(shop, price="team-yearly", coupon="TEAM50")  # no trial: charged at once
    path = re.sub(r"^https?://[^/]+", "", created.json()["url"])
    with django_capture_on_commit_callbacks(execute=True):
        shop.client().post(path, {"card": "4242 4242 4242 4242"})
    process_all(shop)  # the checkout completes: the coupon was already redeemed for the first invoice
    with tenant_context(shop.tenant):
        first = Invoice.objects.get()
        assert (first.subtotal, first.discount, first.total, first.status) == (19_000, 9_500, 9_500, "paid")
        assert list(Payment.objects.filter(kind="charge").values_list("amount", flat=True)) == [9_500]
        redemption = CouponRedemption.objects.get(customer__external_id="c1")
        assert redemption.checkout_id == Checkout.objects.get().pk and redemption.periods_applied == 1
        assert Coupon.objects.get(code="TEAM50").times_redeemed == 1


def test_a_billing_run_applies_coupons_and_taxes_as_finalizing_does(alpha):
    from billing.invoicing.close import BilledSubscription, PeriodToClose, period_close_many
    from billing.invoicing.taxes import tax_rate_create
    from billing.tiers.catalog import catalog_import
    from tests.billing.test_usage_prices import USAGE

    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    ends = [dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC)]
    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
        tax_rate_create(name="GST", percent=Decimal(10))
        ada = customer_upsert(external_id="ada")[0]
        customer_upsert(external_id="ngo", tax_exempt=True)
        coupon_create(code="ONCE10", percent_off=Decimal(10), duration="once")
        redemption, _ = customer_discount_apply(customer=ada, coupon_code="ONCE10")
        items = [
            PeriodToClose(
                sub=BilledSubscription("sandbox", f"sub_{who}", who, "pro-monthly", 1),
                period_start=begin,
                period_end=end,
                renews=True,
                bill_usage=False,
            )  # fmt: skip
            for who in ("ada", "ngo")
            for begin, end in zip([start, *ends[:1]], ends, strict=True)
        ]
        issued = period_close_many(items)
        # ada: 29.00 - 10% = 26.10 + 10% GST 2.61 = 28.71, then (coupon used) 29.00 + 2.90; ngo: exempt
        assert [(i.discount, i.tax, i.total) for i in issued] == [
            (290, 261, 2871), (0, 290, 3190), (0, 0, 2900), (0, 0, 2900),
        ]  # fmt: skip
        assert list(issued[0].lines.values_list("discount_amount", "tax_amount")) == [(290, 261)]
        assert list(issued[0].discounts.values_list("coupon_code", "amount")) == [("ONCE10", 290)]
        assert list(issued[1].taxes.values_list("name", "taxable_amount", "amount")) == [("GST", 2900, 290)]
        redemption.refresh_from_db()
        assert redemption.periods_applied == 1 and redemption.ended_at is not None
        assert [i.pk for i in period_close_many(items)] == [i.pk for i in issued]  # again: nothing new
        redemption.refresh_from_db()
        assert redemption.periods_applied == 1
