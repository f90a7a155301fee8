"""The Stripe adapter's API calls through the real stripe SDK, with only the network edge faked: a
stripe.HTTPClient that answers like Stripe's API and records what it was sent."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from django_tenants.utils import tenant_context

from billing.memberships.models import Checkout, Membership
from billing.providers.services import provider_account_upsert
from billing.providers.stripe import StripeProvider
from tests.billing.test_entitlements import make_customer


class FakeStripe(stripe.HTTPClient):
    """Stripe's API as far as the adapter uses it (products, prices, checkout sessions,
    subscriptions, billing portal)."""

    name = "fake"

    def __init__(self, fail_with: int | None = None):
        super().__init__()
        self.calls = []
        self.prices = {}
        self.fail_with = fail_with
        self.item_price = ("price_team-monthly", 1900)  # what the subscription at "Stripe" holds now

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        path = urlsplit(url).path
        query = parse_qs(urlsplit(url).query)
        form = parse_qs(post_data.decode() if isinstance(post_data, bytes) else (post_data or ""))
        self.calls.append(
            {"method": method, "path": path, "form": form, "query": query, "headers": dict(headers or {})}
        )
        if self.fail_with:
            body = {
                "error": {
                    "type": "api_error" if self.fail_with >= 500 else "invalid_request_error",
                    "message": "nope",
                }
            }
            return json.dumps(body), self.fail_with, {}
        if method == "get" and path == "/v1/prices":
            key = query.get("lookup_keys[0]", [""])[0]
            data = [self.prices[key]] if key in self.prices else []
            return (
                json.dumps({"object": "list", "data": data, "has_more": False, "url": "/v1/prices"}),
                200,
                {},
            )
        if path == "/v1/products":
            return json.dumps({"id": "prod_1", "object": "product"}), 200, {}
        if path == "/v1/prices":
            price = {
                "id": "price_" + form["lookup_key"][0],
                "object": "price",
                "lookup_key": form["lookup_key"][0],
            }
            self.prices[form["lookup_key"][0]] = price
            return json.dumps(price), 200, {}
        if path == "/v1/checkout/sessions":
            return json.dumps({"id": "cs_test_1", "object": "checkout.session", "url": "https://checkout.stripe.test/c/pay/cs_test_1",
                               "expires_at": 1900000000}), 200, {}  # fmt: skip
        if path.startswith("/v1/subscriptions/"):
            price_id, amount = self.item_price
            item = {"id": "si_1", "object": "subscription_item", "quantity": 1, "current_period_start": 1_790_000_000,
                    "current_period_end": 1_792_592_000, "price": {"id": price_id, "object": "price",
                                                                    "unit_amount": amount, "currency": "usd"}}  # fmt: skip
            subscription = {"id": path.rsplit("/", 1)[1], "object": "subscription", "status": "active", "schedule": None,
                            "items": {"object": "list", "data": [item], "has_more": False, "url": "/v1/subscription_items"}}  # fmt: skip
            return json.dumps(subscription), 200, {}
        if path.startswith("/v1/subscription_schedules"):
            return json.dumps({"id": "sub_sched_1", "object": "subscription_schedule"}), 200, {}
        if path == "/v1/billing_portal/sessions":
            return (
                json.dumps(
                    {
                        "id": "bps_1",
                        "object": "billing_portal.session",
                        "url": "https://billing.stripe.test/p/session/1",
                    }
                ),
                200,
                {},
            )
        return (
            json.dumps({"error": {"type": "invalid_request_error", "message": f"no route {path}"}}),
            404,
            {},
        )

    def close(self):
        pass


@pytest.fixture
def stripe_shop(ci_catalog, monkeypatch):
    fake = FakeStripe()
    monkeypatch.setattr(StripeProvider, "http_client", fake)
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(
            provider="stripe",
            credentials={"api_key": "sk_test_123"},
            webhook_secret="whsec_x",
            make_default=True,
        )
    make_customer(ci_catalog)
    return ci_catalog, fake


def start(fixture, **body):
    payload = {
        "customer": "c1",
        "success_url": "https://app.test/ok",
        "cancel_url": "https://app.test/no",
        **body,
    }
    return fixture.api().post("/api/v1/checkouts", payload, content_type="application/json")


def test_checkout_creates_price_at_stripe_first_then_a_session(stripe_shop):
    fixture, fake = stripe_shop
    response = start(fixture, tier="team")
    assert response.status_code == 201
    assert response.json()["url"] == "https://checkout.stripe.test/c/pay/cs_test_1"
    paths = [(c["method"], c["path"]) for c in fake.calls]
    assert paths == [
        ("get", "/v1/prices"),
        ("post", "/v1/products"),
        ("post", "/v1/prices"),
        ("post", "/v1/checkout/sessions"),
    ]
    session = fake.calls[-1]
    with tenant_context(fixture.tenant):
        checkout = Checkout.objects.get()
    assert session["headers"]["Idempotency-Key"] == f"checkout-{checkout.pk}"  # derived from our row id
    assert session["form"]["line_items[0][price]"] == ["price_team-monthly"]
    assert session["form"]["subscription_data[metadata][monetize_customer]"] == ["c1"]
    assert session["form"]["subscription_data[trial_period_days]"] == ["14"]
    assert session["form"]["mode"] == ["subscription"]
    assert fake.calls[2]["form"]["unit_amount"] == ["1900"] and fake.calls[2]["form"][
        "recurring[interval]"
    ] == ["month"]
    # the second checkout finds the price by its lookup key: nothing created twice
    start(fixture, tier="team")
    assert [c["path"] for c in fake.calls[4:]] == ["/v1/prices", "/v1/checkout/sessions"]


def test_stripe_errors_map_to_ours(ci_catalog, monkeypatch):
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="stripe", credentials={"api_key": "sk_test_123"}, make_default=True)
    make_customer(ci_catalog)
    monkeypatch.setattr(StripeProvider, "http_client", FakeStripe(fail_with=400))
    refused = start(ci_catalog, tier="team")
    assert refused.status_code == 502 and refused.json()["error"]["code"] == "provider_error"
    monkeypatch.setattr(StripeProvider, "http_client", FakeStripe(fail_with=503))
    down = start(ci_catalog, tier="team")
    assert down.status_code == 503 and down.json()["error"]["code"] == "provider_unavailable"
    with tenant_context(ci_catalog.tenant):
        assert not Checkout.objects.exists()  # nothing half-made


def test_cancel_and_portal_go_to_stripe(stripe_shop):
    fixture, fake = stripe_shop
    with tenant_context(fixture.tenant):
        from billing.memberships.models import Customer
        from billing.tiers.models import Price

        price = Price.objects.get(code="team-monthly")
        membership = Membership.objects.create(
            customer=Customer.objects.get(external_id="c1"), tier=price.tier, price=price, status="active", provider="stripe",
            provider_subscription_id="sub_9", provider_customer_id="cus_9", started_at="2026-11-01T00:00:00Z",
        )  # fmt: skip
    response = fixture.api().post(
        f"/api/v1/memberships/{membership.pk}/cancel",
        {"at_period_end": True},
        content_type="application/json",
    )
    assert response.status_code == 202
    assert (fake.calls[-1]["method"], fake.calls[-1]["path"], fake.calls[-1]["form"]) == (
        "post", "/v1/subscriptions/sub_9", {"cancel_at_period_end": ["true"]},
    )  # fmt: skip
    fixture.api().post(
        f"/api/v1/memberships/{membership.pk}/cancel",
        {"at_period_end": False},
        content_type="application/json",
    )
    assert (fake.calls[-1]["method"], fake.calls[-1]["path"]) == ("delete", "/v1/subscriptions/sub_9")
    portal = fixture.api().get(f"/api/v1/memberships/{membership.pk}/portal").json()
    assert portal == {"url": "https://billing.stripe.test/p/session/1"}
    paused = fixture.api().post(
        f"/api/v1/memberships/{membership.pk}/pause", {}, content_type="application/json"
    )
    assert paused.status_code == 202
    assert (fake.calls[-1]["path"], fake.calls[-1]["form"]) == (
        "/v1/subscriptions/sub_9", {"pause_collection[behavior]": ["void"]},
    )  # fmt: skip


def _stripe_membership(fixture, code="team-monthly"):
    from billing.memberships.models import Customer
    from billing.tiers.models import Price

    with tenant_context(fixture.tenant):
        price = Price.objects.get(code=code)
        return Membership.objects.create(
            customer=Customer.objects.get(external_id="c1"), tier=price.tier, price=price, status="active", provider="stripe",
            provider_subscription_id="sub_9", provider_customer_id="cus_9", started_at="2026-11-01T00:00:00Z",
        )  # fmt: skip


def test_upgrade_swaps_the_item_now_with_proration(stripe_shop):
    fixture, fake = stripe_shop
    membership = _stripe_membership(fixture)
    response = fixture.api().post(
        f"/api/v1/memberships/{membership.pk}/change", {"tier": "pro"}, content_type="application/json"
    )
    assert response.status_code == 202 and response.json()["applies"] == "now"
    update = fake.calls[-1]
    assert (update["method"], update["path"]) == ("post", "/v1/subscriptions/sub_9")
    assert update["form"]["items[0][id]"] == ["si_1"] and update["form"]["items[0][price]"] == [
        "price_pro-monthly"
    ]
    assert update["form"]["proration_behavior"] == ["always_invoice"]


def test_downgrade_waits_for_the_period_end_through_a_schedule(stripe_shop):
    fixture, fake = stripe_shop
    membership = _stripe_membership(fixture, code="pro-monthly")
    fake.item_price = ("price_pro-monthly", 4900)
    response = fixture.api().post(
        f"/api/v1/memberships/{membership.pk}/change", {"tier": "team"}, content_type="application/json"
    )
    assert response.status_code == 202 and response.json()["applies"] == "at_period_end"
    created, updated = fake.calls[-2], fake.calls[-1]
    assert (created["path"], created["form"]) == (
        "/v1/subscription_schedules",
        {"from_subscription": ["sub_9"]},
    )
    assert updated["path"] == "/v1/subscription_schedules/sub_sched_1"
    assert updated["form"]["phases[0][items][0][price]"] == ["price_pro-monthly"]
    assert updated["form"]["phases[0][end_date]"] == ["1792592000"]
    assert updated["form"]["phases[1][items][0][price]"] == ["price_team-monthly"]
    assert updated["form"]["end_behavior"] == ["release"]


class _LeakyStripe(FakeStripe):
    """Stripe errors whose text names the address we call."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        if self.mode == "connection":
            raise stripe.APIConnectionError(
                "Unexpected error communicating with Stripe. (Network error: ConnectionError: "
                f"HTTPConnectionPool(host='stripe.internal', port=12111): Max retries exceeded with url: {url})"
            )
        body = {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL ({url})"}}
        return json.dumps(body), 404, {}


@pytest.mark.parametrize("mode, status", [("connection", 503), ("refused", 502)])
def test_stripe_errors_do_not_show_our_api_base(ci_catalog, monkeypatch, mode, status):
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(
            provider="stripe",
            credentials={"api_key": "sk_test_123", "api_base": "http://stripe.internal:12111"},
            make_default=True,
        )
    make_customer(ci_catalog)
    monkeypatch.setattr(StripeProvider, "http_client", _LeakyStripe(mode))
    response = start(ci_catalog, tier="team")
    assert response.status_code == status
    text = response.content.decode()
    assert "stripe.internal" not in text and "12111" not in text, text
    assert response.json()["error"]["message"].startswith("Stripe")
