"""The Stripe adapter against localstripe (a fake, stateful Stripe server) with the real stripe SDK:
localstripe keeps customers, plans, payment methods, subscriptions and invoices, and delivers its own
`Stripe-Signature`-signed webhooks to the app under gunicorn, where a real Celery worker applies them.

localstripe has no Prices, Checkout Sessions or Billing Portal, so the subscription is created the way
Stripe Checkout would create it after payment (a plan whose id is our price code, our metadata on the
subscription); those calls are tested at the HTTP edge in test_stripe_adapter.py.
"""

import time

import httpx
import pytest
import stripe
from django.utils import timezone
from django_tenants.utils import tenant_context

from tests.conftest import SECOND_LOOPBACK
from tests.helpers import committed

pytestmark = [pytest.mark.worker, pytest.mark.server]

SECRET = "whsec_localstripe_test"


def _until(what, probe, seconds=30.0):
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


@pytest.fixture
def shop(live_tenant, gunicorn, worker, localstripe):
    """The live tenant's default provider is Stripe at localstripe; localstripe posts its webhooks to
    the tenant's /webhooks/stripe/ (by IP: the tenant gets a second loopback address as a domain)."""
    from billing.providers.services import provider_account_upsert
    from tenants.models import Domain

    def configure():
        Domain.objects.create(domain=SECOND_LOOPBACK, tenant=live_tenant.tenant, is_primary=False)
        with tenant_context(live_tenant.tenant):
            provider_account_upsert(
                provider="stripe",
                credentials={"api_key": "sk_test_localstripe", "api_base": localstripe},
                webhook_secret=SECRET,
                make_default=True,
            )

    committed(configure)
    httpx.post(
        f"{localstripe}/_config/webhooks/monetize",
        data={"url": f"http://{SECOND_LOOPBACK}:{gunicorn}/webhooks/stripe/", "secret": SECRET},
    ).raise_for_status()
    api = httpx.Client(
        base_url=f"http://{SECOND_LOOPBACK}:{gunicorn}",
        headers={"Authorization": f"Bearer {live_tenant.api_key}"},
        timeout=10,
    )
    try:
        yield api, stripe.StripeClient("sk_test_localstripe", base_addresses={"api": localstripe})
    finally:
        api.close()


def _membership(api):
    """The customer's membership, with the tier it grants now under "granted"."""
    body = api.get("/api/v1/customers/c1/membership").json()
    return body["membership"] and {**body["membership"], "granted": body["tier"]}


def _check(api, feature):
    return api.post("/api/v1/entitlements/check", json={"customer": "c1", "feature": feature}).json()


def _sweep_and_count_payments(tenant):
    """The payment events may arrive before the subscription they belong to; the inbox retries them
    (here the sweeper is asked now, as beat would after the backoff)."""
    from billing.inbox.services import inbox_sweep
    from billing.memberships.models import Payment

    def work():
        with tenant_context(tenant):
            inbox_sweep(now=timezone.now() + timezone.timedelta(minutes=5))
            return list(Payment.objects.values_list("kind", "amount", "currency"))

    return committed(work)


def test_subscription_lifecycle_through_localstripe_and_its_signed_webhooks(shop, live_tenant):
    api, client = shop
    # before: the Community tier has no private projects (Team has 10)
    assert _check(api, "private_projects")["allowed"] is False

    # given: what Stripe Checkout leaves behind after a paid checkout -- a customer with a card and a
    # subscription to our price carrying our metadata
    product = client.v1.products.create(params={"name": "Team"})
    client.v1.plans.create(
        params={
            "id": "team-monthly",
            "product": product.id,
            "amount": 1900,
            "currency": "usd",
            "interval": "month",
        }
    )
    customer = client.v1.customers.create(params={"email": "c1@example.com"})
    card = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(card.id, params={"customer": customer.id})
    client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": card.id}})
    subscription = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"plan": "team-monthly"}],
            "metadata": {"monetize_customer": "c1", "monetize_price": "team-monthly"},
        }
    )

    # then: localstripe's signed webhooks reach the app, the worker applies them, the tier follows
    membership = _until(
        "the Team membership", lambda: (m := _membership(api)) and m["granted"] == "team" and m
    )
    assert membership["status"] == "active" and membership["provider"] == "stripe"
    assert _check(api, "private_projects")["allowed"] is True
    payments = _until("the first invoice's payment", lambda: _sweep_and_count_payments(live_tenant.tenant))
    assert payments == [("charge", 1900, "usd")]

    # when: cancel at period end through our API -> the adapter asks localstripe (which, unlike Stripe,
    # sends no customer.subscription.updated back: the flag is checked at localstripe)
    response = api.post(f"/api/v1/memberships/{membership['id']}/cancel", json={"at_period_end": True})
    assert response.status_code == 202
    assert client.v1.subscriptions.retrieve(subscription.id).cancel_at_period_end is True
    assert _check(api, "private_projects")["allowed"] is True  # still paid up until the period ends

    # when: cancel now -> customer.subscription.deleted, signed by localstripe -> back to the free tier
    response = api.post(f"/api/v1/memberships/{membership['id']}/cancel", json={"at_period_end": False})
    assert response.status_code == 202
    ended = _until("the free tier", lambda: (m := _membership(api)) and m["granted"] == "community" and m)
    assert ended["status"] == "canceled"
    assert _check(api, "private_projects")["allowed"] is False
    # and nothing was recorded twice
    assert _sweep_and_count_payments(live_tenant.tenant) == [("charge", 1900, "usd")]


def test_a_delivery_with_a_wrong_secret_is_refused_and_stored_nowhere(
    shop, live_tenant, localstripe, gunicorn
):
    from billing.inbox.models import InboxEvent

    api, client = shop

    def stored():
        with tenant_context(live_tenant.tenant):
            return list(InboxEvent.objects.values_list("event_type", flat=True))

    client.v1.customers.create(params={"email": "first@example.com"})  # customer.created, correctly signed
    _until("the first delivery", lambda: committed(stored) == ["customer.created"])
    httpx.post(
        f"{localstripe}/_config/webhooks/monetize",
        data={"url": f"http://{SECOND_LOOPBACK}:{gunicorn}/webhooks/stripe/", "secret": "whsec_someone_else"},
    ).raise_for_status()
    client.v1.customers.create(params={"email": "second@example.com"})
    time.sleep(2.5)  # localstripe delivers after a second
    assert committed(stored) == ["customer.created"]
