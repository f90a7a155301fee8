"""Invoices of providers that run their own subscriptions (Stripe, Polar, Lemon Squeezy), mirrored
from their signed webhooks into our Invoice (collected_by=provider): each provider's published
shapes (tests/fixtures), delivered twice and out of order through the real webhook endpoint and
inbox; a payment that came before its invoice; totals checked by hand; one invoice list for the
customer. Then checkout refusing what Polar and Lemon Squeezy cannot bill, and Polar's
order.refunded recorded once beside refund.created."""

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from billing.events.models import OutboundEvent
from billing.inbox.models import InboxEvent
from billing.invoicing.mirror import invoice_mirror
from billing.invoicing.models import CreditNote, Invoice, InvoiceNumbering, InvoicePayment
from billing.invoicing.services import LineDraft, invoice_draft_create, invoice_finalize
from billing.memberships.models import Checkout, Customer, Payment
from billing.memberships.services import payment_record
from billing.providers.base import InvoiceState, InvoiceStatus, PaymentState
from billing.providers.models import ProviderProduct
from billing.tiers.models import Price
from tests.billing import test_lemonsqueezy_adapter, test_polar_adapter, test_stripe_events
from tests.billing.test_lemonsqueezy_adapter import VARIANTS, ls_membership
from tests.billing.test_lemonsqueezy_adapter import deliver as ls_deliver
from tests.billing.test_lemonsqueezy_adapter import start as ls_start
from tests.billing.test_polar_adapter import deliver as polar_deliver
from tests.billing.test_polar_adapter import polar_membership, service_checkout
from tests.billing.test_polar_adapter import start as polar_start
from tests.billing.test_stripe_events import deliver as stripe_deliver
from tests.billing.test_stripe_events import event, process, subscription
from tests.billing.test_webhooks_in import process_all

# the adapters' tests' fixtures: a tenant with the provider's account, a customer c1, mapped prices
stripe_hooks = test_stripe_events.stripe_hooks
polar_shop = test_polar_adapter.polar_shop
lemon_shop = test_lemonsqueezy_adapter.lemon_shop
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"  # tests/fixtures/stripe/subscription.json


def fixture_json(name: str) -> dict:
    return copy.deepcopy(json.loads((FIXTURES / name).read_text()))


def listen(fixture) -> None:
    """An integrator's endpoint: events are recorded only when someone listens."""
    from billing.events.services import endpoint_create

    with tenant_context(fixture.tenant):
        endpoint_create(url="https://hooks.example.test/in")


def outbound_types(fixture, prefix: str = "invoice.") -> list[str]:
    with tenant_context(fixture.tenant):
        return list(
            OutboundEvent.objects.filter(type__startswith=prefix)
            .order_by("created_at", "id")
            .values_list("type", flat=True)
        )


def mirrored(fixture, provider: str) -> Invoice:
    """The provider's one mirrored invoice, once every delivered event applied (none failed)."""
    with tenant_context(fixture.tenant):
        assert set(InboxEvent.objects.values_list("status", flat=True)) <= {"applied", "ignored"}
        return Invoice.objects.select_related("customer").get(provider=provider)


def lines_of(fixture, invoice: Invoice) -> list[tuple]:
    with tenant_context(fixture.tenant):
        return list(
            invoice.lines.order_by("id").values_list(
                "description", "amount", "proration", "price__code", "kind"
            )
        )


# --- Stripe ------------------------------------------------------------------------------------


def stripe_invoice(status: str, *, invoice_id="in_1Pgc6tB7WZ01zgkWu9fdqL6I", number="ABCD1234-0001") -> dict:
    """Stripe's published invoice (current API version), as a subscription's invoice for c1: the
    plan's fee (quantity 2 seats of 2,450) and a proration credit of 1,000; 10% off; 18% tax."""
    invoice = fixture_json("stripe/invoice.json")
    fee, credit = copy.deepcopy(invoice["lines"]["data"][0]), copy.deepcopy(invoice["lines"]["data"][0])
    fee.update(id="il_fee", amount=4900, quantity=2, description="2 × Team (at $24.50 / month)",
               period={"start": 1793491200, "end": 1796083200})  # fmt: skip
    fee["pricing"] = {"type": "price_details", "unit_amount_decimal": "2450",
                      "price_details": {"price": "price_1PgafmB7WZ01zgkW6dKueIc5", "product": "prod_1"}}  # fmt: skip
    fee["parent"] = {"type": "subscription_item_details", "invoice_item_details": None,
                     "subscription_item_details": {"proration": False, "subscription": SUBSCRIPTION,
                                                   "subscription_item": "si_1", "invoice_item": None,
                                                   "proration_details": {"credited_items": None}}}  # fmt: skip
    credit.update(
        id="il_credit", amount=-1000, quantity=1, description="Unused time on Team after 2 Nov 2026"
    )
    credit["parent"]["invoice_item_details"]["proration"] = True
    invoice["lines"]["data"] = [fee, credit]
    invoice.update(
        id=invoice_id, number=number, status=status, customer="cus_QXg1o8vcGmoR32", billing_reason="subscription_cycle",
        subtotal=3900, total_discount_amounts=[{"amount": 390, "discount": "di_1"}],
        total_taxes=[{"amount": 632, "tax_behavior": "exclusive", "taxability_reason": "standard_rated",
                      "type": "tax_rate_details", "taxable_amount": 3510}],
        total=4142, amount_due=4142, amount_paid=4142 if status == "paid" else 0,
        amount_remaining=0 if status == "paid" else 4142,
    )  # fmt: skip
    invoice["parent"] = {"type": "subscription_details", "quote_details": None,
                         "subscription_details": {"metadata": {"monetize_customer": "c1"}, "subscription": SUBSCRIPTION}}  # fmt: skip
    return invoice


def stripe_member(fixture, secret):
    stripe_deliver(fixture, secret, event("customer.subscription.created",
                                          subscription("active", metadata={"monetize_customer": "c1"})))  # fmt: skip


def test_stripe_invoice_paid_before_finalized_each_twice_is_one_paid_invoice(stripe_hooks):
    fixture, secret = stripe_hooks
    stripe_member(fixture, secret)
    paid = event("invoice.paid", stripe_invoice("paid"))
    succeeded = event("invoice.payment_succeeded", stripe_invoice("paid"))
    finalized = event("invoice.finalized", stripe_invoice("open"))
    # when: paid first, then its twin, then finalized; each delivered twice
    stripe_deliver(fixture, secret, paid, succeeded, finalized, paid, succeeded, finalized)
    process(fixture)
    # then: one invoice, as Stripe billed it, paid once
    invoice = mirrored(fixture, "stripe")
    assert (invoice.collected_by, invoice.provider_invoice_id, invoice.number, invoice.status) == (
        "provider", "in_1Pgc6tB7WZ01zgkWu9fdqL6I", "ABCD1234-0001", "paid",
    )  # fmt: skip
    # by hand: 4,900 − 1,000 = 3,900; 10% off = 390; 18% of 3,510 = 631.8 → Stripe's 632; 3,510 + 632 = 4,142
    assert (invoice.subtotal, invoice.discount, invoice.tax, invoice.total) == (3900, 390, 632, 4142)
    assert (invoice.amount_paid, invoice.amount_due) == (4142, 0)  # once, not the payment and Stripe's figure
    assert invoice.customer.external_id == "c1" and invoice.membership is not None
    assert invoice.billing_reason == "subscription_cycle"
    assert lines_of(fixture, invoice) == [
        ("2 × Team (at $24.50 / month)", 4900, False, "team-monthly", "fee"),  # the subscription's price
        ("Unused time on Team after 2 Nov 2026", -1000, True, None, "proration"),
    ]
    with tenant_context(fixture.tenant):
        fee = invoice.lines.order_by("id").first()
        assert (fee.quantity, fee.unit_amount) == (2, 2450)
        assert fee.period_start == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        assert invoice.period_start == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        assert list(InvoicePayment.objects.values_list("amount_applied", flat=True)) == [4142]
        assert Payment.objects.filter(kind="charge").count() == 1
        assert not InvoiceNumbering.objects.exists()  # our gapless sequence is not consumed
    assert outbound_types(fixture) == ["invoice.created", "invoice.finalized", "invoice.paid"]


def test_stripe_older_api_invoice_maps_lookup_key_and_tax_then_voided(stripe_hooks):
    """The 2025-02-14 (acacia) shape: the price (lookup_key = our price code) on the line, `tax` on
    the invoice. Finalized, voided, then finalized again late: void stays."""
    fixture, secret = stripe_hooks
    invoice = fixture_json("stripe/invoice_2025-02-14_acacia.json")
    invoice.update(
        status="open", number="ABCD1234-0002", tax=190, total=1190, metadata={"monetize_customer": "c1"}
    )
    invoice["lines"]["data"][0]["price"]["lookup_key"] = "pro-monthly"
    finalized = event("invoice.finalized", invoice)
    voided = event("invoice.voided", {**invoice, "status": "void"})
    stripe_deliver(fixture, secret, finalized, voided, voided, finalized)
    process(fixture)
    mirror = mirrored(fixture, "stripe")
    assert (mirror.status, mirror.number, mirror.subtotal, mirror.tax, mirror.total) == (
        "void", "ABCD1234-0002", 1000, 190, 1190,
    )  # fmt: skip
    assert lines_of(fixture, mirror) == [
        ("My First Invoice Item (created for API docs)", 1000, False, "pro-monthly", "fee")
    ]
    assert outbound_types(fixture) == ["invoice.created", "invoice.finalized", "invoice.voided"]


def test_stripe_failed_then_uncollectible_then_paid(stripe_hooks):
    fixture, secret = stripe_hooks
    stripe_member(fixture, secret)
    failed = event("invoice.payment_failed", stripe_invoice("open"))
    uncollectible = event("invoice.marked_uncollectible", stripe_invoice("uncollectible"))
    paid = event("invoice.paid", stripe_invoice("paid"))
    stripe_deliver(fixture, secret, failed, uncollectible, failed, paid, uncollectible)
    process(fixture)
    invoice = mirrored(fixture, "stripe")
    assert (invoice.status, invoice.amount_paid) == ("paid", 4142)
    with tenant_context(fixture.tenant):
        links = InvoicePayment.objects.order_by("id").values_list("payment__kind", "amount_applied")
        assert list(links) == [("failed", 0), ("charge", 4142)]
    assert outbound_types(fixture) == [
        "invoice.created", "invoice.finalized", "invoice.payment_failed", "invoice.marked_uncollectible", "invoice.paid",
    ]  # fmt: skip


def test_a_payment_recorded_before_its_invoice_is_linked_when_the_invoice_is_mirrored(stripe_hooks):
    """A payment that named Stripe's invoice (a payment intent's `invoice`) was recorded first; the
    invoice's finalized event then mirrors it open, links the payment, and it is paid, once."""
    fixture, secret = stripe_hooks
    stripe_member(fixture, secret)
    with tenant_context(fixture.tenant):
        payment_record(
            provider="stripe", event_type="payment.succeeded", occurred_at=dt.datetime.now(dt.UTC), event_id="e0",
            payment=PaymentState(payment_id="pi_early", amount=4142, currency="usd", customer="c1",
                                 invoice="in_1Pgc6tB7WZ01zgkWu9fdqL6I"),
        )  # fmt: skip
    finalized = event("invoice.finalized", stripe_invoice("open"))
    stripe_deliver(fixture, secret, finalized, finalized)
    process(fixture)
    invoice = mirrored(fixture, "stripe")
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("paid", 4142, 0)
    with tenant_context(fixture.tenant):
        assert list(InvoicePayment.objects.values_list("payment__provider_payment_id", "amount_applied")) == [
            ("pi_early", 4142)
        ]
    assert outbound_types(fixture) == ["invoice.created", "invoice.finalized", "invoice.paid"]


def test_an_invoice_of_an_unknown_subscription_waits_for_it(stripe_hooks):
    """No metadata and a subscription we have not applied yet: retried, then mirrored."""
    fixture, secret = stripe_hooks
    invoice = stripe_invoice("open")
    invoice["parent"]["subscription_details"]["metadata"] = {}
    stripe_deliver(fixture, secret, event("invoice.finalized", invoice))
    statuses = process(fixture, rounds=1)
    assert statuses == {"invoice.finalized": "failed"}
    with tenant_context(fixture.tenant):
        assert not Invoice.objects.exists()
    stripe_member(fixture, secret)
    process(fixture)
    assert mirrored(fixture, "stripe").customer.external_id == "c1"


# --- Polar -------------------------------------------------------------------------------------


def polar_order(status: str, *, paid: bool, modified: str, **changes) -> dict:
    """Polar's Order (tests/fixtures/polar/order.json loads as polar-sdk's model): Team monthly,
    4,900 − 490 off + 882 tax (20% of 4,410) = 5,292."""
    order = fixture_json("polar/order.json")
    order.update(status=status, paid=paid, modified_at=modified, subscription_id="sub_9")
    order.update(changes)
    return order


def test_polar_fixture_is_polar_sdks_order():
    from polar.base import deserialize
    from polar.v2026_10.outputs import Order

    order = deserialize(fixture_json("polar/order.json"), Order)
    assert (order.subtotal_amount - order.discount_amount + order.tax_amount) == order.total_amount == 5292


def test_polar_orders_created_paid_updated_twice_and_shuffled_are_one_paid_invoice(polar_shop):
    fixture, fake, secret = polar_shop
    listen(fixture)
    service_checkout(fixture, "team-monthly")  # Team monthly is a Polar product now
    polar_membership(fixture, provider_customer_id="pc_1")
    with tenant_context(fixture.tenant):
        product = ProviderProduct.objects.get(provider="polar")
    item = {"product_price_id": product.external_price_id}
    created = polar_order("pending", paid=False, modified="2026-11-01T12:00:01Z")
    paid = polar_order("paid", paid=True, modified="2026-11-01T12:00:05Z")
    updated = polar_order("paid", paid=True, modified="2026-11-01T12:00:06Z")
    for order in (created, paid, updated):
        order["items"][0].update(item)
    for kind, order in [("order.paid", paid), ("order.updated", updated), ("order.created", created),
                        ("order.paid", paid), ("order.created", created)]:  # fmt: skip
        assert polar_deliver(fixture, secret, kind, order).status_code == 200
    process_all(fixture)
    invoice = mirrored(fixture, "polar")
    assert (invoice.number, invoice.status, invoice.provider_invoice_id) == (
        "ACME-7F3A2B-0001", "paid", "0b7e6c3a-4f1d-4c59-9a53-2f6e8d1c7b10",
    )  # fmt: skip
    assert (invoice.subtotal, invoice.discount, invoice.tax, invoice.total, invoice.amount_paid) == (
        4900, 490, 882, 5292, 5292,
    )  # fmt: skip
    assert (
        invoice.billing_reason == "subscription_create"
        and invoice.membership.provider_subscription_id == "sub_9"
    )
    assert lines_of(fixture, invoice) == [("Team (monthly)", 4900, False, "team-monthly", "fee")]
    with tenant_context(fixture.tenant):
        assert list(Payment.objects.values_list("kind", "amount")) == [("charge", 5292)]
        assert InvoicePayment.objects.get().amount_applied == 5292
    assert outbound_types(fixture) == ["invoice.created", "invoice.finalized", "invoice.paid"]


def test_polar_void_order_and_a_draft_that_is_not_mirrored(polar_shop):
    fixture, _fake, secret = polar_shop
    draft = polar_order("draft", paid=False, modified="2026-11-01T12:00:00Z", invoice_number=None,
                        subscription_id=None, metadata={"monetize_customer": "c1"})  # fmt: skip
    polar_deliver(fixture, secret, "order.created", draft)
    process_all(fixture)
    with tenant_context(fixture.tenant):
        assert not Invoice.objects.exists() and InboxEvent.objects.get().status == "ignored"
    void = {
        **draft,
        "status": "void",
        "invoice_number": "ACME-7F3A2B-0002",
        "modified_at": "2026-11-02T00:00:00Z",
    }
    pending = {**void, "status": "pending", "modified_at": "2026-11-01T13:00:00Z"}
    polar_deliver(fixture, secret, "order.updated", void)
    polar_deliver(fixture, secret, "order.created", pending)  # older, arriving later
    process_all(fixture)
    invoice = mirrored(fixture, "polar")
    assert (invoice.status, invoice.number, invoice.amount_paid, invoice.membership) == (
        "void", "ACME-7F3A2B-0002", 0, None,
    )  # fmt: skip


def _polar_refund(refund_id: str, amount: int, order_id: str) -> dict:
    return {"id": refund_id, "created_at": "2026-11-02T00:00:00Z", "modified_at": "2026-11-02T00:00:01Z",
            "status": "succeeded", "reason": "customer_request", "amount": amount, "tax_amount": 0, "currency": "usd",
            "organization_id": "org", "order_id": order_id, "subscription_id": "sub_9", "customer_id": "pc_1",
            "revoke_benefits": False, "metadata": {}}  # fmt: skip


@pytest.mark.parametrize("refund_events_first", [True, False])
def test_polar_order_refunded_is_recorded_once_beside_refund_created(polar_shop, refund_events_first):
    """order.refunded carries only the order's cumulative refunded amount; refund.created names
    each refund. Two partial refunds (1,000 then 500), each reported both ways, twice, in either
    order: 1,500 refunded in all, told to the integrator once per refund."""
    fixture, _fake, secret = polar_shop
    listen(fixture)
    polar_membership(fixture, provider_customer_id="pc_1")
    paid = polar_order("paid", paid=True, modified="2026-11-01T12:00:05Z")
    order_id = paid["id"]
    polar_deliver(fixture, secret, "order.paid", paid)
    process_all(fixture)
    first = polar_order(
        "partially_refunded", paid=True, modified="2026-11-02T00:00:02Z", refunded_amount=1000
    )
    second = polar_order(
        "partially_refunded", paid=True, modified="2026-11-03T00:00:02Z", refunded_amount=1500
    )
    by_order = [("order.refunded", first), ("order.refunded", second)]
    by_refund = [
        ("refund.created", _polar_refund("r1", 1000, order_id)),
        ("refund.created", _polar_refund("r2", 500, order_id)),
    ]
    deliveries = by_refund + by_order if refund_events_first else by_order + by_refund
    for kind, data in deliveries + deliveries:
        assert polar_deliver(fixture, secret, kind, data).status_code == 200
    process_all(fixture)
    process_all(fixture)
    with tenant_context(fixture.tenant):
        refunds = Payment.objects.filter(kind="refund")
        assert sum(refunds.values_list("amount", flat=True)) == 1500
        # the refund.* rows carry each refund; whatever order.refunded recorded first was taken over
        assert dict(refunds.values_list("provider_payment_id", "amount")) == {
            "refund:r1": 1000,
            "refund:r2": 500,
        }
        invoice = mirrored(fixture, "polar")
        assert invoice.status == "paid"  # a refund is credit, not a status
        # the mirrored invoice's credit notes (issued from the provider's refunds) count each refund once
        notes = CreditNote.objects.filter(invoice=invoice)
        assert sum(notes.values_list("refund_amount", flat=True)) == 1500 == invoice.amount_credited
    with tenant_context(fixture.tenant):
        told = list(
            OutboundEvent.objects.filter(type="payment.refunded").values_list("payload__amount", flat=True)
        )
    assert sorted(told) == [500, 1000]  # each refund's money told once, whichever event recorded it


def test_polar_order_refunded_alone_records_each_refund_once(polar_shop):
    """An endpoint subscribed to order events only: each order.refunded records what is new."""
    fixture, _fake, secret = polar_shop
    polar_membership(fixture, provider_customer_id="pc_1")
    polar_deliver(
        fixture, secret, "order.paid", polar_order("paid", paid=True, modified="2026-11-01T12:00:05Z")
    )
    first = polar_order(
        "partially_refunded", paid=True, modified="2026-11-02T00:00:02Z", refunded_amount=1000
    )
    second = polar_order(
        "partially_refunded", paid=True, modified="2026-11-03T00:00:02Z", refunded_amount=1500
    )
    for order in (second, first, second, first):  # the newer figure first
        polar_deliver(fixture, secret, "order.refunded", order)
    process_all(fixture)
    with tenant_context(fixture.tenant):
        assert sorted(Payment.objects.filter(kind="refund").values_list("amount", flat=True)) == [1500]


# --- Lemon Squeezy -------------------------------------------------------------------------------


def ls_order(status="paid", updated="2026-11-01T12:00:05.000000Z") -> dict:
    """Lemon Squeezy's order (its API reference's example): 999 + 200 VAT = 1,199; our Team variant."""
    payload = fixture_json("lemonsqueezy/order_created.json")
    attributes = payload["data"]["attributes"]
    attributes.update(status=status, updated_at=updated, test_mode=True)
    attributes["first_order_item"]["variant_id"] = int(VARIANTS["team-monthly"])
    return payload


def ls_invoice(kind: str, status: str, updated: str, *, billing_reason="renewal") -> dict:
    """Lemon Squeezy's subscription invoice (its API reference's example): a 1,999 renewal, 200 off,
    tax 360 (20% of 1,799) = 2,159, for subscription 8001."""
    payload = fixture_json("lemonsqueezy/subscription_payment_success.json")
    payload["meta"]["event_name"] = kind
    attributes = payload["data"]["attributes"]
    attributes.update(subscription_id=8001, customer_id=5, status=status, updated_at=updated, billing_reason=billing_reason,
                      subtotal=1999, discount_total=200, tax=360, total=2159, test_mode=True)  # fmt: skip
    return payload


def test_lemonsqueezy_order_twice_is_one_paid_invoice_numbered_as_the_order(lemon_shop):
    fixture, _ = lemon_shop
    listen(fixture)
    pending, paid = ls_order("pending", "2026-11-01T12:00:00.000000Z"), ls_order()
    for payload in (paid, pending, paid, pending):
        assert ls_deliver(fixture, payload).status_code == 200
    process_all(fixture)
    invoice = mirrored(fixture, "lemonsqueezy")
    assert (invoice.provider_invoice_id, invoice.number, invoice.status) == ("order:1", "1", "paid")
    assert (invoice.subtotal, invoice.discount, invoice.tax, invoice.total, invoice.amount_paid) == (
        999, 0, 200, 1199, 1199,
    )  # fmt: skip
    assert lines_of(fixture, invoice) == [
        ("Test Limited License for 2 years – Default", 999, False, "team-monthly", "fee")
    ]
    assert outbound_types(fixture) == ["invoice.created", "invoice.finalized", "invoice.paid"]


def test_lemonsqueezy_partial_refunds_are_each_recorded_once(lemon_shop):
    """order_refunded carries the order's cumulative refunded_amount: 500, then 1,199 in all, each
    delivered twice, the newer first: two refunds adding up to 1,199 (the second partial refund was
    once taken for a redelivery of the first)."""
    fixture, _ = lemon_shop
    ls_deliver(fixture, ls_order())
    process_all(fixture)

    def refunded(amount: int, status: str, updated: str) -> dict:
        payload = ls_order(status, updated)
        payload["meta"]["event_name"] = "order_refunded"
        payload["data"]["attributes"].update(refunded_amount=amount, refunded=status == "refunded")
        return payload

    partial = refunded(500, "partial_refund", "2026-11-02T12:00:00.000000Z")
    full = refunded(1199, "refunded", "2026-11-03T12:00:00.000000Z")
    for payload in (full, partial, full, partial):
        assert ls_deliver(fixture, payload).status_code == 200
    process_all(fixture)
    with tenant_context(fixture.tenant):
        assert sorted(Payment.objects.filter(kind="refund").values_list("amount", flat=True)) == [1199]
    # the newer figure first records all of it; in order, each figure records what is new
    second_order = ls_order()
    second_order["data"]["id"], second_order["data"]["attributes"]["order_number"] = "2", 2
    ls_deliver(fixture, second_order)
    process_all(fixture)
    for amount, status, day in ((500, "partial_refund", "04"), (1199, "refunded", "05")):
        payload = refunded(amount, status, f"2026-11-{day}T12:00:00.000000Z")
        payload["data"]["id"], payload["data"]["attributes"]["order_number"] = "2", 2
        ls_deliver(fixture, payload)
        ls_deliver(fixture, payload)
        process_all(fixture)
    with tenant_context(fixture.tenant):
        second = Payment.objects.filter(kind="refund", reference="order:2")
        assert sorted(second.values_list("amount", flat=True)) == [500, 699]
        assert set(InboxEvent.objects.values_list("status", flat=True)) <= {"applied", "ignored"}
        # each order's mirrored invoice is credited what was refunded on it (credit notes)
        credited = dict(Invoice.objects.values_list("provider_invoice_id", "amount_credited"))
        assert credited == {"order:1": 1199, "order:2": 1199}


def test_lemonsqueezy_renewal_failed_then_recovered_is_one_invoice_paid_once(lemon_shop):
    fixture, _ = lemon_shop
    membership = ls_membership(fixture)
    failed = ls_invoice("subscription_payment_failed", "pending", "2026-12-01T12:00:00.000000Z")
    recovered = ls_invoice("subscription_payment_recovered", "paid", "2026-12-03T12:00:00.000000Z")
    success = ls_invoice("subscription_payment_success", "paid", "2026-12-03T12:00:00.000000Z")
    initial = ls_invoice(
        "subscription_payment_success", "paid", "2026-11-01T12:00:00.000000Z", billing_reason="initial"
    )
    initial["data"]["id"] = "0"
    for payload in (recovered, failed, success, recovered, failed, initial):
        assert ls_deliver(fixture, payload).status_code == 200
    process_all(fixture)
    invoice = mirrored(fixture, "lemonsqueezy")  # the initial invoice is its order's: not mirrored
    assert (invoice.provider_invoice_id, invoice.status, invoice.number) == ("invoice:1", "paid", "invoice:1")
    # by hand: 1,999 − 200 = 1,799; 20% tax = 359.8 → Lemon Squeezy's 360; 1,799 + 360 = 2,159
    assert (invoice.subtotal, invoice.discount, invoice.tax, invoice.total, invoice.amount_paid) == (
        1999, 200, 360, 2159, 2159,
    )  # fmt: skip
    assert invoice.membership_id == membership.pk and invoice.billing_reason == "subscription_cycle"
    assert lines_of(fixture, invoice) == [("Subscription renewal", 1999, False, "team-monthly", "fee")]
    with tenant_context(fixture.tenant):
        links = InvoicePayment.objects.order_by("payment__kind").values_list(
            "payment__kind", "amount_applied"
        )
        assert list(links) == [("charge", 2159), ("failed", 0)]


# --- one list for the customer -------------------------------------------------------------------


def test_the_customers_invoice_list_shows_engine_and_mirrored_invoices_together(stripe_hooks):
    fixture, secret = stripe_hooks
    stripe_member(fixture, secret)
    process(fixture)
    with tenant_context(fixture.tenant):
        customer = Customer.objects.get(external_id="c1")
        draft, _ = invoice_draft_create(customer=customer, currency="usd",
                                        lines=[LineDraft(kind="fee", description="Setup", amount=5000)])  # fmt: skip
        ours = invoice_finalize(invoice_id=draft.pk)
    stripe_deliver(fixture, secret, event("invoice.paid", stripe_invoice("paid")))
    process(fixture)
    body = fixture.api().get("/api/v1/customers/c1/invoices").json()
    rows = [(r["collected_by"], r["provider"], r["provider_invoice_id"], r["number"], r["status"], r["total"])
            for r in body["results"]]  # fmt: skip
    assert rows == [
        ("provider", "stripe", "in_1Pgc6tB7WZ01zgkWu9fdqL6I", "ABCD1234-0001", "paid", 4142),
        ("engine", "", "", ours.number, "open", 5000),
    ]
    assert ours.number.endswith("-000001")  # our sequence is ours alone
    detail = fixture.api().get(f"/api/v1/invoices/{body['results'][0]['id']}").json()
    assert [line["proration"] for line in detail["lines"]] == [False, True]


def test_concurrent_mirrors_of_one_invoice_make_one(live_tenant):
    from tests.helpers import committed, run_parallel

    state = InvoiceState(invoice_id="in_race", status=InvoiceStatus.PAID, currency="usd", subtotal=1900,
                         total=1900, number="RACE-0001", customer="c1")  # fmt: skip

    committed(lambda: listen(live_tenant))

    def mirror(i):
        with tenant_context(live_tenant.tenant):
            return invoice_mirror(provider="stripe", state=state, occurred_at=dt.datetime.now(dt.UTC))[0].pk

    assert len(set(run_parallel(mirror, 4))) == 1

    def check():
        with tenant_context(live_tenant.tenant):
            return (
                list(Invoice.objects.values_list("status", flat=True)),
                sorted(
                    OutboundEvent.objects.filter(type__startswith="invoice.").values_list("type", flat=True)
                ),
            )

    assert committed(check) == (["paid"], ["invoice.created", "invoice.finalized", "invoice.paid"])


# --- checkout refuses what Polar and Lemon Squeezy cannot bill -------------------------------------


def _usage_price(fixture, *, code: str, model: str, meter: str = "build-minutes", **fields) -> None:
    with tenant_context(fixture.tenant):
        tier = Price.objects.get(code="team-monthly").tier
        Price.objects.create(
            tier=tier, code=code, currency="usd", interval="month", model=model, meter=meter, **fields
        )


@pytest.mark.parametrize(
    "code, model, named",
    [
        ("enterprise-minutes", "graduated", "graduated"),  # the catalog's tiered usage price
        ("per-minute", "per_unit", "per_unit"),
        ("minute-packs", "package", "package"),
        ("metered-flat", "flat", "billed on meter 'build-minutes'"),  # a flat amount on a meter is usage too
    ],
)
def test_polar_checkout_of_a_price_it_cannot_bill_is_422_before_calling_polar(polar_shop, code, model, named):
    fixture, fake, _ = polar_shop
    if code != "enterprise-minutes":
        _usage_price(
            fixture, code=code, model=model, unit_amount=1, package_size=100 if model == "package" else None
        )
    response = polar_start(fixture, price=code)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "price_not_supported_by_provider"
    assert named in error["message"] and "Polar" in error["message"]
    assert error["details"]["price"] == code and error["details"]["model"] == model
    assert fake.calls == []
    with tenant_context(fixture.tenant):
        assert not Checkout.objects.exists()


def test_lemonsqueezy_checkout_of_a_usage_price_is_422_and_a_flat_price_still_sells(lemon_shop):
    fixture, fake = lemon_shop
    response = ls_start(fixture, price="enterprise-minutes", provider="lemonsqueezy")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "price_not_supported_by_provider" and "graduated" in error["message"]
    assert fake.calls == []
    assert ls_start(fixture, price="team-monthly", provider="lemonsqueezy").status_code == 201
