"""Provider fees (issue 12 items 1 and 5): the fee a provider reports for a charge is recorded on
the Payment (`fee_amount`, minor units of its currency) and posted with it, Dr provider_fees / Cr
cash:<provider>, in the charge's own transaction. Each provider's published payload, signed by its
own scheme and delivered twice, records and posts the fee once."""

import json
from urllib.parse import urlsplit

import pytest
import stripe
from django_tenants.utils import tenant_context

from billing.ledger.models import JournalTransaction
from billing.ledger.selectors import ledger_balance
from billing.memberships.models import Payment
from billing.providers.services import provider_account_upsert
from billing.providers.stripe import StripeProvider
from tests.billing import test_stripe_events as stripe_events
from tests.billing.test_ledger import shop  # noqa: F401
from tests.billing.test_polar_adapter import polar_shop  # noqa: F401
from tests.billing.test_webhooks_in import T0, deliver, process_all, sandbox, sub_event  # noqa: F401


def _entries(txn):
    return sorted((e.account.code, e.currency, e.amount) for e in txn.entries.select_related("account"))


def _charge_posting(fixture, provider: str, payment_id: str | None = None):
    with tenant_context(fixture.tenant):
        found = Payment.objects.filter(provider=provider, kind="charge")
        payment = found.get(provider_payment_id=payment_id) if payment_id else found.get()
        txn = JournalTransaction.objects.get(source="payment", source_id=str(payment.pk))
        return payment, _entries(txn)


# --- the sandbox: none unless the tenant simulates one ---------------------------------------------


def _paid(event_id, *, amount=4900, **data):
    return {"id": event_id, "type": "payment.succeeded", "created_at": T0.isoformat(),
            "data": {"payment_id": "pay_1", "amount": amount, "currency": "usd", "customer": "c1",
                     "subscription_id": "sub_1"} | data}  # fmt: skip


def test_a_sandbox_charge_with_a_fee_records_and_posts_it_once(sandbox):  # noqa: F811
    fixture, adapter = sandbox
    deliver(fixture, adapter, sub_event("evt_sub", type="subscription.created"))
    # the same payment event delivered twice (and once more under another event id)
    for event_id in ("evt_pay", "evt_pay", "evt_pay_again"):
        assert deliver(fixture, adapter, _paid(event_id, fee=171)).status_code == 200
    process_all(fixture)
    payment, entries = _charge_posting(fixture, "sandbox")
    assert (payment.amount, payment.fee_amount) == (4900, 171)
    assert entries == [
        ("cash:sandbox", "usd", -171),
        ("cash:sandbox", "usd", 4900),
        ("provider_fees", "usd", 171),
        ("receivable", "usd", -4900),
    ]
    with tenant_context(fixture.tenant):
        assert JournalTransaction.objects.filter(source="payment").count() == 1
        assert ledger_balance(account="cash:sandbox", currency="usd") == 4900 - 171
        assert ledger_balance(account="provider_fees", currency="usd") == 171


def test_a_sandbox_charge_without_a_fee_posts_none(sandbox):  # noqa: F811
    fixture, adapter = sandbox
    deliver(fixture, adapter, sub_event("evt_sub", type="subscription.created"))
    deliver(fixture, adapter, _paid("evt_pay"))
    deliver(fixture, adapter, _paid("evt_bad", payment_id="pay_2", fee="lots"))  # a bad fee is no fee
    deliver(fixture, adapter, _paid("evt_neg", payment_id="pay_3", fee=-5))
    process_all(fixture)
    for payment_id in ("pay_1", "pay_2", "pay_3"):
        payment, entries = _charge_posting(fixture, "sandbox", payment_id)
        assert payment.fee_amount == 0
        assert entries == [("cash:sandbox", "usd", 4900), ("receivable", "usd", -4900)]


def test_the_sandbox_engine_charges_the_tenants_simulated_fee(shop, django_capture_on_commit_callbacks):  # noqa: F811
    from billing.providers.models import EngineCharge
    from tenants.middleware import tenant_cache_clear
    from tests.billing import test_period_close as flow

    fee_shop = shop
    # given alpha simulates a 2.9 % fee at the sandbox
    fee_shop.tenant.sandbox_fee_bps = 290
    fee_shop.tenant.save(update_fields=["sandbox_fee_bps"])
    tenant_cache_clear()
    # when a customer subscribes (Pro monthly, 29.00)
    flow.subscribe(fee_shop, django_capture_on_commit_callbacks)
    # then the sandbox kept 0.84 (29.00 x 2.9 % = 0.841, half up) and the ledger shows it
    payment, entries = _charge_posting(fee_shop, "sandbox")
    assert (payment.amount, payment.fee_amount) == (2900, 84)
    assert ("provider_fees", "usd", 84) in entries and ("cash:sandbox", "usd", -84) in entries
    with tenant_context(fee_shop.tenant):
        assert EngineCharge.objects.get(payment_key=payment.provider_payment_id).fee_amount == 84


# --- Stripe: the charge's balance transaction, fetched through the adapter -----------------------------


class FakeStripeBalance(stripe.HTTPClient):
    """Stripe's API at its network edge: a charge and its balance transaction (with the fee)."""

    name = "fake"

    def __init__(self, *, fee=175, currency="usd"):
        super().__init__()
        self.calls = []
        self.fee, self.currency = fee, currency

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        path = urlsplit(url).path
        self.calls.append((method, path))
        if path == "/v1/charges/ch_sub_1":
            charge = {"id": "ch_sub_1", "object": "charge", "amount": 4900, "currency": "usd",
                      "balance_transaction": "txn_1"}  # fmt: skip
            return json.dumps(charge), 200, {}
        if path == "/v1/balance_transactions/txn_1":
            txn = {"id": "txn_1", "object": "balance_transaction", "amount": 4900, "fee": self.fee,
                   "net": 4900 - self.fee, "currency": self.currency, "source": "ch_sub_1", "type": "charge"}  # fmt: skip
            return json.dumps(txn), 200, {}
        error = {"error": {"type": "invalid_request_error", "message": f"no route {path}"}}
        return json.dumps(error), 404, {}

    def close(self):
        pass


@pytest.fixture
def stripe_fees(ci_catalog, monkeypatch):
    fake = FakeStripeBalance()
    monkeypatch.setattr(StripeProvider, "http_client", fake)
    secret = "whsec_fees"
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(
            provider="stripe", credentials={"api_key": "sk_test_fees"}, webhook_secret=secret
        )
    return ci_catalog, secret, fake


def test_a_stripe_invoice_paid_twice_records_the_balance_transactions_fee_once(stripe_fees):
    fixture, secret, fake = stripe_fees
    stripe_events._membership_c1(fixture, secret)
    paid = stripe_events.event("invoice.paid", stripe_events._invoice(4900))
    succeeded = stripe_events.event("invoice.payment_succeeded", stripe_events._invoice(4900))
    stripe_events.deliver(fixture, secret, paid, succeeded, paid)
    stripe_events.process(fixture)
    payment, entries = _charge_posting(fixture, "stripe")
    assert (payment.amount, payment.fee_amount, payment.currency) == (4900, 175, "usd")
    assert entries == [
        ("cash:stripe", "usd", -175),
        ("cash:stripe", "usd", 4900),
        ("provider_fees", "usd", 175),
        ("receivable", "usd", -4900),
    ]
    # asked once: the second event found the charge recorded
    assert fake.calls == [("get", "/v1/charges/ch_sub_1"), ("get", "/v1/balance_transactions/txn_1")]


def test_a_stripe_fee_in_another_currency_is_not_posted_as_this_one(stripe_fees):
    fixture, secret, fake = stripe_fees
    fake.currency = "eur"  # a converted charge: Stripe settled it (and its fee) in euros
    stripe_events._membership_c1(fixture, secret)
    stripe_events.deliver(fixture, secret, stripe_events.event("invoice.paid", stripe_events._invoice(4900)))
    stripe_events.process(fixture)
    payment, entries = _charge_posting(fixture, "stripe")
    assert payment.fee_amount == 0
    assert entries == [("cash:stripe", "usd", 4900), ("receivable", "usd", -4900)]


def test_stripe_not_answering_about_the_fee_retries_the_event(stripe_fees):
    fixture, secret, fake = stripe_fees

    class Down(FakeStripeBalance):
        def request(self, method, url, headers, post_data=None, *, _usage=None):
            raise stripe.APIConnectionError("connection refused")

    stripe_events._membership_c1(fixture, secret)
    StripeProvider.http_client = Down()
    stripe_events.deliver(fixture, secret, stripe_events.event("invoice.paid", stripe_events._invoice(4900)))
    assert stripe_events.process(fixture, rounds=1)["invoice.paid"] == "failed"
    with tenant_context(fixture.tenant):
        assert not Payment.objects.filter(kind="charge").exists()
    StripeProvider.http_client = fake  # Stripe is back: the retry records the charge with its fee
    stripe_events.process(fixture)
    assert _charge_posting(fixture, "stripe")[0].fee_amount == 175


# --- Polar: the order's platform fee --------------------------------------------------------------


def test_a_polar_order_paid_twice_records_its_platform_fee_once(polar_shop):  # noqa: F811
    from tests.billing.test_polar_adapter import deliver as polar_deliver
    from tests.billing.test_polar_adapter import polar_membership
    from tests.billing.test_provider_invoices import polar_order

    fixture, _fake, secret = polar_shop
    polar_membership(fixture, provider_customer_id="pc_1")
    paid = polar_order("paid", paid=True, modified="2026-11-01T12:00:05Z", platform_fee_amount=290)
    for _ in range(2):
        assert polar_deliver(fixture, secret, "order.paid", paid).status_code == 200
    process_all(fixture)
    payment, entries = _charge_posting(fixture, "polar")
    assert (payment.amount, payment.fee_amount) == (5292, 290)
    assert ("provider_fees", "usd", 290) in entries and ("cash:polar", "usd", -290) in entries
    with tenant_context(fixture.tenant):
        assert ledger_balance(account="cash:polar", currency="usd") == 5292 - 290


def test_the_polar_fee_is_read_from_polars_published_order_payload():
    from polar.base import deserialize
    from polar.v2026_10.outputs import Order

    from billing.providers.polar_webhooks import _platform_fee
    from tests.billing.test_provider_invoices import polar_order

    order = polar_order("paid", paid=True, modified="2026-11-01T12:00:05Z", platform_fee_amount=290)
    assert deserialize(order, Order).platform_fee_amount == 290  # polar-sdk's own model has the field
    assert _platform_fee(order) == 290
    assert _platform_fee({**order, "platform_fee_currency": "eur"}) is None
    assert _platform_fee({**order, "platform_fee_amount": None}) is None


def test_the_owner_sets_the_sandbox_fee_on_the_settings_page(alpha):
    from tenants.models import Tenant
    from tests.conftest import PASSWORD

    client = alpha.client()
    client.post("/accounts/login/", {"login": alpha.owner_email, "password": PASSWORD})
    assert "Sandbox provider fee" in client.get("/settings/").content.decode()
    response = client.post(
        "/settings/", {"rate_limit_failure_mode": "open", "sandbox_fee_bps": "290"}, follow=True
    )
    assert response.status_code == 200 and "Settings saved." in response.content.decode()
    assert Tenant.objects.get(pk=alpha.tenant.pk).sandbox_fee_bps == 290
    # more than all of it is refused, and changes nothing
    refused = client.post("/settings/", {"rate_limit_failure_mode": "open", "sandbox_fee_bps": "10001"})
    assert refused.status_code == 200 and "Sandbox provider fee" in refused.content.decode()
    assert Tenant.objects.get(pk=alpha.tenant.pk).sandbox_fee_bps == 290
    # left out: unchanged
    client.post("/settings/", {"rate_limit_failure_mode": "open"})
    assert Tenant.objects.get(pk=alpha.tenant.pk).sandbox_fee_bps == 290
