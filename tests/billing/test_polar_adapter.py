"""The Polar adapter's API calls through the real polar-sdk, with only the network edge faked: an
httpx.MockTransport that answers like Polar's API (bodies complete enough for the SDK's models to
load) and records what it was sent; then Polar's webhooks, signed with Standard Webhooks' own code."""

import base64
import datetime as dt
import json
import secrets
import time
import uuid

import httpx
import pytest
from django_tenants.utils import tenant_context
from standardwebhooks.webhooks import Webhook

from billing.inbox.models import InboxEvent
from billing.memberships.models import Checkout, Customer, Membership, Payment
from billing.memberships.services import checkout_create
from billing.providers.base import ProviderError, ProviderUnavailable
from billing.providers.models import ProviderProduct
from billing.providers.polar import PolarProvider
from billing.providers.services import provider_account_upsert
from billing.tiers.models import Price
from tests.billing.test_entitlements import make_customer
from tests.billing.test_webhooks_in import process_all

ORG = "7d2a3c4e-0b1f-4c2d-9e8f-1a2b3c4d5e6f"
NOW = "2026-11-01T12:00:00Z"
TOKEN = "polar_oat_test_123"


def _id() -> str:
    return str(uuid.uuid4())


# --- Polar's objects, as its API returns them (the fields polar-sdk's models require) ---------


def polar_price(product_id: str, amount: int, currency: str) -> dict:
    return {"id": _id(), "created_at": NOW, "modified_at": None, "source": "catalog", "amount_type": "fixed",
            "price_currency": currency, "tax_behavior": None, "is_archived": False, "product_id": product_id,
            "price_amount": amount}  # fmt: skip


def polar_product(body: dict, product_id: str | None = None) -> dict:
    product_id = product_id or _id()
    fixed = body["prices"][0]
    return {"id": product_id, "created_at": NOW, "modified_at": None, "trial_interval": None, "trial_interval_count": None,
            "name": body["name"], "description": body.get("description"), "visibility": "public",
            "recurring_interval": body.get("recurring_interval"), "recurring_interval_count": 1 if body.get("recurring_interval") else None,
            "meter_interval": None, "meter_interval_count": None, "is_recurring": bool(body.get("recurring_interval")),
            "is_archived": False, "organization_id": ORG, "metadata": body.get("metadata", {}), "is_deletable": True,
            "prices": [polar_price(product_id, fixed["price_amount"], fixed.get("price_currency", "usd"))],
            "benefits": [], "medias": [], "attached_custom_fields": []}  # fmt: skip


def polar_checkout(body: dict, product: dict) -> dict:
    checkout_id = _id()
    price = product["prices"][0]
    return {"id": checkout_id, "created_at": NOW, "modified_at": None, "payment_processor": "stripe", "status": "open",
            "client_secret": "polar_c_" + secrets.token_hex(8), "url": f"https://sandbox.polar.sh/checkout/polar_c_{checkout_id[:8]}",
            "expires_at": "2026-11-01T13:00:00Z", "success_url": body.get("success_url") or "", "return_url": body.get("return_url"),
            "embed_origin": None, "amount": price["price_amount"], "units": None, "min_units": None, "max_units": None,
            "discount_amount": 0, "net_amount": price["price_amount"], "tax_amount": None, "tax_behavior": None,
            "total_amount": price["price_amount"], "currency": price["price_currency"], "allow_trial": True,
            "active_trial_interval": body.get("trial_interval"), "active_trial_interval_count": body.get("trial_interval_count"),
            "trial_end": None, "organization_id": ORG, "product_id": product["id"], "product_price_id": price["id"],
            "discount_id": None, "allow_discount_codes": True, "require_billing_address": False, "is_discount_applicable": True,
            "is_free_product_price": False, "is_payment_required": True, "is_payment_setup_required": True,
            "is_payment_form_required": True, "customer_id": None, "is_business_customer": False, "customer_name": None,
            "customer_email": body.get("customer_email"), "customer_ip_address": None, "customer_billing_name": None,
            "customer_billing_address": None, "customer_tax_id": None, "payment_method_type": None,
            "payment_processor_metadata": {},
            "billing_address_fields": {"country": "required", "state": "disabled", "city": "disabled", "postal_code": "disabled",
                                       "line1": "disabled", "line2": "disabled"},
            "trial_interval": body.get("trial_interval"), "trial_interval_count": body.get("trial_interval_count"),
            "metadata": body.get("metadata", {}), "external_customer_id": body.get("external_customer_id"),
            "products": [{k: v for k, v in product.items() if k not in ("metadata", "is_deletable", "attached_custom_fields")}],
            "product": {k: v for k, v in product.items() if k not in ("metadata", "is_deletable", "attached_custom_fields")},
            "product_price": price, "prices": {product["id"]: product["prices"]}, "discount": None, "subscription_id": None,
            "attached_custom_fields": [], "customer_metadata": {}}  # fmt: skip


def polar_customer(*, customer_id: str = "pc_1", external_id: str | None = "c1") -> dict:
    return {"id": customer_id, "created_at": NOW, "modified_at": None, "metadata": {}, "external_id": external_id,
            "email": "c1@example.test", "email_verified": True, "type": "individual", "name": None, "billing_name": None,
            "billing_address": None, "tax_id": None, "organization_id": ORG, "deleted_at": None, "first_user_event_at": None,
            "avatar_url": None}  # fmt: skip


def polar_subscription(
    product: dict, *, sub_id="sub_polar_1", status="active", metadata=None, modified=NOW, **extra
) -> dict:
    price = product["prices"][0]
    return {"created_at": "2026-11-01T00:00:00Z", "modified_at": modified, "id": sub_id, "amount": price["price_amount"],
            "currency": price["price_currency"], "recurring_interval": product["recurring_interval"] or "month",
            "recurring_interval_count": 1, "status": status, "current_period_start": "2026-11-01T00:00:00Z",
            "current_period_end": "2026-12-01T00:00:00Z", "current_meter_period_start": None, "current_meter_period_end": None,
            "trial_start": None, "trial_end": None, "cancel_at_period_end": False, "canceled_at": None,
            "started_at": "2026-11-01T00:00:00Z", "ends_at": None, "ended_at": None, "pause_at_period_end": False,
            "paused_at": None, "resumes_at": None, "customer_id": "pc_1", "product_id": product["id"], "discount_id": None,
            "checkout_id": _id(), "seats": None, "units": None, "customer_cancellation_reason": None,
            "customer_cancellation_comment": None, "metadata": metadata if metadata is not None else {},
            "customer": polar_customer(), "product": product, "discount": None, "prices": product["prices"], "meters": [],
            "pending_update": None, **extra}  # fmt: skip


def polar_customer_session(body: dict) -> dict:
    customer = polar_customer(
        customer_id=body.get("customer_id") or "pc_1", external_id=body.get("external_customer_id")
    )
    return {"created_at": NOW, "modified_at": None, "id": _id(), "token": "polar_cst_" + secrets.token_hex(8),
            "expires_at": "2026-11-01T13:00:00Z", "return_url": None,
            "customer_portal_url": "https://sandbox.polar.sh/acme/portal?customer_session_token=polar_cst_x",
            "customer_id": customer["id"], "customer": customer}  # fmt: skip


class FakePolar:
    """Polar's API as far as the adapter uses it: products (list by metadata, create, archive),
    checkouts, subscription update/revoke, customer sessions. Records every request."""

    def __init__(self):
        self.calls: list[dict] = []
        self.products: dict[str, dict] = {}
        self.subscription_product: dict | None = None
        self.fail: dict[str, object] = {}  # "METHOD /path-prefix" -> status code or exception
        self.on_product_create = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.calls.append({"method": request.method, "path": path, "params": dict(request.url.params), "json": body,
                           "host": request.url.host, "headers": dict(request.headers)})  # fmt: skip
        for route, failure in self.fail.items():
            method, prefix = route.split(" ", 1)
            if request.method == method and path.startswith(prefix):
                if isinstance(failure, Exception):
                    raise failure
                if failure == 422:
                    detail = [
                        {"loc": ["body", "products"], "msg": "Product is archived.", "type": "value_error"}
                    ]
                    return httpx.Response(422, json={"detail": detail})
                return httpx.Response(failure, json={"error": "Error", "detail": "nope"})
        if request.method == "GET" and path == "/v1/products/":
            wanted = {
                k[len("metadata[") : -1]: v
                for k, v in request.url.params.items()
                if k.startswith("metadata[")
            }
            items = [p for p in self.products.values() if not p["is_archived"]
                     and all(str(p["metadata"].get(k)) == v for k, v in wanted.items())]  # fmt: skip
            return httpx.Response(
                200, json={"items": items[:1], "pagination": {"total_count": len(items), "max_page": 1}}
            )
        if request.method == "POST" and path == "/v1/products/":
            product = polar_product(body)
            self.products[product["id"]] = product
            if self.on_product_create:
                self.on_product_create(product)
            return httpx.Response(201, json=product)
        if request.method == "PATCH" and path.startswith("/v1/products/"):
            product = self.products[path.rsplit("/", 1)[1]]
            product.update({k: v for k, v in body.items() if k == "is_archived"})
            return httpx.Response(200, json=product)
        if request.method == "POST" and path == "/v1/checkouts/":
            return httpx.Response(201, json=polar_checkout(body, self.products[body["products"][0]]))
        if path.startswith("/v1/subscriptions/") and request.method in ("PATCH", "DELETE"):
            product = self.products.get((body or {}).get("product_id")) or self.subscription_product
            changes = {"cancel_at_period_end": True} if (body or {}).get("cancel_at_period_end") else {}
            if request.method == "DELETE":
                changes = {"status": "canceled", "ended_at": NOW, "canceled_at": NOW}
            return httpx.Response(
                200, json=polar_subscription(product, sub_id=path.rsplit("/", 1)[1], **changes)
            )
        if request.method == "POST" and path == "/v1/customer-sessions/":
            return httpx.Response(201, json=polar_customer_session(body))
        return httpx.Response(404, json={"error": "ResourceNotFound", "detail": f"no route {path}"})

    def routes(self, start: int = 0) -> list[tuple[str, str]]:
        return [(c["method"], c["path"]) for c in self.calls[start:]]


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@pytest.fixture
def polar_shop(ci_catalog, monkeypatch):
    fake = FakePolar()
    monkeypatch.setattr(PolarProvider, "http_transport", httpx.MockTransport(fake))
    secret = whsec()
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(
            provider="polar", credentials={"access_token": TOKEN}, webhook_secret=secret, make_default=True
        )
    make_customer(ci_catalog)
    return ci_catalog, fake, secret


def start(fixture, **body):
    payload = {
        "customer": "c1",
        "success_url": "https://app.test/ok",
        "cancel_url": "https://app.test/no",
        **body,
    }
    return fixture.api().post("/api/v1/checkouts", payload, content_type="application/json")


def service_checkout(fixture, price_code="team-monthly") -> Checkout:
    with tenant_context(fixture.tenant):
        return checkout_create(
            customer=Customer.objects.get(external_id="c1"),
            success_url="https://app.test/ok",
            cancel_url="https://app.test/no",
            price_code=price_code,
            provider="polar",
        )


# --- checkout ----------------------------------------------------------------------------------


def test_checkout_creates_the_product_at_polar_first_then_a_checkout_for_it(polar_shop):
    fixture, fake, _ = polar_shop
    # when
    checkout = service_checkout(fixture)
    # then: the product is looked up (by our metadata), created, then offered in a checkout
    assert fake.routes() == [("GET", "/v1/products/"), ("POST", "/v1/products/"), ("POST", "/v1/checkouts/")]
    assert all(c["host"] == "sandbox-api.polar.sh" for c in fake.calls)  # test mode: Polar's sandbox
    assert fake.calls[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert fake.calls[0]["params"]["metadata[monetize_price]"] == "team-monthly"
    product_body = fake.calls[1]["json"]
    assert product_body["name"] == "Team (monthly)" and product_body["recurring_interval"] == "month"
    assert product_body["prices"] == [{"amount_type": "fixed", "price_amount": 1900, "price_currency": "usd"}]
    assert product_body["metadata"]["monetize_price"] == "team-monthly"
    product_id = next(iter(fake.products))
    checkout_body = fake.calls[2]["json"]
    assert checkout_body["products"] == [product_id]  # Polar's product id, never ours
    assert checkout_body["metadata"] == {
        "monetize_customer": "c1", "monetize_price": "team-monthly", "monetize_checkout": str(checkout.pk),
    }  # fmt: skip
    assert checkout_body["external_customer_id"] == "c1"
    assert checkout_body["success_url"] == "https://app.test/ok"
    assert (checkout_body["trial_interval"], checkout_body["trial_interval_count"]) == ("day", 14)
    with tenant_context(fixture.tenant):
        row = Checkout.objects.get(pk=checkout.pk)
        assert row.url.startswith("https://sandbox.polar.sh/checkout/polar_c_") and row.provider == "polar"
        assert row.provider_checkout_id and row.provider_checkout_id != str(row.pk)
        product = ProviderProduct.objects.get()
        assert (product.provider, product.mode, product.price.code) == ("polar", "test", "team-monthly")
        assert product.external_product_id == product_id
        assert product.external_price_id == fake.products[product_id]["prices"][0]["id"]
    # a second checkout for the same price creates no second product
    service_checkout(fixture)
    assert fake.routes(3) == [("POST", "/v1/checkouts/")]
    assert fake.calls[-1]["json"]["products"] == [product_id]
    assert sum(1 for c in fake.calls if c["method"] == "POST" and c["path"] == "/v1/products/") == 1
    with tenant_context(fixture.tenant):
        assert ProviderProduct.objects.count() == 1 and Checkout.objects.count() == 2


def test_a_product_left_by_a_rolled_back_checkout_is_found_at_polar_not_created_again(polar_shop):
    fixture, fake, _ = polar_shop
    fake.fail["POST /v1/checkouts/"] = 503
    # given: Polar created the product, then failed the checkout; our transaction rolled back whole
    with pytest.raises(ProviderUnavailable):
        service_checkout(fixture)
    with tenant_context(fixture.tenant):
        assert not ProviderProduct.objects.exists() and not Checkout.objects.exists()
    # when
    del fake.fail["POST /v1/checkouts/"]
    service_checkout(fixture)
    # then: found by its metadata, stored, offered; still one product at Polar
    assert fake.routes(3) == [("GET", "/v1/products/"), ("POST", "/v1/checkouts/")]
    assert len(fake.products) == 1
    with tenant_context(fixture.tenant):
        assert ProviderProduct.objects.get().external_product_id == next(iter(fake.products))


def test_a_product_stored_concurrently_wins_and_ours_is_archived(polar_shop):
    fixture, fake, _ = polar_shop

    def concurrent_request_stores_first(_product):
        other = polar_product(
            {"name": "Team (monthly)", "prices": [{"price_amount": 1900}], "recurring_interval": "month"}
        )
        fake.products[other["id"]] = other
        ProviderProduct.objects.create(
            provider="polar", mode="test", price=Price.objects.get(code="team-monthly"),
            external_product_id=other["id"], external_price_id=other["prices"][0]["id"],
        )  # fmt: skip

    fake.on_product_create = concurrent_request_stores_first
    checkout = service_checkout(fixture)
    with tenant_context(fixture.tenant):
        row = ProviderProduct.objects.get()  # one row: the unique constraint decided
        assert Checkout.objects.get(pk=checkout.pk).url
    ours = fake.calls[1]
    assert ours["path"] == "/v1/products/"
    archived = [c for c in fake.calls if c["method"] == "PATCH"]
    assert len(archived) == 1 and archived[0]["json"] == {"is_archived": True}
    assert archived[0]["path"] != f"/v1/products/{row.external_product_id}"  # ours, not the winner
    assert fake.calls[-1]["json"]["products"] == [row.external_product_id]


def test_quantity_above_one_is_refused_before_calling_polar(polar_shop):
    fixture, fake, _ = polar_shop
    response = start(fixture, price="team-monthly", quantity=3)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "quantity_not_supported" and "quantity of 1" in error["message"]
    assert fake.calls == []
    with tenant_context(fixture.tenant):
        assert not Checkout.objects.exists()


def test_a_tiered_price_is_refused(polar_shop):
    fixture, fake, _ = polar_shop
    response = start(fixture, price="enterprise-minutes")
    assert (
        response.status_code == 422 and response.json()["error"]["code"] == "price_not_supported_by_provider"
    )
    assert fake.calls == []


@pytest.mark.parametrize(
    "failure, status, code",
    [
        (503, 503, "provider_unavailable"),
        (500, 503, "provider_unavailable"),
        (429, 503, "provider_unavailable"),
        (httpx.ReadTimeout("timed out"), 503, "provider_unavailable"),
        (httpx.ConnectError("refused"), 503, "provider_unavailable"),
        (422, 502, "provider_error"),
        (401, 502, "provider_error"),
    ],
)
def test_polar_errors_map_to_ours_and_leave_nothing_half_made(polar_shop, failure, status, code):
    fixture, fake, _ = polar_shop
    fake.fail["POST /v1/checkouts/"] = failure
    response = start(fixture, price="team-monthly")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    if failure == 422:
        assert "body.products: Product is archived." in response.json()["error"]["message"]
    with tenant_context(fixture.tenant):
        assert not Checkout.objects.exists() and not ProviderProduct.objects.exists()


def test_provider_error_classes_from_the_adapter(polar_shop):
    fixture, fake, _ = polar_shop
    fake.fail["POST /v1/products/"] = 422
    with pytest.raises(ProviderError) as refused:
        service_checkout(fixture)
    assert not isinstance(refused.value, ProviderUnavailable)
    assert refused.value.details == {"polar_status": 422}


def test_without_an_access_token_polar_is_not_configured(ci_catalog, monkeypatch):
    fake = FakePolar()
    monkeypatch.setattr(PolarProvider, "http_transport", httpx.MockTransport(fake))
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="polar", webhook_secret=whsec(), make_default=True)
    make_customer(ci_catalog)
    response = start(ci_catalog, price="team-monthly")
    assert response.status_code == 409 and response.json()["error"]["code"] == "provider_not_configured"
    assert fake.calls == []


# --- subscriptions and portal ------------------------------------------------------------------


def polar_membership(fixture, *, provider_customer_id="pc_9") -> Membership:
    with tenant_context(fixture.tenant):
        price = Price.objects.get(code="team-monthly")
        return Membership.objects.create(
            customer=Customer.objects.get(external_id="c1"), tier=price.tier, price=price, status="active", provider="polar",
            provider_subscription_id="sub_9", provider_customer_id=provider_customer_id, started_at="2026-11-01T00:00:00Z",
        )  # fmt: skip


def post(fixture, path, body=None):
    return fixture.api().post(path, body or {}, content_type="application/json")


def test_cancel_at_period_end_and_now_go_to_polar(polar_shop):
    fixture, fake, _ = polar_shop
    fake.subscription_product = polar_product(
        {"name": "Team", "prices": [{"price_amount": 1900}], "recurring_interval": "month"}
    )
    membership = polar_membership(fixture)
    response = post(fixture, f"/api/v1/memberships/{membership.pk}/cancel", {"at_period_end": True})
    assert response.status_code == 202
    assert fake.calls[-1]["method"] == "PATCH" and fake.calls[-1]["path"] == "/v1/subscriptions/sub_9"
    assert fake.calls[-1]["json"] == {"cancel_at_period_end": True}
    response = post(fixture, f"/api/v1/memberships/{membership.pk}/cancel", {"at_period_end": False})
    assert response.status_code == 202
    assert fake.routes(1) == [("DELETE", "/v1/subscriptions/sub_9")]  # revoke: canceled now
    with tenant_context(fixture.tenant):  # the webhook, not the call, changes our membership
        assert Membership.objects.get(pk=membership.pk).status == "active"


def test_change_moves_the_subscription_to_the_target_price_product(polar_shop):
    fixture, fake, _ = polar_shop
    membership = polar_membership(fixture)
    response = post(fixture, f"/api/v1/memberships/{membership.pk}/change", {"price": "pro-monthly"})
    assert response.status_code == 202 and response.json() == {"applies": "now"}
    assert fake.routes() == [
        ("GET", "/v1/products/"),
        ("POST", "/v1/products/"),
        ("PATCH", "/v1/subscriptions/sub_9"),
    ]
    assert fake.calls[1]["json"]["metadata"]["monetize_price"] == "pro-monthly"
    with tenant_context(fixture.tenant):
        product = ProviderProduct.objects.get(price__code="pro-monthly")
    assert fake.calls[2]["json"] == {
        "product_id": product.external_product_id,
        "proration_behavior": "prorate",
    }
    # a second change to the same price reuses the product
    post(fixture, f"/api/v1/memberships/{membership.pk}/change", {"price": "pro-monthly"})
    assert fake.routes(3) == [("PATCH", "/v1/subscriptions/sub_9")]
    # seats: refused clearly, nothing sent
    seats = post(fixture, f"/api/v1/memberships/{membership.pk}/change", {"quantity": 5})
    assert seats.status_code == 422 and seats.json()["error"]["code"] == "quantity_not_supported"
    assert len(fake.calls) == 4


def test_portal_is_a_polar_customer_session(polar_shop):
    fixture, fake, _ = polar_shop
    membership = polar_membership(fixture)
    response = fixture.api().get(f"/api/v1/memberships/{membership.pk}/portal")
    assert response.status_code == 200
    assert response.json() == {
        "url": "https://sandbox.polar.sh/acme/portal?customer_session_token=polar_cst_x"
    }
    assert fake.routes() == [("POST", "/v1/customer-sessions/")]
    assert fake.calls[-1]["json"] == {"customer_id": "pc_9"}
    # before Polar told us its customer id: by our external id
    with tenant_context(fixture.tenant):
        Membership.objects.filter(pk=membership.pk).update(provider_customer_id="")
    assert fixture.api().get(f"/api/v1/memberships/{membership.pk}/portal").status_code == 200
    assert fake.calls[-1]["json"] == {"external_customer_id": "c1"}


def test_pause_is_not_supported_by_polar(polar_shop):
    fixture, fake, _ = polar_shop
    membership = polar_membership(fixture)
    response = post(fixture, f"/api/v1/memberships/{membership.pk}/pause")
    assert response.status_code == 409 and response.json()["error"]["code"] == "provider_not_supported"
    assert fake.calls == []
    with tenant_context(fixture.tenant):
        assert Membership.objects.get(pk=membership.pk).status == "active"


def test_portal_unavailable_when_polar_is_down(polar_shop):
    fixture, fake, _ = polar_shop
    fake.fail["POST /v1/customer-sessions/"] = httpx.ReadTimeout("timed out")
    membership = polar_membership(fixture)
    response = fixture.api().get(f"/api/v1/memberships/{membership.pk}/portal")
    assert response.status_code == 503 and response.json()["error"]["code"] == "provider_unavailable"


# --- webhooks ----------------------------------------------------------------------------------


def deliver(fixture, secret: str, kind: str, data: dict):
    body = json.dumps({"type": kind, "timestamp": data.get("modified_at") or NOW, "data": data})
    msg_id = "msg_" + secrets.token_hex(8)
    signature = Webhook(secret).sign(msg_id, dt.datetime.now(dt.UTC), body)  # Standard Webhooks' signer
    meta = {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(int(time.time())),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }
    return fixture.client().post("/webhooks/polar/", body.encode(), content_type="application/json", **meta)


def test_subscription_for_our_product_puts_the_customer_on_its_tier(polar_shop):
    fixture, fake, secret = polar_shop
    checkout = service_checkout(fixture, "pro-monthly")
    product = next(iter(fake.products.values()))
    # Polar copies the checkout's metadata; without monetize_price the product id maps it back
    metadata = {"monetize_customer": "c1", "monetize_checkout": str(checkout.pk)}
    created = polar_subscription(product, metadata=metadata, modified="2026-11-01T12:00:00Z")
    assert deliver(fixture, secret, "subscription.created", created).status_code == 200
    assert deliver(fixture, secret, "subscription.created", created).json()["duplicate"] is True
    active = polar_subscription(product, metadata=metadata, modified="2026-11-01T12:00:05Z")
    assert deliver(fixture, secret, "subscription.active", active).status_code == 200
    process_all(fixture)
    with tenant_context(fixture.tenant):
        membership = Membership.objects.get(provider="polar")
        assert (membership.tier.code, membership.price.code, membership.status) == (
            "pro",
            "pro-monthly",
            "active",
        )
        assert (membership.quantity, membership.provider_subscription_id) == (1, "sub_polar_1")
        assert membership.provider_customer_id == "pc_1" and membership.customer.external_id == "c1"
        assert Checkout.objects.get(pk=checkout.pk).status == "completed"
    # the first order of the subscription is paid
    order = {"id": _id(), "created_at": NOW, "modified_at": "2026-11-01T12:00:06Z", "status": "paid", "paid": True,
             "total_amount": 4900, "currency": "usd", "subscription_id": "sub_polar_1", "metadata": metadata,
             "customer": polar_customer(), "customer_id": "pc_1", "product_id": product["id"]}  # fmt: skip
    assert deliver(fixture, secret, "order.paid", order).status_code == 200
    # then the subscription is revoked: ended now
    revoked = polar_subscription(product, metadata=metadata, modified="2026-11-02T09:00:00Z", status="canceled",
                                 ended_at="2026-11-02T09:00:00Z")  # fmt: skip
    assert deliver(fixture, secret, "subscription.revoked", revoked).status_code == 200
    process_all(fixture)
    with tenant_context(fixture.tenant):
        payment = Payment.objects.get()
        assert (payment.amount, payment.currency, payment.membership_id) == (4900, "usd", membership.pk)
        membership.refresh_from_db()
        assert membership.status == "canceled" and membership.ended_at is not None


def test_subscription_maps_by_its_current_product_after_a_change(polar_shop):
    fixture, fake, secret = polar_shop
    service_checkout(fixture, "team-monthly")
    team = next(iter(fake.products.values()))
    membership = polar_membership(fixture)
    post(fixture, f"/api/v1/memberships/{membership.pk}/change", {"price": "pro-yearly"})
    pro = next(p for p in fake.products.values() if p["id"] != team["id"])
    # the checkout's metadata still names the old price; the product says where it is now
    updated = polar_subscription(
        pro, sub_id="sub_9", metadata={"monetize_customer": "c1", "monetize_price": "team-monthly"}
    )
    assert deliver(fixture, secret, "subscription.updated", updated).status_code == 200
    process_all(fixture)
    with tenant_context(fixture.tenant):
        membership.refresh_from_db()
        assert (membership.tier.code, membership.price.code) == ("pro", "pro-yearly")


def test_customer_comes_from_polar_external_id_without_metadata(polar_shop):
    fixture, fake, secret = polar_shop
    service_checkout(fixture, "team-monthly")
    product = next(iter(fake.products.values()))
    assert (
        deliver(fixture, secret, "subscription.created", polar_subscription(product, metadata={})).status_code
        == 200
    )
    process_all(fixture)
    with tenant_context(fixture.tenant):
        membership = Membership.objects.get(provider="polar")
        assert (membership.customer.external_id, membership.tier.code) == ("c1", "team")


def test_refunds_are_recorded_one_row_each_against_their_order(polar_shop):
    """Item 3: Polar's refund.created / refund.updated (each twice, out of order), two partial
    refunds of one order: one row per refund, on the order's customer and membership."""
    fixture, fake, secret = polar_shop
    service_checkout(fixture, "team-monthly")
    product = next(iter(fake.products.values()))
    membership = polar_membership(fixture, provider_customer_id="pc_1")
    order_id = _id()
    order = {"id": order_id, "created_at": NOW, "modified_at": "2026-11-01T12:00:06Z", "status": "paid", "paid": True,
             "total_amount": 4900, "currency": "usd", "subscription_id": membership.provider_subscription_id,
             "metadata": {}, "customer": polar_customer(), "customer_id": "pc_1", "product_id": product["id"]}  # fmt: skip

    def refund(refund_id, amount, status="succeeded", modified="2026-11-03T00:00:00Z"):
        return {"id": refund_id, "created_at": "2026-11-02T00:00:00Z", "modified_at": modified, "status": status,
                "reason": "customer_request", "amount": amount, "tax_amount": 0, "currency": "usd",
                "organization_id": ORG, "order_id": order_id, "subscription_id": "sub_9", "customer_id": "pc_1",
                "revoke_benefits": False, "metadata": {}}  # fmt: skip

    deliveries = [
        ("refund.updated", refund("r2", 900)),
        ("refund.created", refund("r1", 1000, modified=None)),
        ("order.paid", order),
        ("refund.created", refund("r2", 900, status="pending", modified=None)),
        ("refund.updated", refund("r2", 900)),
        ("refund.created", refund("r1", 1000, modified=None)),
    ]
    for kind, data in deliveries:
        assert deliver(fixture, secret, kind, data).status_code == 200
    process_all(fixture)
    process_all(fixture)  # the refunds that came before their order apply after it
    with tenant_context(fixture.tenant):
        refunds = dict(Payment.objects.filter(kind="refund").values_list("provider_payment_id", "amount"))
        assert refunds == {"refund:r1": 1000, "refund:r2": 900}
        assert set(Payment.objects.filter(kind="refund").values_list("membership", flat=True)) == {
            membership.pk
        }


def test_a_subscription_naming_no_customer_is_matched_by_email_or_parked(polar_shop):
    """Item 2: no metadata and a null customer.external_id: found by the Polar customer's email;
    an email none of our customers has parks it `unmatched` (never a customer with an empty id)."""
    fixture, fake, secret = polar_shop
    service_checkout(fixture, "team-monthly")
    product = next(iter(fake.products.values()))
    with tenant_context(fixture.tenant):
        Customer.objects.filter(external_id="c1").update(email="c1@example.test")
    anonymous = polar_customer(customer_id="pc_new", external_id=None)
    known = polar_subscription(product, metadata={}, customer=anonymous, customer_id="pc_new")
    stranger = polar_subscription(product, sub_id="sub_polar_2", metadata={}, customer_id="pc_x",
                                  customer={**anonymous, "id": "pc_x", "email": "x@elsewhere.test"})  # fmt: skip
    for data in (known, stranger, known, stranger):
        assert deliver(fixture, secret, "subscription.created", data).status_code == 200
    process_all(fixture)
    with tenant_context(fixture.tenant):
        membership = Membership.objects.get(provider="polar")
        assert (membership.customer.external_id, membership.provider_subscription_id) == ("c1", "sub_polar_1")
        parked = InboxEvent.objects.get(status="unmatched")
        assert "sub_polar_2" in parked.last_error and "x@elsewhere.test" in parked.last_error
        assert not Customer.objects.filter(external_id="").exists()
