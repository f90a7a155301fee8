"""The Lemon Squeezy adapter's API calls over real httpx, with only the network edge faked (an
httpx.MockTransport answering like Lemon Squeezy's JSON:API and recording what it was sent), and its
webhooks signed with a real HMAC (X-Signature) through `POST /webhooks/lemonsqueezy/`."""

import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid

import httpx
import pytest
from django_tenants.utils import tenant_context

from billing.inbox.models import InboxEvent
from billing.invoicing.models import Invoice
from billing.memberships.models import Checkout, Customer, Membership, Payment
from billing.memberships.services import checkout_create
from billing.providers.base import ProviderNotConfigured
from billing.providers.lemonsqueezy import LemonSqueezyProvider
from billing.providers.models import ProviderProduct
from billing.providers.services import provider_account_upsert
from billing.tiers.models import Price
from tests.billing.test_entitlements import check, make_customer
from tests.billing.test_webhooks_in import process_all

API = "https://api.lemonsqueezy.com"
STORE = "4242"
VARIANTS = {"team-monthly": "1001", "pro-monthly": "1002"}
JSONAPI = {"jsonapi": {"version": "1.0"}}
SECRET = secrets.token_hex(16)  # the store's webhook signing secret


def error(status: int, detail: str, pointer: str = "") -> httpx.Response:
    """A 4xx/5xx as Lemon Squeezy sends it: a JSON:API `errors` array."""
    body = {**JSONAPI, "errors": [{"detail": detail, "status": str(status), "title": httpx.codes.get_reason_phrase(status),
                                   **({"source": {"pointer": pointer}} if pointer else {})}]}  # fmt: skip
    return httpx.Response(status, json=body, headers={"Content-Type": "application/vnd.api+json"})


def subscription_object(
    sub_id: str, *, variant_id: int, quantity: int = 1, status: str = "active", **changes
) -> dict:
    now = "2026-11-01T12:00:00.000000Z"
    return {
        "type": "subscriptions",
        "id": sub_id,
        "attributes": {
            "store_id": int(STORE), "customer_id": 5, "order_id": 31, "order_item_id": 32, "product_id": 900,
            "variant_id": variant_id, "product_name": "CI", "variant_name": "Team monthly", "user_name": "C One",
            "user_email": "c1@example.com", "status": status, "status_formatted": status.title(), "card_brand": "visa",
            "card_last_four": "4242", "pause": None, "cancelled": False, "trial_ends_at": None, "billing_anchor": 1,
            "first_subscription_item": {"id": 77, "subscription_id": int(sub_id), "price_id": 12, "quantity": quantity,
                                        "is_usage_based": False, "created_at": now, "updated_at": now},
            "urls": {"update_payment_method": f"https://shop.lemonsqueezy.com/subscription/{sub_id}/payment-details?signature=x",
                     "customer_portal": "https://shop.lemonsqueezy.com/billing?expires=1&user=5&signature=s"},
            "renews_at": "2026-12-01T12:00:00.000000Z", "ends_at": None, "created_at": now, "updated_at": now,
            "test_mode": True, **changes,
        },
        "relationships": {},
        "links": {"self": f"{API}/v1/subscriptions/{sub_id}"},
    }  # fmt: skip


class FakeLemonSqueezy:
    """Lemon Squeezy's API as far as the adapter uses it: checkouts, subscriptions (retrieve, update,
    cancel), subscription items, customers. `fail_with` answers every call with that status."""

    def __init__(self, *, fail_with: int | None = None, raises: Exception | None = None):
        self.calls: list[dict] = []
        self.fail_with, self.raises = fail_with, raises
        self.subscriptions = {"8001": subscription_object("8001", variant_id=1001)}

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.calls.append({"method": request.method, "path": path, "body": body, "headers": request.headers})
        if self.raises is not None:
            raise self.raises
        if self.fail_with:
            return error(self.fail_with, "Something went wrong.")
        if request.headers.get("Authorization") != "Bearer ls_test_key":
            return error(401, "Unauthenticated.")
        if request.headers.get("Accept") != "application/vnd.api+json":
            return error(406, "Not Acceptable")
        if request.method == "POST" and path == "/v1/checkouts":
            return self._checkout(body)
        if path.startswith("/v1/subscriptions/"):
            sub = self.subscriptions.get(path.rsplit("/", 1)[1])
            if sub is None:
                return error(404, "Not found.")
            if request.method == "DELETE":
                sub["attributes"].update(
                    status="cancelled", cancelled=True, ends_at=sub["attributes"]["renews_at"]
                )
            elif request.method == "PATCH":
                changes = body["data"]["attributes"]
                if "variant_id" in changes:
                    sub["attributes"]["variant_id"] = changes["variant_id"]
                if "pause" in changes:
                    sub["attributes"]["pause"] = changes["pause"]
                    sub["attributes"]["status"] = "paused" if changes["pause"] else "active"
            return httpx.Response(200, json={**JSONAPI, "links": {"self": f"{API}{path}"}, "data": sub})
        if request.method == "PATCH" and path.startswith("/v1/subscription-items/"):
            item_id = path.rsplit("/", 1)[1]
            return httpx.Response(200, json={**JSONAPI, "data": {
                "type": "subscription-items", "id": item_id,
                "attributes": {"subscription_id": 8001, "price_id": 12, "quantity": body["data"]["attributes"]["quantity"],
                               "is_usage_based": False, "created_at": "2026-11-01T12:00:00.000000Z",
                               "updated_at": "2026-11-01T12:00:00.000000Z"}}})  # fmt: skip
        if request.method == "GET" and path == "/v1/customers/5":
            return httpx.Response(200, json={**JSONAPI, "data": {
                "type": "customers", "id": "5",
                "attributes": {"store_id": int(STORE), "name": "C One", "email": "c1@example.com", "status": "subscribed",
                               "urls": {"customer_portal": "https://shop.lemonsqueezy.com/billing?expires=1&user=5&signature=s"},
                               "created_at": "2026-11-01T12:00:00.000000Z", "updated_at": "2026-11-01T12:00:00.000000Z",
                               "test_mode": True}}})  # fmt: skip
        return error(404, f"No route {request.method} {path}.")

    def _checkout(self, body: dict) -> httpx.Response:
        data = body["data"]
        attributes, variant = data["attributes"], data["relationships"]["variant"]["data"]["id"]
        if variant not in VARIANTS.values():
            return error(422, "The selected variant is invalid.", "/data/relationships/variant/data/id")
        checkout_id = str(uuid.uuid4())
        checkout_data = {"email": "", "name": "", "billing_address": [], "tax_number": "", "discount_code": "",
                         "custom": [], "variant_quantities": [], **attributes.get("checkout_data", {})}  # fmt: skip
        return httpx.Response(
            201,
            headers={"Content-Type": "application/vnd.api+json"},
            json={**JSONAPI, "links": {"self": f"{API}/v1/checkouts/{checkout_id}"}, "data": {
                "type": "checkouts", "id": checkout_id,
                "attributes": {
                    "store_id": int(data["relationships"]["store"]["data"]["id"]), "variant_id": int(variant),
                    "custom_price": None, "product_options": attributes.get("product_options", {}),
                    "checkout_options": attributes.get("checkout_options", {}), "checkout_data": checkout_data,
                    "expires_at": attributes.get("expires_at"), "created_at": "2026-11-01T12:00:00.000000Z",
                    "updated_at": "2026-11-01T12:00:00.000000Z", "test_mode": attributes.get("test_mode", False),
                    "url": f"https://shop.lemonsqueezy.com/checkout/custom/{checkout_id}?signature=abc",
                },
                "relationships": {}, "links": {"self": f"{API}/v1/checkouts/{checkout_id}"},
            }},
        )  # fmt: skip


def use(monkeypatch, fake: FakeLemonSqueezy) -> FakeLemonSqueezy:
    monkeypatch.setattr(LemonSqueezyProvider, "http_transport", httpx.MockTransport(fake.handle))
    return fake


@pytest.fixture
def lemon_shop(ci_catalog, monkeypatch):
    """alpha with the CI catalog, a Lemon Squeezy test account, team-monthly and pro-monthly mapped
    to variants, and customer c1."""
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(
            provider="lemonsqueezy",
            credentials={"api_key": "ls_test_key", "store_id": STORE},
            webhook_secret=SECRET,
            make_default=True,
        )
        for code, variant in VARIANTS.items():
            ProviderProduct.objects.create(
                provider="lemonsqueezy", mode="test", price=Price.objects.get(code=code, active=True),
                external_product_id="900", external_price_id=variant,
            )  # fmt: skip
    make_customer(ci_catalog)
    return ci_catalog, use(monkeypatch, FakeLemonSqueezy())


def start(fixture, **body):
    payload = {
        "customer": "c1",
        "success_url": "https://app.test/ok",
        "cancel_url": "https://app.test/no",
        **body,
    }
    return fixture.api().post("/api/v1/checkouts", payload, content_type="application/json")


def ls_membership(fixture, *, status="active") -> Membership:
    with tenant_context(fixture.tenant):
        price = Price.objects.get(code="team-monthly", active=True)
        return Membership.objects.create(
            customer=Customer.objects.get(external_id="c1"), tier=price.tier, price=price, status=status,
            provider="lemonsqueezy", provider_subscription_id="8001", provider_customer_id="5",
            started_at="2026-11-01T00:00:00Z",
        )  # fmt: skip


# --- checkout -------------------------------------------------------------------------------------


def test_checkout_sends_store_variant_and_our_ids(lemon_shop):
    fixture, fake = lemon_shop
    with tenant_context(fixture.tenant):
        checkout = checkout_create(
            customer=Customer.objects.get(external_id="c1"), price_code="team-monthly", provider="lemonsqueezy",
            quantity=3, success_url="https://app.test/ok", cancel_url="https://app.test/no",
        )  # fmt: skip
        checkout.refresh_from_db()
    (call,) = fake.calls
    assert (call["method"], call["path"]) == ("POST", "/v1/checkouts")
    assert call["headers"]["Content-Type"] == "application/vnd.api+json"
    data = call["body"]["data"]
    assert data["type"] == "checkouts"
    assert data["relationships"] == {
        "store": {"data": {"type": "stores", "id": STORE}},
        "variant": {"data": {"type": "variants", "id": "1001"}},
    }
    attributes = data["attributes"]
    assert attributes["checkout_data"]["custom"] == {
        "monetize_customer": "c1", "monetize_price": "team-monthly", "monetize_checkout": str(checkout.pk),
    }  # fmt: skip
    assert attributes["checkout_data"]["variant_quantities"] == [{"variant_id": 1001, "quantity": 3}]
    assert attributes["product_options"] == {
        "redirect_url": "https://app.test/ok",
        "enabled_variants": [1001],
    }
    assert attributes["checkout_options"] == {"skip_trial": False}  # team-monthly has a 14-day trial
    assert attributes["test_mode"] is True
    expires = dt.datetime.fromisoformat(attributes["expires_at"])
    assert dt.timedelta(hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
    assert checkout.provider == "lemonsqueezy" and checkout.quantity == 3
    assert checkout.url.startswith("https://shop.lemonsqueezy.com/checkout/custom/")
    assert checkout.provider_checkout_id and checkout.provider_checkout_id in checkout.url


def test_checkout_through_the_api_returns_the_lemon_squeezy_url(lemon_shop):
    fixture, fake = lemon_shop
    response = start(fixture, price="team-monthly", provider="lemonsqueezy")
    assert response.status_code == 201, response.content
    assert response.json()["url"].startswith("https://shop.lemonsqueezy.com/checkout/custom/")
    assert (
        "variant_quantities" not in fake.calls[0]["body"]["data"]["attributes"]["checkout_data"]
    )  # quantity 1


def test_a_price_without_a_variant_is_refused_clearly(lemon_shop):
    fixture, fake = lemon_shop
    response = start(fixture, price="pro-yearly", provider="lemonsqueezy")
    assert response.status_code == 409
    error_body = response.json()["error"]
    assert error_body["code"] == "provider_product_missing"
    assert "pro-yearly" in error_body["message"] and "Provider product" in error_body["message"]
    assert error_body["details"] == {"price": "pro-yearly", "provider": "lemonsqueezy", "mode": "test"}
    assert fake.calls == []  # our own id is never sent as a variant
    with tenant_context(fixture.tenant):
        assert not Checkout.objects.exists()


def test_missing_credentials_are_not_configured(ci_catalog, monkeypatch):
    fake = use(monkeypatch, FakeLemonSqueezy())
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(
            provider="lemonsqueezy", credentials={"api_key": "ls_test_key"}, make_default=True
        )
        ProviderProduct.objects.create(
            provider="lemonsqueezy", mode="test", price=Price.objects.get(code="team-monthly"),
            external_product_id="900", external_price_id="1001",
        )  # fmt: skip
    make_customer(ci_catalog)
    response = start(ci_catalog, price="team-monthly", provider="lemonsqueezy")
    assert response.status_code == 409 and response.json()["error"]["code"] == "provider_not_configured"
    assert "store_id" in response.json()["error"]["message"]
    with pytest.raises(ProviderNotConfigured):
        LemonSqueezyProvider(webhook_secret="x").portal_url(customer="c1", provider_customer_id="5")
    assert fake.calls == []


@pytest.mark.parametrize(
    "fake, status, code",
    [
        (FakeLemonSqueezy(fail_with=503), 503, "provider_unavailable"),
        (FakeLemonSqueezy(fail_with=429), 503, "provider_unavailable"),
        (FakeLemonSqueezy(raises=httpx.ConnectError("connection refused")), 503, "provider_unavailable"),
        (FakeLemonSqueezy(raises=httpx.ReadTimeout("timed out")), 503, "provider_unavailable"),
        (FakeLemonSqueezy(fail_with=422), 502, "provider_error"),
    ],
)
def test_provider_failures_map_to_our_errors_and_leave_nothing(lemon_shop, monkeypatch, fake, status, code):
    fixture, _ = lemon_shop
    use(monkeypatch, fake)
    response = start(fixture, price="team-monthly", provider="lemonsqueezy")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    if status == 502:
        assert "Something went wrong." in response.json()["error"]["message"]  # the JSON:API detail
    assert len(fake.calls) == 1
    with tenant_context(fixture.tenant):
        assert not Checkout.objects.exists()  # nothing half-made


def test_a_refused_variant_carries_lemon_squeezys_detail(lemon_shop):
    fixture, fake = lemon_shop
    with tenant_context(fixture.tenant):
        ProviderProduct.objects.filter(external_price_id="1001").update(external_price_id="999")
    response = start(fixture, price="team-monthly", provider="lemonsqueezy")
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "Lemon Squeezy refused: The selected variant is invalid."
    assert response.json()["error"]["details"]["pointer"] == "/data/relationships/variant/data/id"


# --- subscription management --------------------------------------------------------------------


def test_cancel_at_period_end_and_refuse_cancel_now(lemon_shop):
    fixture, fake = lemon_shop
    membership = ls_membership(fixture)
    url = f"/api/v1/memberships/{membership.pk}/cancel"
    now = fixture.api().post(url, {"at_period_end": False}, content_type="application/json")
    assert now.status_code == 409 and now.json()["error"]["code"] == "cancel_now_not_supported"
    assert fake.calls == []
    later = fixture.api().post(url, {"at_period_end": True}, content_type="application/json")
    assert later.status_code == 202
    assert [(c["method"], c["path"], c["body"]) for c in fake.calls] == [
        ("DELETE", "/v1/subscriptions/8001", None)
    ]
    assert fake.subscriptions["8001"]["attributes"]["status"] == "cancelled"


def test_pause_and_resume(lemon_shop):
    fixture, fake = lemon_shop
    membership = ls_membership(fixture)
    assert fixture.api().post(f"/api/v1/memberships/{membership.pk}/pause").status_code == 202
    with tenant_context(fixture.tenant):
        Membership.objects.filter(pk=membership.pk).update(status="paused")  # as the webhook would
    assert fixture.api().post(f"/api/v1/memberships/{membership.pk}/resume").status_code == 202
    sent = [(c["method"], c["path"], c["body"]["data"]) for c in fake.calls]
    assert sent == [
        ("PATCH", "/v1/subscriptions/8001", {"type": "subscriptions", "id": "8001", "attributes": {"pause": {"mode": "void"}}}),
        ("PATCH", "/v1/subscriptions/8001", {"type": "subscriptions", "id": "8001", "attributes": {"pause": None}}),
    ]  # fmt: skip


def test_upgrade_is_invoiced_now_and_a_downgrade_is_credited(lemon_shop):
    fixture, fake = lemon_shop
    membership = ls_membership(fixture)
    url = f"/api/v1/memberships/{membership.pk}/change"
    up = fixture.api().post(url, {"tier": "pro"}, content_type="application/json")
    assert up.status_code == 202 and up.json() == {"applies": "now"}
    assert [(c["method"], c["path"]) for c in fake.calls] == [
        ("GET", "/v1/subscriptions/8001"),
        ("PATCH", "/v1/subscriptions/8001"),
    ]
    assert fake.calls[1]["body"]["data"]["attributes"] == {"variant_id": 1002, "invoice_immediately": True}
    fake.calls.clear()
    # back to team with 2 seats: 2 × 1900 < 4900, credited on the next invoice, not invoiced now
    down = fixture.api().post(url, {"price": "team-monthly", "quantity": 2}, content_type="application/json")
    assert down.status_code == 202 and down.json() == {"applies": "now"}
    assert [(c["method"], c["path"], (c["body"] or {}).get("data", {}).get("attributes")) for c in fake.calls] == [
        ("GET", "/v1/subscriptions/8001", None),
        ("PATCH", "/v1/subscriptions/8001", {"variant_id": 1001, "invoice_immediately": False}),
        ("PATCH", "/v1/subscription-items/77", {"quantity": 2, "invoice_immediately": False}),
    ]  # fmt: skip
    refused = fixture.api().post(url, {"price": "pro-yearly"}, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "provider_product_missing"


def test_portal_is_the_customers_signed_link(lemon_shop):
    fixture, fake = lemon_shop
    membership = ls_membership(fixture)
    response = fixture.api().get(f"/api/v1/memberships/{membership.pk}/portal")
    assert response.status_code == 200
    assert response.json() == {"url": "https://shop.lemonsqueezy.com/billing?expires=1&user=5&signature=s"}
    assert [(c["method"], c["path"]) for c in fake.calls] == [("GET", "/v1/customers/5")]


# --- webhooks in ----------------------------------------------------------------------------------


def deliver(fixture, payload: dict, secret: str | None = None):
    body = json.dumps(payload).encode()
    signature = hmac.new((secret or SECRET).encode(), body, hashlib.sha256).hexdigest()
    return fixture.client().post(
        "/webhooks/lemonsqueezy/", body, content_type="application/json",
        HTTP_X_SIGNATURE=signature, HTTP_X_EVENT_NAME=payload["meta"]["event_name"],
    )  # fmt: skip


def subscription_event(name: str, *, custom: dict, updated: str, **attributes) -> dict:
    obj = subscription_object(
        "8001", variant_id=attributes.pop("variant_id", 1001), updated_at=updated, **attributes
    )
    return {"meta": {"event_name": name, "custom_data": custom, "test_mode": True}, "data": obj}


def order_event(name: str, *, status: str, updated: str, total: int = 1900, **extra) -> dict:
    return {
        "meta": {"event_name": name, "custom_data": {"monetize_customer": "c1"}, "test_mode": True},
        "data": {"type": "orders", "id": "31", "attributes": {
            "store_id": int(STORE), "customer_id": 5, "identifier": "104e18a2-d755-4d4b-80c4-a6c1dcbe1c10",
            "order_number": 1, "user_name": "C One", "user_email": "c1@example.com", "currency": "USD",
            "currency_rate": "1.0000", "subtotal": total, "discount_total": 0, "tax": 0, "total": total, "status": status,
            "status_formatted": status.title(), "refunded": status == "refunded", "refunded_at": None,
            "first_order_item": {"id": 32, "order_id": 31, "product_id": 900, "variant_id": 1001, "quantity": 1,
                                 "product_name": "CI", "variant_name": "Team monthly", "price": total},
            "created_at": "2026-11-01T12:00:00.000000Z", "updated_at": updated, "test_mode": True, **extra}},
    }  # fmt: skip


def invoice_event(
    name: str, *, billing_reason: str, updated: str, invoice_id: str = "61", custom=None
) -> dict:
    return {
        "meta": {"event_name": name, "custom_data": custom or {}, "test_mode": True},
        "data": {"type": "subscription-invoices", "id": invoice_id, "attributes": {
            "store_id": int(STORE), "subscription_id": 8001, "customer_id": 5, "user_name": "C One",
            "user_email": "c1@example.com", "billing_reason": billing_reason, "card_brand": "visa",
            "card_last_four": "4242", "currency": "USD", "currency_rate": "1.00000000", "status": "paid",
            "status_formatted": "Paid", "refunded": False, "refunded_at": None, "subtotal": 1900, "discount_total": 0,
            "tax": 0, "total": 1900, "refunded_amount": 0, "urls": {"invoice_url": None},
            "created_at": updated, "updated_at": updated, "test_mode": True}},
    }  # fmt: skip


def test_subscription_created_makes_the_membership_and_completes_the_checkout(lemon_shop):
    fixture, _ = lemon_shop
    with tenant_context(fixture.tenant):
        checkout = checkout_create(
            customer=Customer.objects.get(external_id="c1"), price_code="team-monthly", provider="lemonsqueezy",
            success_url="https://app.test/ok", cancel_url="https://app.test/no",
        )  # fmt: skip
    custom = {
        "monetize_customer": "c1",
        "monetize_price": "team-monthly",
        "monetize_checkout": str(checkout.pk),
    }
    created = subscription_event("subscription_created", custom=custom, updated="2026-11-01T12:00:00.000000Z")
    assert deliver(fixture, created).json() == {"received": True, "duplicate": False}
    assert deliver(fixture, created).json()["duplicate"] is True
    process_all(fixture)
    assert check(fixture, feature="private_projects").json()["tier"] == "team"
    with tenant_context(fixture.tenant):
        membership = Membership.objects.get(provider="lemonsqueezy")
        assert (membership.status, membership.provider_subscription_id, membership.provider_customer_id) == (
            "active", "8001", "5",
        )  # fmt: skip
        assert membership.current_period_end == dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
        assert membership.current_period_start == dt.datetime(
            2026, 11, 1, 12, tzinfo=dt.UTC
        )  # renews_at − 1 month
        checkout.refresh_from_db()
        assert checkout.status == "completed"

    # a plan change at Lemon Squeezy: the variant is the truth, the checkout's custom data is stale
    upgraded = subscription_event(
        "subscription_updated", custom=custom, updated="2026-11-02T12:00:00.000000Z", variant_id=1002
    )
    deliver(fixture, upgraded)
    # cancelled = a grace period: still entitled until ends_at
    cancelled = subscription_event(
        "subscription_cancelled", custom=custom, updated="2026-11-03T12:00:00.000000Z", variant_id=1002,
        status="cancelled", cancelled=True, ends_at="2026-12-01T12:00:00.000000Z",
    )  # fmt: skip
    deliver(fixture, cancelled)
    process_all(fixture)
    with tenant_context(fixture.tenant):
        membership.refresh_from_db()
        assert (membership.tier.code, membership.status, membership.cancel_at_period_end) == (
            "pro",
            "active",
            True,
        )
        assert membership.ended_at is None
    expired = subscription_event(
        "subscription_expired", custom=custom, updated="2026-12-01T12:00:01.000000Z", variant_id=1002,
        status="expired", cancelled=True, ends_at="2026-12-01T12:00:00.000000Z",
    )  # fmt: skip
    deliver(fixture, expired)
    process_all(fixture)
    with tenant_context(fixture.tenant):
        membership.refresh_from_db()
        assert membership.status == "expired" and membership.ended_at is not None
    assert check(fixture, feature="private_projects").json()["tier"] == "community"


def test_only_paid_orders_are_recorded_once(lemon_shop):
    fixture, _ = lemon_shop
    deliver(fixture, order_event("order_created", status="pending", updated="2026-11-01T12:00:00.000000Z"))
    process_all(fixture)
    with tenant_context(fixture.tenant):
        assert not Payment.objects.exists()  # a pending order is no payment, only an open invoice
        assert InboxEvent.objects.get().status == "applied"
        assert list(Invoice.objects.values_list("provider_invoice_id", "status")) == [("order:31", "open")]
    paid = order_event("order_created", status="paid", updated="2026-11-01T12:00:05.000000Z")
    assert [deliver(fixture, paid).json()["duplicate"] for _ in range(3)] == [False, True, True]
    process_all(fixture)
    process_all(fixture)  # applying again records nothing twice
    with tenant_context(fixture.tenant):
        assert list(Payment.objects.values_list("kind", "amount", "currency", "provider_payment_id")) == [
            ("charge", 1900, "usd", "order:31")
        ]
    refunded = order_event(
        "order_refunded", status="refunded", updated="2026-11-05T12:00:00.000000Z", refunded_amount=1900
    )
    deliver(fixture, refunded)
    process_all(fixture)
    with tenant_context(fixture.tenant):
        assert Payment.objects.filter(kind="refund", amount=1900, currency="usd").count() == 1


def test_subscription_payments_are_recorded_against_the_membership(lemon_shop):
    fixture, _ = lemon_shop
    membership = ls_membership(fixture)
    # the first invoice is the order's payment (order_created records it): not counted twice
    deliver(fixture, invoice_event("subscription_payment_success", billing_reason="initial", invoice_id="60",
                                   updated="2026-11-01T12:00:00.000000Z", custom={"monetize_customer": "c1"}))  # fmt: skip
    renewal = invoice_event(
        "subscription_payment_success", billing_reason="renewal", updated="2026-12-01T12:00:00.000000Z"
    )
    for _ in range(3):
        deliver(fixture, renewal)  # no custom data: the customer comes from the membership
    deliver(fixture, invoice_event("subscription_payment_failed", billing_reason="renewal", invoice_id="62",
                                   updated="2027-01-01T12:00:00.000000Z"))  # fmt: skip
    process_all(fixture)
    with tenant_context(fixture.tenant):
        rows = list(
            Payment.objects.order_by("occurred_at").values_list("kind", "amount", "currency", "membership")
        )
        assert rows == [("charge", 1900, "usd", membership.pk), ("failed", 1900, "usd", membership.pk)]


def test_a_bad_signature_stores_nothing(lemon_shop):
    fixture, _ = lemon_shop
    event = order_event("order_created", status="paid", updated="2026-11-01T12:00:05.000000Z")
    assert deliver(fixture, event, secret="not-the-secret").status_code == 400
    with tenant_context(fixture.tenant):
        assert not InboxEvent.objects.exists()


def test_a_seat_change_is_not_taken_for_a_redelivery(lemon_shop):
    """Item 5: a seat change moves `first_subscription_item.quantity` but not `updated_at`."""
    fixture, _ = lemon_shop
    custom = {"monetize_customer": "c1", "monetize_price": "team-monthly"}
    same = "2026-11-02T12:00:00.000000Z"
    one = subscription_event("subscription_updated", custom=custom, updated=same)
    three = subscription_event("subscription_updated", custom=custom, updated=same)
    three["data"]["attributes"]["first_subscription_item"]["quantity"] = 3
    assert [deliver(fixture, e).json()["duplicate"] for e in (one, three, one, three)] == [
        False,
        False,
        True,
        True,
    ]
    process_all(fixture)
    with tenant_context(fixture.tenant):
        assert Membership.objects.get(provider="lemonsqueezy").quantity == 3
        # the inbox shows Lemon Squeezy's own event name
        assert set(InboxEvent.objects.values_list("event_type", flat=True)) == {"subscription_updated"}


def test_a_recovered_payment_is_recorded_and_ends_past_due(lemon_shop):
    """Item 5: subscription_payment_recovered records the payment and ends past_due."""
    fixture, _ = lemon_shop
    membership = ls_membership(fixture, status="past_due")
    recovered = invoice_event(
        "subscription_payment_recovered", billing_reason="renewal", updated="2026-12-03T12:00:00.000000Z"
    )
    deliver(fixture, recovered)
    deliver(fixture, recovered)
    process_all(fixture)
    with tenant_context(fixture.tenant):
        assert list(Payment.objects.values_list("kind", "amount", "membership")) == [
            ("charge", 1900, membership.pk)
        ]
        membership.refresh_from_db()
        assert (membership.status, membership.past_due_since) == ("active", None)


def test_an_unmapped_variant_is_unmatched_at_once(lemon_shop):
    """Item 7: a variant no price maps to (and no custom data naming one) is parked, not retried."""
    fixture, _ = lemon_shop
    deliver(fixture, subscription_event("subscription_created", custom={"monetize_customer": "c1"},
                                        updated="2026-11-01T12:00:00.000000Z", variant_id=4242))  # fmt: skip
    process_all(fixture)
    with tenant_context(fixture.tenant):
        row = InboxEvent.objects.get()
        assert (row.status, row.attempts, row.next_attempt_at) == ("unmatched", 1, None)
        assert "No price" in row.last_error
