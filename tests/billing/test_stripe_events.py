"""Stripe events from Stripe's own published objects (tests/fixtures/stripe, copied from its OpenAPI
fixtures), signed by stripe's own signer, each delivered twice and out of order."""

import copy
import datetime as dt
import json
import secrets
import time
from pathlib import Path

import pytest
import stripe
from django_tenants.utils import tenant_context

from billing.inbox.models import InboxEvent, InboxStatus
from billing.inbox.services import inbox_process, inbox_replay
from billing.memberships.models import Checkout, Customer, Membership, Payment
from billing.providers.services import provider_account_upsert

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"
NOW = int(time.time())


def obj(name: str, **changes) -> dict:
    data = copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))
    data.update(changes)
    return data


def subscription(
    status: str, *, metadata=None, customer="cus_QXg1o8vcGmoR32", lookup_key="team-monthly"
) -> dict:
    sub = obj(
        "subscription", status=status, metadata=metadata or {}, customer=customer, pause_collection=None
    )
    item = sub["items"]["data"][0]
    item["price"]["lookup_key"] = lookup_key
    item["current_period_start"], item["current_period_end"] = NOW, NOW + 30 * 86400
    return sub


def event(kind: str, data: dict, *, created: int = NOW, event_id: str | None = None) -> dict:
    return {"id": event_id or "evt_" + secrets.token_hex(8), "object": "event", "type": kind,
            "created": created, "api_version": "2025-02-24.acacia", "data": {"object": data}}  # fmt: skip


@pytest.fixture
def stripe_hooks(ci_catalog):
    secret = "whsec_" + secrets.token_hex(16)
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="stripe", webhook_secret=secret)
        from billing.events.services import endpoint_create

        endpoint_create(url="https://hooks.example.test/in")
    return ci_catalog, secret


def deliver(fixture, secret, *events):
    """Each event, signed by stripe's own signer, posted (and so stored) as Stripe would."""
    for payload in events:
        body = json.dumps(payload)
        header = stripe.WebhookSignature.generate_signature_header(body, secret)
        response = fixture.client().post(
            "/webhooks/stripe/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
        assert response.status_code == 200, response.content


def process(fixture, *, rounds: int = 2) -> dict[str, str]:
    """Apply every stored event (twice over: a retried one gets its second chance after the others)."""
    with tenant_context(fixture.tenant):
        for _ in range(rounds):
            for inbox_id in InboxEvent.objects.order_by("id").values_list("id", flat=True):
                InboxEvent.objects.filter(pk=inbox_id, status=InboxStatus.FAILED).update(
                    status=InboxStatus.PENDING
                )
                inbox_process(inbox_id=inbox_id)
        return dict(InboxEvent.objects.values_list("event_type", "status"))


def outbound(fixture, type_prefix: str) -> list[dict]:
    from billing.events.models import OutboundEvent

    with tenant_context(fixture.tenant):
        return list(
            OutboundEvent.objects.filter(type__startswith=type_prefix)
            .order_by("created_at")
            .values_list("payload", flat=True)
        )


def test_same_second_created_after_updated_stays_active(stripe_hooks):
    """Item 1: `.created` (incomplete) arriving after `.updated` (active) with the same `created`."""
    fixture, secret = stripe_hooks
    meta = {"monetize_customer": "c1"}
    updated = event("customer.subscription.updated", subscription("active", metadata=meta))
    created = event("customer.subscription.created", subscription("incomplete", metadata=meta))
    deliver(fixture, secret, updated, created, updated, created)
    process(fixture)
    with tenant_context(fixture.tenant):
        membership = Membership.objects.get(provider="stripe")
        assert membership.status == "active"
    statuses = [p["status"] for p in outbound(fixture, "membership.updated")]
    assert statuses == ["active"]  # the integrator was never told it rolled back to incomplete


def test_a_later_incomplete_still_applies(stripe_hooks):
    """Status precedence only orders events of the same second: a newer event always applies."""
    fixture, secret = stripe_hooks
    meta = {"monetize_customer": "c1"}
    deliver(
        fixture,
        secret,
        event("customer.subscription.created", subscription("active", metadata=meta)),
        event("customer.subscription.updated", subscription("past_due", metadata=meta), created=NOW + 1),
    )
    process(fixture)
    with tenant_context(fixture.tenant):
        assert Membership.objects.get(provider="stripe").status == "past_due"


def test_dashboard_subscription_finds_customer_through_the_checkout(stripe_hooks):
    """Item 2: no metadata, but the Stripe customer is the one our checkout made."""
    fixture, secret = stripe_hooks
    with tenant_context(fixture.tenant):
        from billing.tiers.models import Price

        customer = Customer.objects.create(external_id="c9", email="nine@example.test")
        checkout = Checkout.objects.create(
            customer=customer, price=Price.objects.get(code="team-monthly"), provider="stripe",
            success_url="https://a.test/ok", cancel_url="https://a.test/no",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )  # fmt: skip
    session = obj("checkout_session", mode="subscription", status="complete", payment_status="paid",
                  customer="cus_dash", client_reference_id=str(checkout.pk), metadata={}, payment_intent=None)  # fmt: skip
    sub_event = event("customer.subscription.created", subscription("active", customer="cus_dash"))
    deliver(fixture, secret, sub_event, event("checkout.session.completed", session), sub_event)
    process(fixture)
    with tenant_context(fixture.tenant):
        membership = Membership.objects.get(provider="stripe")
        assert membership.customer.external_id == "c9"
        checkout.refresh_from_db()
        assert (checkout.status, checkout.provider_customer_id) == ("completed", "cus_dash")
        assert not Customer.objects.filter(external_id="").exists()


def test_unknown_customer_is_parked_unmatched_then_replayed_after_staff_link_it(stripe_hooks):
    """Items 2 and 7: no metadata, no known Stripe customer: `unmatched` at once (no retries, no
    customer with an empty id); after staff link the customer, a replay applies it."""
    fixture, secret = stripe_hooks
    deliver(
        fixture,
        secret,
        event("customer.subscription.created", subscription("active", customer="cus_unknown")),
    )
    assert process(fixture) == {"customer.subscription.created": "unmatched"}
    with tenant_context(fixture.tenant):
        row = InboxEvent.objects.get()
        assert row.attempts == 1 and row.next_attempt_at is None  # parked once, never retried
        assert "customer_unmatched" in row.last_error and "cus_unknown" in row.last_error
        assert not Customer.objects.filter(external_id="").exists() and not Membership.objects.exists()
        # staff link the customer (a membership of theirs at Stripe names it), then replay
        customer = Customer.objects.create(external_id="c7")
        Checkout.objects.create(
            customer=customer, price_id=Membership._meta.get_field("price").related_model.objects.get(code="team-monthly").pk,
            provider="stripe", provider_customer_id="cus_unknown", success_url="https://a.test/ok",
            cancel_url="https://a.test/no", expires_at=dt.datetime.now(dt.UTC),
        )  # fmt: skip
        assert inbox_replay(inbox_ids=[row.pk]) == 1
        assert inbox_process(inbox_id=row.pk) == InboxStatus.APPLIED
        assert Membership.objects.get().customer.external_id == "c7"


def test_unmappable_price_is_unmatched_and_replays_after_the_mapping(stripe_hooks):
    """Item 7: a price we cannot map is permanent: unmatched at once, replayable after the fix."""
    fixture, secret = stripe_hooks
    deliver(
        fixture,
        secret,
        event("customer.subscription.created", subscription("active", metadata={"monetize_customer": "c1"}, lookup_key="gold")),
    )  # fmt: skip
    assert process(fixture) == {"customer.subscription.created": "unmatched"}
    with tenant_context(fixture.tenant):
        from billing.tiers.models import Price, Tier

        row = InboxEvent.objects.get()
        assert row.attempts == 1 and "No price 'gold'" in row.last_error
        Price.objects.create(tier=Tier.objects.get(code="pro"), code="gold", currency="usd", unit_amount=9900)
        inbox_replay(inbox_ids=[row.pk])
        assert inbox_process(inbox_id=row.pk) == InboxStatus.APPLIED
        assert Membership.objects.get().tier.code == "pro"


def _membership_c1(fixture, secret):
    deliver(fixture, secret, event("customer.subscription.created",
                                   subscription("active", metadata={"monetize_customer": "c1"})))  # fmt: skip


def _invoice(amount: int, *, invoice_id="in_1", intent="pi_sub_1") -> dict:
    invoice = obj("invoice", id=invoice_id, amount_paid=amount, amount_due=amount, status="paid",
                  customer="cus_QXg1o8vcGmoR32", payment_intent=intent, charge="ch_sub_1")  # fmt: skip
    invoice["parent"] = {"type": "subscription_details", "quote_details": None,
                         "subscription_details": {"metadata": {"monetize_customer": "c1"},
                                                  "subscription": "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"}}  # fmt: skip
    return invoice


def test_zero_trial_invoice_is_no_payment(stripe_hooks):
    """Item 7: a $0 trial invoice is not recorded nor published as a payment."""
    fixture, secret = stripe_hooks
    _membership_c1(fixture, secret)
    paid = event("invoice.paid", _invoice(0))
    deliver(fixture, secret, paid, paid)
    process(fixture)
    with tenant_context(fixture.tenant):
        assert not Payment.objects.exists()
    assert outbound(fixture, "payment.") == []


def test_payment_before_its_subscription_is_retried_then_linked(stripe_hooks):
    """Item 7: an invoice with metadata that arrives before its subscription is retried (not
    recorded unlinked), and linked to the membership once the subscription is applied."""
    fixture, secret = stripe_hooks
    paid = event("invoice.paid", _invoice(1900))
    deliver(fixture, secret, paid)
    with tenant_context(fixture.tenant):
        assert inbox_process(inbox_id=InboxEvent.objects.get().pk) == InboxStatus.FAILED
        assert not Payment.objects.exists()
    _membership_c1(fixture, secret)
    deliver(fixture, secret, paid)
    process(fixture)
    with tenant_context(fixture.tenant):
        payment = Payment.objects.get()
        assert payment.membership is not None and payment.customer.external_id == "c1"


def _charge(*refunds) -> dict:
    listed = [obj("refund", id=rid, amount=amount, charge="ch_sub_1", payment_intent="pi_sub_1", status="succeeded")
              for rid, amount in refunds]  # fmt: skip
    charge = obj("charge", id="ch_sub_1", payment_intent="pi_sub_1", customer="cus_QXg1o8vcGmoR32",
                 amount=7700, amount_refunded=sum(a for _, a in refunds), refunded=False)  # fmt: skip
    charge["refunds"] = {
        "object": "list",
        "data": listed,
        "has_more": False,
        "url": "/v1/charges/ch_sub_1/refunds",
    }
    return charge


def test_partial_refunds_are_one_row_per_refund_however_they_arrive(stripe_hooks):
    """Item 3: charge.refunded twice (2,000 then 5,700 cumulative), refund.created and
    charge.refund.updated for the same refunds, twice and out of order: one row per refund."""
    fixture, secret = stripe_hooks
    _membership_c1(fixture, secret)
    deliver(fixture, secret, event("invoice.paid", _invoice(7700)))
    first = event("charge.refunded", _charge(("re_1", 2000)))
    second = event("charge.refunded", _charge(("re_1", 2000), ("re_2", 3700)), created=NOW + 5)
    refund_2 = event(
        "refund.created", obj("refund", id="re_2", amount=3700, charge="ch_sub_1", payment_intent="pi_sub_1")
    )
    refund_1 = event(
        "charge.refund.updated", obj("refund", id="re_1", amount=2000, charge="ch_sub_1", payment_intent=None)
    )
    deliver(fixture, secret, second, refund_2, first, second, refund_1, first, refund_2)
    process(fixture)
    with tenant_context(fixture.tenant):
        refunds = dict(Payment.objects.filter(kind="refund").values_list("provider_payment_id", "amount"))
        assert refunds == {"re_1": 2000, "re_2": 3700}
        assert {p.membership_id for p in Payment.objects.filter(kind="refund")} == {
            Membership.objects.get().pk
        }
    assert sorted(p["amount"] for p in outbound(fixture, "payment.refunded")) == [2000, 3700]


def test_refund_before_its_charge_is_retried(stripe_hooks):
    fixture, secret = stripe_hooks
    refund = event(
        "refund.created", obj("refund", id="re_9", amount=500, charge="ch_sub_1", payment_intent=None)
    )
    deliver(fixture, secret, refund)
    with tenant_context(fixture.tenant):
        assert inbox_process(inbox_id=InboxEvent.objects.get().pk) == InboxStatus.FAILED
    _membership_c1(fixture, secret)
    deliver(fixture, secret, event("invoice.paid", _invoice(1900)), refund)
    process(fixture)
    with tenant_context(fixture.tenant):
        assert Payment.objects.get(kind="refund").amount == 500


def test_a_refund_whose_charge_never_comes_is_parked_naming_it_then_applies_when_it_comes(
    stripe_hooks, settings
):
    """A refund or dispute waiting for its charge is retried; once its attempts are spent it is
    `unmatched` (not `dead`), saying which charge it waits for, and applies by itself if the charge
    is recorded later."""
    fixture, secret = stripe_hooks
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    refund = event(
        "refund.created", obj("refund", id="re_late", amount=700, charge="ch_sub_1", payment_intent=None)
    )
    deliver(fixture, secret, refund)
    with tenant_context(fixture.tenant):
        parked = InboxEvent.objects.get()
        assert inbox_process(inbox_id=parked.pk) == InboxStatus.FAILED
        InboxEvent.objects.filter(pk=parked.pk).update(status=InboxStatus.PENDING)
        assert inbox_process(inbox_id=parked.pk) == InboxStatus.UNMATCHED
        parked.refresh_from_db()
        assert "awaiting 'ch_sub_1'" in parked.last_error and parked.next_attempt_at is None
    _membership_c1(fixture, secret)
    deliver(fixture, secret, event("invoice.paid", _invoice(1900)))
    with tenant_context(fixture.tenant):
        for inbox_id in InboxEvent.objects.exclude(pk=parked.pk).order_by("id").values_list("id", flat=True):
            inbox_process(inbox_id=inbox_id)
        parked.refresh_from_db()
        assert parked.status == InboxStatus.PENDING and parked.attempts == 0  # replayed, queued again
        assert inbox_process(inbox_id=parked.pk) == InboxStatus.APPLIED
        assert Payment.objects.get(kind="refund").amount == 700


def test_subscription_checkout_completes_our_checkout(stripe_hooks):
    """Item 4: checkout.session.completed completes our Checkout row (and remembers the customer)."""
    fixture, secret = stripe_hooks
    with tenant_context(fixture.tenant):
        from billing.tiers.models import Price

        checkout = Checkout.objects.create(
            customer=Customer.objects.get_or_create(external_id="c1")[0], price=Price.objects.get(code="team-monthly"),
            provider="stripe", success_url="https://a.test/ok", cancel_url="https://a.test/no",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )  # fmt: skip
    meta = {
        "monetize_customer": "c1",
        "monetize_price": "team-monthly",
        "monetize_checkout": str(checkout.pk),
    }
    session = obj("checkout_session", mode="subscription", status="complete", payment_status="paid",
                  customer="cus_new", metadata=meta, payment_intent=None, subscription="sub_new")  # fmt: skip
    completed = event("checkout.session.completed", session)
    deliver(fixture, secret, completed, completed)
    assert process(fixture) == {"checkout.session.completed": "applied"}
    with tenant_context(fixture.tenant):
        checkout.refresh_from_db()
        assert checkout.status == "completed" and checkout.provider_customer_id == "cus_new"
        assert not Payment.objects.exists()  # its invoice records the payment


def test_one_time_purchase_records_the_payment_and_grants_the_tier(stripe_hooks):
    """Item 4: mode=payment: checkout.session.completed and payment_intent.succeeded (each twice,
    either order) record one payment, complete the checkout and grant the one-time price's tier."""
    fixture, secret = stripe_hooks
    with tenant_context(fixture.tenant):
        from billing.tiers.models import Price, Tier

        price = Price.objects.create(tier=Tier.objects.get(code="pro"), code="pro-lifetime", currency="usd",
                                     unit_amount=29900, interval="one_time")  # fmt: skip
        checkout = Checkout.objects.create(
            customer=Customer.objects.get_or_create(external_id="c1")[0], price=price, provider="stripe",
            success_url="https://a.test/ok", cancel_url="https://a.test/no",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )  # fmt: skip
    meta = {
        "monetize_customer": "c1",
        "monetize_price": "pro-lifetime",
        "monetize_checkout": str(checkout.pk),
    }
    session = obj("checkout_session", status="complete", payment_status="paid", amount_total=29900,
                  currency="usd", customer="cus_buyer", metadata=meta)  # fmt: skip
    intent = obj("payment_intent", status="succeeded", amount=29900, amount_received=29900, metadata=meta,
                 customer="cus_buyer", latest_charge="ch_buy_1")  # fmt: skip
    assert session["payment_intent"] == intent["id"]  # Stripe's own fixtures: one purchase
    completed, succeeded = (
        event("checkout.session.completed", session),
        event("payment_intent.succeeded", intent),
    )
    deliver(fixture, secret, succeeded, completed, completed, succeeded)
    process(fixture)
    with tenant_context(fixture.tenant):
        payment = Payment.objects.get()
        assert (payment.kind, payment.amount, payment.provider_payment_id) == ("charge", 29900, intent["id"])
        checkout.refresh_from_db()
        assert checkout.status == "completed"
        membership = Membership.objects.get(status="active")
        assert (membership.tier.code, membership.provider, membership.customer.external_id) == (
            "pro",
            "stripe",
            "c1",
        )
    assert len(outbound(fixture, "payment.succeeded")) == 1
    # a refund of that purchase names its charge: found through the payment intent
    deliver(fixture, secret, event("refund.created", obj("refund", id="re_buy", amount=29900, charge="ch_buy_1",
                                                         payment_intent=intent["id"])))  # fmt: skip
    process(fixture)
    with tenant_context(fixture.tenant):
        assert Payment.objects.get(kind="refund").customer.external_id == "c1"


def test_disputes_are_recorded_against_the_payment_and_published(stripe_hooks):
    """Item 8: charge.dispute.created / .closed (twice, out of order) recorded against the charge."""
    fixture, secret = stripe_hooks
    _membership_c1(fixture, secret)
    deliver(fixture, secret, event("invoice.paid", _invoice(1900)))
    opened = event(
        "charge.dispute.created", obj("dispute", amount=1900, charge="ch_sub_1", payment_intent="pi_sub_1")
    )
    closed = event(
        "charge.dispute.closed",
        obj("dispute", amount=1900, charge="ch_sub_1", status="lost"),
        created=NOW + 60,
    )
    deliver(fixture, secret, closed, opened, closed, opened)
    process(fixture)
    with tenant_context(fixture.tenant):
        charge = Payment.objects.get(kind="charge")
        disputes = dict(Payment.objects.filter(disputed=charge).values_list("kind", "amount"))
        assert disputes == {"dispute": 1900, "dispute_lost": 1900}
    assert [p["charge"] for p in outbound(fixture, "payment.disputed")] == ["in_1"]
    assert [p["outcome"] for p in outbound(fixture, "payment.dispute_closed")] == ["lost"]


def test_staff_replay_an_unmatched_event_from_the_admin(stripe_hooks):
    """Item 7: the inbox admin lists the unmatched event with its reason; its replay action applies
    it once staff added the price."""
    from django.test import Client

    from accounts.models import User

    fixture, secret = stripe_hooks
    meta = {"monetize_customer": "c1"}
    deliver(
        fixture,
        secret,
        event("customer.subscription.created", subscription("active", metadata=meta, lookup_key="gold")),
    )
    assert process(fixture) == {"customer.subscription.created": "unmatched"}
    with tenant_context(fixture.tenant):
        from billing.tiers.models import Price, Tier

        row = InboxEvent.objects.get()
        owner = User.objects.get(email=fixture.owner_email)
    client = Client(HTTP_HOST=fixture.host)
    client.force_login(owner)
    listing = client.get(f"/admin/{InboxEvent._meta.app_label}/inboxevent/?status=unmatched")
    assert listing.status_code == 200 and b"No price" in listing.content
    with tenant_context(fixture.tenant):
        Price.objects.create(tier=Tier.objects.get(code="pro"), code="gold", currency="usd", unit_amount=9900)
    response = client.post(
        f"/admin/{InboxEvent._meta.app_label}/inboxevent/", {"action": "replay", "_selected_action": [row.pk]}
    )
    assert response.status_code == 302
    assert process(fixture) == {"customer.subscription.created": "applied"}
    with tenant_context(fixture.tenant):
        assert Membership.objects.get().tier.code == "pro"


def test_a_refund_finds_a_newer_api_invoices_charge_through_its_payments(stripe_hooks):
    """Newer API versions name the payment intent only in the invoice's `payments`."""
    fixture, secret = stripe_hooks
    _membership_c1(fixture, secret)
    invoice = _invoice(1900, intent=None)
    invoice.pop("charge")
    invoice["payments"] = {"object": "list", "has_more": False, "url": "/v1/invoice_payments",
                           "data": [{"id": "inpay_1", "object": "invoice_payment", "status": "paid",
                                     "payment": {"type": "payment_intent", "payment_intent": "pi_basil"}}]}  # fmt: skip
    refund = event(
        "refund.created", obj("refund", id="re_b", amount=700, charge="ch_basil", payment_intent="pi_basil")
    )
    deliver(fixture, secret, refund, event("invoice.paid", invoice), refund)
    process(fixture)
    with tenant_context(fixture.tenant):
        row = Payment.objects.get(kind="refund")
        assert (row.amount, row.membership_id) == (700, Membership.objects.get().pk)
