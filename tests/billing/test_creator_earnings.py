"""Tips and creators' earnings (issue 12 items 4 and 5): a tip's checkout through the sandbox, the
split of each paid charge for a creator (provider fee, the platform fee recorded at its rate, the
creator's net held as pending), release after the hold period on the sandbox clock, refunds and
lost disputes taken back (a balance may go negative), and exactly-once under redelivery."""

import datetime as dt
import re

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.inbox.models import InboxEvent
from billing.inbox.services import inbox_receive
from billing.ledger.creators.earnings import earnings_release
from billing.ledger.creators.models import Creator, Earning, EarningReversal, Tip
from billing.ledger.creators.selectors import creator_balance, creator_get
from billing.ledger.models import JournalEntry, JournalTransaction
from billing.ledger.selectors import ledger_balance
from billing.memberships.models import Payment
from billing.providers.models import ProviderAccount
from billing.providers.sandbox import SandboxProvider
from tests.billing.test_creators import create, tier
from tests.billing.test_entitlements import make_customer
from tests.billing.test_sandbox_checkout import advance, pay
from tests.billing.test_webhooks_in import process_all

JSON = "application/json"
URLS = {"success_url": "https://app.test/thanks", "cancel_url": "https://app.test/no"}


@pytest.fixture
def studio(alpha, monkeypatch):
    """alpha with the sandbox, creator `ann` and fan `fan1`; inbox events applied by the test."""
    from billing.providers.services import provider_account_upsert

    with tenant_context(alpha.tenant):
        provider_account_upsert(provider="sandbox")
    monkeypatch.setattr("billing.inbox.services._enqueue", lambda inbox_id, countdown=None: None)
    assert create(alpha).status_code == 201
    make_customer(alpha, "fan1")
    return alpha


@pytest.fixture
def tenant_set(monkeypatch):
    """Set tenant settings in the row and on the shared tenant object (both restored afterwards)."""
    from tenants.middleware import tenant_cache_clear
    from tenants.models import Tenant

    def set_(fixture, **values):
        for name, value in values.items():
            monkeypatch.setattr(fixture.tenant, name, value)
        Tenant.objects.filter(pk=fixture.tenant.pk).update(**values)
        tenant_cache_clear()  # requests read the row again

    return set_


def tip_checkout(fixture, amount=1000, **body):
    payload = {"creator": "ann", "customer": "fan1", "amount": amount, "currency": "usd", **URLS, **body}
    return fixture.api().post("/api/v1/tips/checkouts", payload, content_type=JSON)


def tip_paid(fixture, capture, amount=1000, item_id="video-42"):
    started = tip_checkout(fixture, amount, item_id=item_id)
    assert started.status_code == 201, started.content
    paid = pay(fixture, started.json()["url"], "4242424242424242", capture)
    assert paid.status_code == 302 and paid["Location"] == URLS["success_url"]
    process_all(fixture)
    return started.json()["id"]


def balance(fixture, currency="usd"):
    body = fixture.api().get("/api/v1/creators/ann").json()["balance"]
    return next((b for b in body if b["currency"] == currency), None)


def entries(txn):
    return sorted((e.account.code, e.amount) for e in txn.entries.select_related("account"))


def test_a_paid_tip_credits_the_creator_net_of_the_recorded_fees(
    studio, tenant_set, django_capture_on_commit_callbacks
):
    # given the sandbox simulating a 2.9 % provider fee and the default 10 % platform fee
    tenant_set(studio, sandbox_fee_bps=290)
    started = tip_checkout(studio, 1000, item_id="video-42")
    assert started.status_code == 201, started.content
    body = started.json()
    assert body["url"].startswith("http://alpha.test/sandbox/checkout/") and body["status"] == "open"
    assert (body["creator"], body["amount"], body["item_id"]) == ("ann", 1000, "video-42")
    assert balance(studio) is None  # a checkout credits nothing
    page = studio.client().get(re.sub(r"^https?://[^/]+", "", body["url"]))
    assert page.status_code == 200 and "$10.00" in page.content.decode()

    # when the fan pays with the test card
    pay(studio, body["url"], "4242424242424242", django_capture_on_commit_callbacks)
    process_all(studio)

    # then one earning: 1000 gross = 29 provider fee + 100 platform fee + 871 net, pending
    with tenant_context(studio.tenant):
        tip = Tip.objects.get(pk=body["id"])
        earning = Earning.objects.get()
        assert tip.status == "paid" and tip.payment_id == earning.payment_id
        assert (earning.kind, earning.gross, earning.provider_fee, earning.platform_fee, earning.net) == (
            "tip", 1000, 29, 100, 871,
        )  # fmt: skip
        assert earning.fee_bps == 1000 and earning.item_id == "video-42" and earning.status == "pending"
        txn = JournalTransaction.objects.get(source="earning")
        assert entries(txn) == [
            ("creator_share", 1000), ("payable:creator_pending:ann", -871), ("platform_fees", -100),
            ("provider_fees", -29),
        ]  # fmt: skip
        assert txn.metadata["fee_bps"] == 1000
        assert entries(JournalTransaction.objects.get(source="tip")) == [
            ("receivable", 1000),
            ("tips", -1000),
        ]
        assert ledger_balance(account="receivable", currency="usd") == 0  # the payment cleared it
        assert ledger_balance(account="cash:sandbox", currency="usd") == 971  # the sandbox kept its fee
        assert ledger_balance(account="provider_fees", currency="usd") == 0  # the creator bore it
        assert ledger_balance(account="platform_fees", currency="usd") == -100
    assert balance(studio) == {
        "currency": "usd",
        "pending": 871,
        "available": 0,
        "paid_out": 0,
        "lifetime": 871,
    }


def test_the_same_paid_order_three_times_is_one_earning(studio, django_capture_on_commit_callbacks):
    tip_id = tip_paid(studio, django_capture_on_commit_callbacks)
    with tenant_context(studio.tenant):
        stored = InboxEvent.objects.get(event_type="order.paid")
        account = ProviderAccount.objects.get(provider="sandbox")
        adapter = SandboxProvider(webhook_secret=account.webhook_secret)
        for _ in range(3):  # the provider redelivers it (same event), and a copy under new ids
            body, headers = adapter.sign(payload=stored.payload)
            inbox_receive(provider="sandbox", body=body, headers=headers)
            copy = {**stored.payload, "id": stored.payload["id"] + "-again"}
            body, headers = adapter.sign(payload=copy)
            inbox_receive(provider="sandbox", body=body, headers=headers)
    process_all(studio)
    with tenant_context(studio.tenant):
        assert Payment.objects.filter(kind="charge").count() == 1
        assert Earning.objects.count() == 1 and Tip.objects.get(pk=tip_id).status == "paid"
        assert JournalTransaction.objects.filter(source="earning").count() == 1
    assert balance(studio)["pending"] == 900


def test_order_created_alone_credits_nothing(studio):
    started = tip_checkout(studio, 1500).json()
    with tenant_context(studio.tenant):
        account = ProviderAccount.objects.get(provider="sandbox")
        payload = {"id": "evt_created_1", "type": "order.created", "created_at": "2026-12-01T10:00:00+00:00",
                   "data": {"payment_id": "pay_x", "amount": 1500, "currency": "usd", "customer": "fan1",
                            "checkout_id": started["id"]}}  # fmt: skip
        body, headers = SandboxProvider(webhook_secret=account.webhook_secret).sign(payload=payload)
        inbox_receive(provider="sandbox", body=body, headers=headers)
    process_all(studio)
    with tenant_context(studio.tenant):
        assert InboxEvent.objects.get().status == "ignored"
        assert not Payment.objects.exists() and not Earning.objects.exists()
        assert Tip.objects.get(pk=started["id"]).status == "open"
        assert not JournalTransaction.objects.exists()
    assert balance(studio) is None


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"amount": 99}, 422, "tip_amount_out_of_range"),
        ({"amount": 50_001}, 422, "tip_amount_out_of_range"),
        ({"amount": "100"}, 400, "invalid_request"),
        ({"amount": 1.5}, 400, "invalid_request"),
        ({"currency": "USD"}, 400, "invalid_request"),
        ({"creator": "nobody"}, 404, "unknown_creator"),
        ({"customer": "nobody"}, 404, None),
        ({"success_url": "nope"}, 400, "invalid_request"),
    ],
)
def test_bad_tips_are_refused_before_the_provider(studio, body, status, code):
    response = tip_checkout(studio, **{"amount": 1000, **body})
    assert response.status_code == status, response.content
    if code:
        assert response.json()["error"]["code"] == code
    with tenant_context(studio.tenant):
        assert not Tip.objects.exists()


def test_the_tenant_sets_the_tip_range(studio, tenant_set):
    tenant_set(studio, tip_min_amount=500, tip_max_amount=2000)
    assert tip_checkout(studio, 400).status_code == 422
    assert tip_checkout(studio, 2001).status_code == 422
    assert tip_checkout(studio, 2000).status_code == 201


def test_earnings_become_available_after_the_hold_on_the_sandbox_clock(
    studio, django_capture_on_commit_callbacks
):
    tip_paid(studio, django_capture_on_commit_callbacks)
    with tenant_context(studio.tenant):
        assert earnings_release() == 0  # real time: still held
    advance(studio, 6, django_capture_on_commit_callbacks)
    assert balance(studio)["pending"] == 900
    advance(studio, 1.1, django_capture_on_commit_callbacks)  # the clock passes the 7-day hold
    assert balance(studio) == {
        "currency": "usd",
        "pending": 0,
        "available": 900,
        "paid_out": 0,
        "lifetime": 900,
    }
    with tenant_context(studio.tenant):
        assert earnings_release() == 0  # released once
        release = JournalTransaction.objects.get(source="earning_release")
        assert entries(release) == [("payable:creator:ann", -900), ("payable:creator_pending:ann", 900)]


def refund(fixture, capture, amount):
    """A refund through the sandbox's refund API (as a credit note would ask), applied."""
    from billing.invoicing.engine.sandbox import refund_create

    with tenant_context(fixture.tenant):
        charge = Payment.objects.filter(kind="charge").order_by("-id").first()
        with capture(execute=True):
            refund_create(payment_id=charge.provider_payment_id, amount=amount, currency="usd",
                          idempotency_key=f"test-refund-{amount}-{charge.pk}")  # fmt: skip
    process_all(fixture)


def test_a_refund_reverses_the_earning_in_proportion_and_a_released_one_goes_negative(
    studio, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    tip_paid(studio, capture, 1000)
    refund(studio, capture, 400)  # while pending: 40 % of every component back
    with tenant_context(studio.tenant):
        reversal = EarningReversal.objects.get()
        assert (reversal.gross, reversal.platform_fee, reversal.net, reversal.from_status) == (
            400,
            40,
            360,
            "pending",
        )
        assert entries(JournalTransaction.objects.get(source="earning_reversal")) == [
            ("creator_share", -400), ("payable:creator_pending:ann", 360), ("platform_fees", 40),
        ]  # fmt: skip
    assert balance(studio) == {
        "currency": "usd",
        "pending": 540,
        "available": 0,
        "paid_out": 0,
        "lifetime": 540,
    }
    advance(studio, 8, capture)
    assert balance(studio)["available"] == 540
    # a second tip, released too, then the first one's remaining 600 refunded: taken from available
    tip_paid(studio, capture, 200)
    with tenant_context(studio.tenant):
        first = Payment.objects.filter(kind="charge").order_by("id").first()
        from billing.invoicing.engine.sandbox import refund_create

        with capture(execute=True):
            refund_create(
                payment_id=first.provider_payment_id, amount=600, currency="usd", idempotency_key="rest"
            )
    process_all(studio)
    assert balance(studio) == {
        "currency": "usd",
        "pending": 180,
        "available": 0,
        "paid_out": 0,
        "lifetime": 180,
    }
    with tenant_context(studio.tenant):
        first_earning = Earning.objects.get(payment=first)
        taken = first_earning.reversals.aggregate(gross=Sum("gross"), net=Sum("net"))
        assert taken == {"gross": 1000, "net": 900}  # exactly the earning, over two refunds
    refund(studio, capture, 200)  # the new tip refunded while pending; the available stays at 0
    advance(studio, 8, capture)
    assert balance(studio) == {"currency": "usd", "pending": 0, "available": 0, "paid_out": 0, "lifetime": 0}


def test_a_refund_after_a_payout_leaves_a_negative_balance_later_earnings_make_up(
    studio, django_capture_on_commit_callbacks
):
    from billing.ledger.services import ledger_post

    capture = django_capture_on_commit_callbacks
    tip_paid(studio, capture, 1000)
    advance(studio, 8, capture)
    with tenant_context(studio.tenant):  # paid out (as payouts post it: a Payout row and its posting)
        from billing.ledger.creators.models import Payout

        payout = Payout.objects.create(
            creator=creator_get(handle="ann"),
            amount=900,
            currency="usd",
            status="paid",
            provider="sandbox",
            account_id="acct_sbx",
        )
        ledger_post(source="payout", source_id=str(payout.pk), occurred_at=dt.datetime.now(dt.UTC),
                    description="payout", entries=[("payable:creator:ann", "usd", 900),
                                                   ("payouts_in_transit", "usd", -900)])  # fmt: skip

    assert balance(studio) == {
        "currency": "usd",
        "pending": 0,
        "available": 0,
        "paid_out": 900,
        "lifetime": 900,
    }
    refund(studio, capture, 1000)
    assert balance(studio) == {
        "currency": "usd",
        "pending": 0,
        "available": -900,
        "paid_out": 900,
        "lifetime": 0,
    }
    tip_paid(studio, capture, 2000)
    advance(studio, 8, capture)
    assert balance(studio) == {
        "currency": "usd",
        "pending": 0,
        "available": 900,
        "paid_out": 900,
        "lifetime": 1800,
    }


def test_changing_the_platform_fee_never_rewrites_history(
    studio, tenant_set, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    tip_paid(studio, capture, 1000)
    tenant_set(studio, creator_fee_bps=2000)
    tip_paid(studio, capture, 1000)
    with tenant_context(studio.tenant):
        assert list(Earning.objects.order_by("id").values_list("fee_bps", "platform_fee", "net")) == [
            (1000, 100, 900), (2000, 200, 800),
        ]  # fmt: skip
        assert [t.metadata["fee_bps"] for t in JournalTransaction.objects.filter(source="earning").order_by("id")] == [
            1000, 2000,
        ]  # fmt: skip
    assert balance(studio)["pending"] == 1700


def test_a_creator_tier_membership_invoice_is_split_and_its_renewal_too(
    studio, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    assert tier(studio, "gold", 500).status_code == 201
    started = studio.api().post(
        "/api/v1/checkouts", {"customer": "fan1", "tier": "ann-gold", **URLS}, content_type=JSON
    )
    pay(studio, started.json()["url"], "4242424242424242", capture)
    process_all(studio)
    with tenant_context(studio.tenant):
        earning = Earning.objects.get()
        assert (earning.kind, earning.gross, earning.platform_fee, earning.net) == (
            "membership",
            500,
            50,
            450,
        )
    advance(studio, 31, capture)  # renewed (a second earning) and the first one released
    assert balance(studio) == {
        "currency": "usd",
        "pending": 450,
        "available": 450,
        "paid_out": 0,
        "lifetime": 900,
    }
    with tenant_context(studio.tenant):
        assert Earning.objects.filter(kind="membership").count() == 2
        # a platform tier's invoice earns no creator anything
        assert not Earning.objects.filter(creator__isnull=True).exists()


def test_the_tax_on_a_membership_charge_is_no_creators_share_and_a_refund_takes_back_its_part(
    studio, django_capture_on_commit_callbacks
):
    # a 10 % exclusive tax on every invoice: the fan pays 550 for the 500 tier
    capture = django_capture_on_commit_callbacks
    levy = studio.api().post("/api/v1/tax-rates", {"name": "Levy", "percent": 10}, content_type=JSON)
    assert levy.status_code == 201, levy.content
    assert tier(studio, "gold", 500).status_code == 201
    started = studio.api().post(
        "/api/v1/checkouts", {"customer": "fan1", "tier": "ann-gold", **URLS}, content_type=JSON
    )
    pay(studio, started.json()["url"], "4242424242424242", capture)
    process_all(studio)
    with tenant_context(studio.tenant):
        charge = Payment.objects.get(kind="charge")
        earning = Earning.objects.get()
        assert charge.amount == 550
        assert (earning.gross, earning.platform_fee, earning.net) == (500, 50, 450)
        assert entries(JournalTransaction.objects.get(source="earning")) == [
            ("creator_share", 500), ("payable:creator_pending:ann", -450), ("platform_fees", -50),
        ]  # fmt: skip
    refund(studio, capture, 220)  # 40 % of the charge, tax included: 40 % of the earning
    with tenant_context(studio.tenant):
        reversal = EarningReversal.objects.get()
        assert (reversal.gross, reversal.platform_fee, reversal.net) == (200, 20, 180)
    refund(studio, capture, 330)  # the rest: exactly the earning, nothing more
    with tenant_context(studio.tenant):
        taken = Earning.objects.get().reversals.aggregate(gross=Sum("gross"), net=Sum("net"))
        assert taken == {"gross": 500, "net": 450}
    assert balance(studio)["lifetime"] == 0


def test_a_tip_through_an_unconfigured_provider_is_refused(studio):
    response = tip_checkout(studio, 1000, provider="stripe")
    assert response.status_code == 409 and response.json()["error"]["code"] == "provider_not_configured"
    with tenant_context(studio.tenant):
        assert not Tip.objects.exists()


def test_a_stripe_tip_makes_its_product_and_price_first_and_credits_once_when_paid(studio, monkeypatch):
    from billing.providers.services import provider_account_upsert
    from billing.providers.stripe import StripeProvider
    from tests.billing.test_stripe_adapter import FakeStripe
    from tests.billing.test_stripe_events import deliver as stripe_deliver
    from tests.billing.test_stripe_events import process as stripe_process

    fake = FakeStripe()
    monkeypatch.setattr(StripeProvider, "http_client", fake)
    with tenant_context(studio.tenant):
        provider_account_upsert(
            provider="stripe", credentials={"api_key": "sk_test_1"}, webhook_secret="whsec_t"
        )
    started = tip_checkout(studio, 1500, provider="stripe", item_id="video-7")
    assert started.status_code == 201, started.content
    tip_id = started.json()["id"]
    assert started.json()["url"] == "https://checkout.stripe.test/c/pay/cs_test_1"
    paths = [call["path"] for call in fake.calls if call["method"] == "post"]
    assert paths == ["/v1/products", "/v1/prices", "/v1/checkout/sessions"]  # made before the checkout
    price_call, session_call = [
        c
        for c in fake.calls
        if c["path"] in ("/v1/prices", "/v1/checkout/sessions") and c["method"] == "post"
    ]
    assert price_call["form"]["lookup_key"] == ["tip-ann-usd-1500"] and price_call["form"]["unit_amount"] == [
        "1500"
    ]
    assert session_call["form"]["mode"] == ["payment"]
    assert session_call["form"]["line_items[0][price]"] == ["price_tip-ann-usd-1500"]  # Stripe's id, not ours
    assert session_call["form"]["metadata[monetize_checkout]"] == [tip_id]
    assert session_call["headers"]["Idempotency-Key"] == f"checkout-{tip_id}"

    # the paid session, delivered three times, and the payment intent's own event: one earning
    session = {"id": "evt_cs_1", "object": "event", "type": "checkout.session.completed", "created": 1_800_000_000,
               "data": {"object": {"id": "cs_test_1", "object": "checkout.session", "mode": "payment",
                                   "payment_status": "paid", "amount_total": 1500, "currency": "usd",
                                   "payment_intent": "pi_tip_1", "customer": "cus_1", "client_reference_id": tip_id,
                                   "metadata": {"monetize_customer": "fan1", "monetize_checkout": tip_id}}}}  # fmt: skip
    intent = {"id": "evt_pi_1", "object": "event", "type": "payment_intent.succeeded", "created": 1_800_000_001,
              "data": {"object": {"id": "pi_tip_1", "object": "payment_intent", "amount_received": 1500,
                                  "currency": "usd", "latest_charge": "ch_tip_1", "customer": "cus_1",
                                  "metadata": {"monetize_customer": "fan1", "monetize_checkout": tip_id}}}}  # fmt: skip
    stripe_deliver(studio, "whsec_t", session, session, intent, session)
    stripe_process(studio)
    with tenant_context(studio.tenant):
        earning = Earning.objects.get()
        assert (earning.kind, earning.gross, earning.platform_fee, earning.net, earning.item_id) == (
            "tip", 1500, 150, 1350, "video-7",
        )  # fmt: skip
        assert Tip.objects.get(pk=tip_id).status == "paid"
        assert JournalTransaction.objects.filter(source="earning").count() == 1
    assert balance(studio)["pending"] == 1350
    # a second tip of the same amount reuses the price Stripe has (found by its lookup key)
    assert tip_checkout(studio, 1500, provider="stripe").status_code == 201
    assert [c["path"] for c in fake.calls if c["method"] == "post"][3:] == ["/v1/checkout/sessions"]


def test_a_tip_through_stripe_engine_mode_is_refused(studio, monkeypatch):
    from billing.providers.services import provider_account_upsert

    with tenant_context(studio.tenant):
        provider_account_upsert(
            provider="stripe",
            credentials={"api_key": "sk_test_1", "billing": "engine"},
            webhook_secret="whsec_t",
        )
    response = tip_checkout(studio, 1500, provider="stripe")
    assert response.status_code == 409 and response.json()["error"]["code"] == "provider_not_supported"


# --- property: random sequences of charges, refunds, fee changes and releases ------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("tip"), st.integers(min_value=100, max_value=50_000)),
        st.tuples(st.just("refund"), st.integers(min_value=1, max_value=60_000)),
        st.tuples(st.just("fee"), st.integers(min_value=0, max_value=10_000)),
        st.tuples(st.just("sandbox_fee"), st.integers(min_value=0, max_value=1_000)),
        st.tuples(st.just("release"), st.just(0)),
        st.tuples(st.just("payout"), st.integers(min_value=1, max_value=60_000)),  # odd: it fails
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_property_balances_add_up_whatever_the_sequence(in_alpha, monkeypatch, ops):
    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            _property_run(monkeypatch, ops)
            raise Rollback
    except Rollback:
        pass


def _property_run(monkeypatch, ops):
    from billing.ledger.creators.earnings import earning_record, earning_reverse
    from billing.ledger.creators.payouts import (
        PayoutRefused,
        available_balance,
        payout_reported,
        payout_request,
        payout_transfer,
    )
    from billing.ledger.creators.services import creator_create
    from billing.memberships.services import customer_upsert
    from billing.providers.base import PayoutReport
    from billing.providers.services import provider_account_upsert

    tenant = connection.tenant
    monkeypatch.setattr(tenant, "creator_fee_bps", 1000)
    monkeypatch.setattr(tenant, "payout_min_amount", 1)
    provider_account_upsert(provider="sandbox")
    provider_bps = 0
    creator = creator_create(handle="prop", display_name="Prop")
    Creator.objects.filter(pk=creator.pk).update(
        payout_status="active", payout_provider="sandbox", provider_account_id="acct_sbx_prop"
    )
    customer, _ = customer_upsert(external_id="fan-prop")
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    charges = []
    for n, (op, value) in enumerate(ops):
        now += dt.timedelta(days=1)
        if op == "tip":
            tip = Tip.objects.create(creator=creator, customer=customer, amount=value, currency="usd",
                                     provider="sandbox", success_url="https://a.test", cancel_url="https://a.test")  # fmt: skip
            charge = Payment.objects.create(customer=customer, provider="sandbox", provider_payment_id=f"p{n}",
                                            kind="charge", amount=value, currency="usd", occurred_at=now,
                                            fee_amount=(value * provider_bps + 5_000) // 10_000)  # fmt: skip
            earning_record(payment=charge, checkout_id=str(tip.pk))
            earning_record(payment=charge, checkout_id=str(tip.pk))  # twice: once
            charges.append(charge)
        elif op == "refund" and charges:
            charge = charges[value % len(charges)]
            refund_row = Payment.objects.create(customer=customer, provider="sandbox", provider_payment_id=f"r{n}",
                                                kind="refund", amount=value, currency="usd", occurred_at=now,
                                                reference=charge.provider_payment_id)  # fmt: skip
            earning_reverse(earning_payment=charge, payment=refund_row)
            earning_reverse(earning_payment=charge, payment=refund_row)
        elif op == "fee":
            monkeypatch.setattr(tenant, "creator_fee_bps", value)
        elif op == "sandbox_fee":
            provider_bps = value
        elif op == "release":
            earnings_release(provider="sandbox", now=now)
        elif op == "payout":
            creator.refresh_from_db()
            amount = min(value, available_balance(creator=creator, currency="usd"))
            if amount <= 0:
                with pytest.raises(PayoutRefused):
                    payout_request(creator=creator, currency="usd", amount=value)
                continue
            payout = payout_transfer(
                payout_id=payout_request(creator=creator, currency="usd", amount=amount).pk
            )
            assert payout.status == "paid"
            if value % 2:  # the money came back: the payout failed after all, and returns to available
                payout_reported(
                    provider="sandbox",
                    report=PayoutReport(payout_id=payout.provider_payout_id, status="failed"),
                )
    # payouts: nothing left in transit, a failed one returned everything
    assert ledger_balance(account="payouts_in_transit", currency="usd") == 0
    # every transaction balances; balances are the sum of their entries
    for total in (
        JournalEntry.objects.values("transaction_id", "currency")
        .annotate(total=Sum("amount"))
        .values_list("total", flat=True)
    ):
        assert total == 0
    for code in ("payable:creator_pending:prop", "payable:creator:prop"):
        summed = JournalEntry.objects.filter(account__code=code).aggregate(total=Sum("amount"))["total"] or 0
        assert ledger_balance(account=code, currency="usd") == summed
    # a creator's lifetime = paid out + available + pending; never more reversed than earned
    figures = creator_balance(creator=creator_get(handle="prop")).get("usd")
    if figures is not None:
        assert figures["lifetime"] == figures["paid_out"] + figures["available"] + figures["pending"]
    if figures is not None:  # the running lifetime is the earnings' net less what was taken back
        earned = Earning.objects.aggregate(net=Sum("net"))["net"] or 0
        taken_back = EarningReversal.objects.aggregate(net=Sum("net"))["net"] or 0
        assert figures["lifetime"] == earned - taken_back
    for earning in Earning.objects.all():
        taken = earning.reversals.aggregate(gross=Sum("gross"), net=Sum("net"))
        assert (taken["gross"] or 0) <= earning.gross and (taken["net"] or 0) <= earning.net
        assert earning.gross == earning.provider_fee + earning.platform_fee + earning.net
    assert Earning.objects.count() == len(charges)


def test_the_daily_beat_job_releases_what_is_due_in_every_tenant(
    studio, settings, django_capture_on_commit_callbacks
):
    from billing.ledger.creators.tasks import earnings_release_due

    assert settings.CELERY_BEAT_SCHEDULE["creator-earnings-release"]["task"] == earnings_release_due.name
    assert "tenant_schemas" not in settings.CELERY_BEAT_SCHEDULE["creator-earnings-release"]
    tip_paid(studio, django_capture_on_commit_callbacks)
    with tenant_context(studio.tenant):
        assert earnings_release_due() == 0
        Earning.objects.update(available_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        assert earnings_release_due() == 1
        assert earnings_release_due() == 0
    assert balance(studio)["available"] == 900


def test_a_sandbox_tip_and_its_refund_reconcile_with_the_sandboxs_books(
    studio, tenant_set, django_capture_on_commit_callbacks
):
    from billing.invoicing.engine.sandbox import sandbox_now
    from billing.ledger.reconciliation.models import ReconciliationItem
    from billing.ledger.reconciliation.services import reconciliation_run

    tenant_set(studio, sandbox_fee_bps=290)
    tip_paid(studio, django_capture_on_commit_callbacks, 2000)
    refund(studio, django_capture_on_commit_callbacks, 500)
    with tenant_context(studio.tenant):
        assert Payment.objects.get(kind="charge").fee_amount == 58
        run = reconciliation_run(provider="sandbox", day=sandbox_now().date())
        assert (run.status, run.provider_count, run.matched_count, run.difference_count) == (
            "balanced",
            2,
            2,
            0,
        )
        assert not ReconciliationItem.objects.exists()


def test_a_lost_dispute_takes_the_earning_back(studio, django_capture_on_commit_callbacks):
    from billing.memberships.services import payment_record
    from billing.providers.base import PaymentState

    tip_paid(studio, django_capture_on_commit_callbacks, 1000)
    with tenant_context(studio.tenant):
        charge = Payment.objects.get(kind="charge")
        for event_type, event_id in (
            ("dispute.created", "evt_d1"),
            ("dispute.lost", "evt_d2"),
            ("dispute.lost", "evt_d2"),
        ):
            payment_record(
                provider="sandbox", event_type=event_type, event_id=event_id, occurred_at=charge.occurred_at,
                payment=PaymentState(payment_id="dp_1", amount=1000, currency="usd", customer="",
                                     reference=charge.provider_payment_id),
            )  # fmt: skip
        reversal = EarningReversal.objects.get()
        assert (reversal.gross, reversal.net, reversal.payment.kind) == (1000, 900, "dispute_lost")
    assert balance(studio) == {"currency": "usd", "pending": 0, "available": 0, "paid_out": 0, "lifetime": 0}


def test_the_same_charge_split_concurrently_is_one_earning(live_tenant):
    from billing.ledger.creators.earnings import earning_record
    from billing.ledger.creators.services import creator_create
    from billing.memberships.services import customer_upsert
    from tests.helpers import committed, run_parallel

    def seed():
        with tenant_context(live_tenant.tenant):
            creator = creator_create(handle="conc", display_name="Conc")
            fan, _ = customer_upsert(external_id="fan-conc")
            tip = Tip.objects.create(creator=creator, customer=fan, amount=1000, currency="usd", provider="sandbox",
                                     success_url="https://a.test", cancel_url="https://a.test")  # fmt: skip
            charge = Payment.objects.create(customer=fan, provider="sandbox", provider_payment_id="pay_conc",
                                            kind="charge", amount=1000, currency="usd",
                                            occurred_at=dt.datetime.now(dt.UTC))  # fmt: skip
            return charge.pk, str(tip.pk)

    charge_id, tip_id = committed(seed)

    def split(_):
        with tenant_context(live_tenant.tenant):
            return earning_record(payment=Payment.objects.get(pk=charge_id), checkout_id=tip_id).pk

    assert len(set(run_parallel(split, 4))) == 1

    def counts():
        with tenant_context(live_tenant.tenant):
            return Earning.objects.count(), JournalTransaction.objects.filter(source="earning").count()

    assert committed(counts) == (1, 1)
