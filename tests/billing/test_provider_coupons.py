"""A coupon given at checkout reaches the providers that run their own subscriptions: Stripe (a
Stripe coupon in the Checkout Session's `discounts`), Polar (a discount, `discount_id`) and Lemon
Squeezy (a discount code, `checkout_data.discount_code`). Each is created once at the provider and
reused; a coupon the provider cannot express is refused (422) before anything is made. Only the
providers' network edges are faked (the fakes of each adapter's own tests, extended)."""

import json
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import pytest
from django_tenants.utils import tenant_context

from billing.discounts.services import coupon_create
from billing.memberships.models import Checkout
from billing.providers.models import ProviderDiscount
from tests.billing import test_lemonsqueezy_adapter as ls
from tests.billing import test_polar_adapter as polar
from tests.billing.test_stripe_adapter import FakeStripe, start


def coupons(fixture):
    with tenant_context(fixture.tenant):
        coupon_create(code="TEAM20", percent_off=Decimal("20"), duration="repeating", duration_in_periods=3)
        coupon_create(code="FIVEOFF", amount_off=500, currency="usd", duration="once")
        coupon_create(code="HALF", percent_off=Decimal("12.5"), duration="forever")
        coupon_create(code="ODD", percent_off=Decimal("12.345"), duration="once")
        coupon_create(code="SPRING-SALE", percent_off=Decimal("10"), duration="once")


def nothing_made(fixture):
    with tenant_context(fixture.tenant):
        return not Checkout.objects.exists() and not ProviderDiscount.objects.exists()


# --- Stripe ----------------------------------------------------------------------------------------


class FakeStripeCoupons(FakeStripe):
    """FakeStripe with coupons: retrieved by id (404 until created), created with the id we give."""

    def __init__(self):
        super().__init__()
        self.coupons = {}

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        path = urlsplit(url).path
        if not path.startswith("/v1/coupons"):
            return super().request(method, url, headers, post_data, _usage=_usage)
        body, status, extra = super().request(
            method, url, headers, post_data, _usage=_usage
        )  # records the call
        form = {k: v[0] for k, v in self.calls[-1]["form"].items()}
        if method == "get":
            found = self.coupons.get(path.rsplit("/", 1)[1])
            if found is None:
                error = {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "resource_missing",
                        "message": "No such coupon",
                    }
                }
                return json.dumps(error), 404, {}
            return json.dumps(found), 200, {}
        coupon = {"id": form["id"], "object": "coupon", "duration": form["duration"], "valid": True,
                  "percent_off": float(form["percent_off"]) if "percent_off" in form else None,
                  "amount_off": int(form["amount_off"]) if "amount_off" in form else None,
                  "currency": form.get("currency"),
                  "duration_in_months": int(form["duration_in_months"]) if "duration_in_months" in form else None}  # fmt: skip
        self.coupons[coupon["id"]] = coupon
        return json.dumps(coupon), 200, {}


@pytest.fixture
def stripe_coupons(ci_catalog, monkeypatch):
    from billing.providers.services import provider_account_upsert
    from billing.providers.stripe import StripeProvider
    from tests.billing.test_entitlements import make_customer

    fake = FakeStripeCoupons()
    monkeypatch.setattr(StripeProvider, "http_client", fake)
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="stripe", credentials={"api_key": "sk_test_123"}, webhook_secret="whsec_x",
                                make_default=True)  # fmt: skip
    make_customer(ci_catalog)
    coupons(ci_catalog)
    return ci_catalog, fake


def stripe_routes(fake, start=0):
    return [(c["method"], c["path"]) for c in fake.calls[start:]]


def test_stripe_checkout_creates_the_coupon_once_and_discounts_the_session(stripe_coupons):
    fixture, fake = stripe_coupons
    # when
    response = start(fixture, price="team-monthly", coupon="team20")
    # then: the coupon is looked up by its id (404), created with our terms, given to the session
    assert response.status_code == 201, response.content
    assert stripe_routes(fake) == [
        ("get", "/v1/prices"), ("post", "/v1/products"), ("post", "/v1/prices"),
        ("get", "/v1/coupons/monetize-TEAM20"), ("post", "/v1/coupons"), ("post", "/v1/checkout/sessions"),
    ]  # fmt: skip
    create = fake.calls[4]
    assert create["form"] == {
        "id": ["monetize-TEAM20"], "duration": ["repeating"], "duration_in_months": ["3"], "percent_off": ["20"],
        "name": ["TEAM20"], "metadata[monetize_coupon]": ["TEAM20"],
    }  # fmt: skip
    assert create["headers"]["Idempotency-Key"] == "coupon-TEAM20"
    assert fake.calls[5]["form"]["discounts[0][coupon]"] == ["monetize-TEAM20"]
    assert fake.calls[5]["form"]["mode"] == ["subscription"]
    # a second checkout with it reuses the Stripe coupon
    assert start(fixture, price="team-monthly", coupon="TEAM20").status_code == 201
    assert stripe_routes(fake, 6) == [
        ("get", "/v1/prices"), ("get", "/v1/coupons/monetize-TEAM20"), ("post", "/v1/checkout/sessions"),
    ]  # fmt: skip
    assert fake.calls[-1]["form"]["discounts[0][coupon]"] == ["monetize-TEAM20"]
    assert sum(1 for c in fake.calls if c["method"] == "post" and c["path"] == "/v1/coupons") == 1


def test_stripe_yearly_price_counts_a_repeating_coupon_in_months(stripe_coupons):
    fixture, fake = stripe_coupons
    assert start(fixture, price="team-yearly", coupon="TEAM20").status_code == 201
    (create,) = [c for c in fake.calls if c["method"] == "post" and c["path"] == "/v1/coupons"]
    assert create["form"]["id"] == ["monetize-TEAM20-36m"] and create["form"]["duration_in_months"] == ["36"]
    assert create["headers"]["Idempotency-Key"] == "coupon-TEAM20-36m"
    assert fake.calls[-1]["form"]["discounts[0][coupon]"] == ["monetize-TEAM20-36m"]


def test_stripe_amount_off_coupon(stripe_coupons):
    fixture, fake = stripe_coupons
    assert start(fixture, price="team-monthly", coupon="FIVEOFF").status_code == 201
    (create,) = [c for c in fake.calls if c["method"] == "post" and c["path"] == "/v1/coupons"]
    assert create["form"] == {
        "id": ["monetize-FIVEOFF"], "duration": ["once"], "amount_off": ["500"], "currency": ["usd"],
        "name": ["FIVEOFF"], "metadata[monetize_coupon]": ["FIVEOFF"],
    }  # fmt: skip


def test_stripe_payment_mode_session_takes_the_coupon_too(stripe_coupons):
    from billing.tiers.models import Price, Tier

    fixture, fake = stripe_coupons
    with tenant_context(fixture.tenant):
        Price.objects.create(tier=Tier.objects.get(code="team"), code="team-lifetime", currency="usd",
                             unit_amount=29900, interval="one_time")  # fmt: skip
    assert start(fixture, price="team-lifetime", coupon="FIVEOFF").status_code == 201
    session = fake.calls[-1]
    assert session["form"]["mode"] == ["payment"]
    assert session["form"]["discounts[0][coupon]"] == ["monetize-FIVEOFF"]


def test_a_stripe_coupon_created_concurrently_is_taken_not_refused(stripe_coupons):
    fixture, fake = stripe_coupons
    made_elsewhere = {"id": "monetize-TEAM20", "object": "coupon", "duration": "repeating", "percent_off": 20.0,
                      "amount_off": None, "currency": None, "duration_in_months": 3}  # fmt: skip
    original = fake.request

    def request(method, url, headers, post_data=None, *, _usage=None):
        if method == "post" and urlsplit(url).path == "/v1/coupons":  # another checkout won the race
            fake.calls.append(
                {"method": method, "path": "/v1/coupons", "form": {}, "query": {}, "headers": {}}
            )
            fake.coupons["monetize-TEAM20"] = made_elsewhere
            error = {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_already_exists",
                    "message": "exists",
                }
            }
            return json.dumps(error), 400, {}
        return original(method, url, headers, post_data, _usage=_usage)

    fake.request = request
    response = start(fixture, price="team-monthly", coupon="TEAM20")
    assert response.status_code == 201, response.content
    assert stripe_routes(fake)[-3:] == [
        ("post", "/v1/coupons"), ("get", "/v1/coupons/monetize-TEAM20"), ("post", "/v1/checkout/sessions"),
    ]  # fmt: skip
    assert fake.calls[-1]["form"]["discounts[0][coupon]"] == ["monetize-TEAM20"]


def test_stripe_refuses_a_coupon_it_cannot_express_before_calling_stripe(stripe_coupons):
    fixture, fake = stripe_coupons
    response = start(fixture, price="team-monthly", coupon="ODD")  # 12.345 %: Stripe takes two decimals
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "coupon_not_supported_by_provider"
    assert fake.calls == [] and nothing_made(fixture)


def test_a_stripe_coupon_of_the_same_id_with_other_terms_is_not_given(stripe_coupons):
    fixture, fake = stripe_coupons
    fake.coupons["monetize-TEAM20"] = {"id": "monetize-TEAM20", "object": "coupon", "duration": "forever",
                                       "percent_off": 90.0, "amount_off": None, "currency": None,
                                       "duration_in_months": None}  # fmt: skip
    response = start(fixture, price="team-monthly", coupon="TEAM20")
    assert response.status_code == 409 and response.json()["error"]["code"] == "coupon_conflict"
    assert not any(c["path"] == "/v1/checkout/sessions" for c in fake.calls)
    with tenant_context(fixture.tenant):
        assert not Checkout.objects.exists()


# --- Polar -----------------------------------------------------------------------------------------


class FakePolarDiscounts(polar.FakePolar):
    """FakePolar with discounts: listed (by name, `query`) and created."""

    def __init__(self):
        super().__init__()
        self.discounts: dict[str, dict] = {}
        self.on_discount_create = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.startswith("/v1/discounts/"):
            return super().__call__(request)
        body = json.loads(request.content) if request.content else None
        self.calls.append({"method": request.method, "path": request.url.path, "params": dict(request.url.params),
                           "json": body, "host": request.url.host, "headers": dict(request.headers)})  # fmt: skip
        if request.method == "DELETE":
            self.discounts.pop(request.url.path.rsplit("/", 1)[1])
            return httpx.Response(204)
        if request.method == "GET":
            query = request.url.params.get("query", "")
            items = [d for d in self.discounts.values() if query in d["name"]]
            return httpx.Response(
                200, json={"items": items, "pagination": {"total_count": len(items), "max_page": 1}}
            )
        discount = polar_discount(body)
        self.discounts[discount["id"]] = discount
        if self.on_discount_create:
            self.on_discount_create(body)
        return httpx.Response(201, json=discount)


def polar_discount(body: dict) -> dict:
    discount = {"id": polar._id(), "created_at": polar.NOW, "modified_at": None, "metadata": body.get("metadata", {}),
                "name": body["name"], "code": body.get("code"), "starts_at": None, "ends_at": None, "max_redemptions": None,
                "max_redemptions_per_customer": None, "redemptions_count": 0, "organization_id": polar.ORG, "products": [],
                "duration": body["duration"], "type": body["type"]}  # fmt: skip
    if body["duration"] == "repeating":
        discount["duration_in_months"] = body["duration_in_months"]
    if body["type"] == "percentage":
        discount["basis_points"] = body["basis_points"]
    else:
        discount |= {
            "amount": body["amount"],
            "currency": body["currency"],
            "amounts": {body["currency"]: body["amount"]},
        }
    return discount


@pytest.fixture
def polar_coupons(ci_catalog, monkeypatch):
    from billing.providers.polar import PolarProvider
    from billing.providers.services import provider_account_upsert
    from tests.billing.test_entitlements import make_customer

    fake = FakePolarDiscounts()
    monkeypatch.setattr(PolarProvider, "http_transport", httpx.MockTransport(fake))
    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="polar", credentials={"access_token": polar.TOKEN},
                                webhook_secret=polar.whsec(), make_default=True)  # fmt: skip
    make_customer(ci_catalog)
    coupons(ci_catalog)
    return ci_catalog, fake


def test_polar_checkout_creates_the_discount_once_and_gives_its_id(polar_coupons):
    fixture, fake = polar_coupons
    # when
    response = start(fixture, price="team-monthly", coupon="TEAM20")
    # then
    assert response.status_code == 201, response.content
    assert fake.routes() == [("GET", "/v1/products/"), ("POST", "/v1/products/"), ("GET", "/v1/discounts/"),
                             ("POST", "/v1/discounts/"), ("POST", "/v1/checkouts/")]  # fmt: skip
    assert fake.calls[2]["params"]["query"] == "TEAM20"
    assert fake.calls[3]["json"] == {
        "name": "TEAM20", "duration": "repeating", "duration_in_months": 3, "type": "percentage", "basis_points": 2000,
        "metadata": {"monetize_coupon": "TEAM20", "monetize_months": 3, "monetize_tenant": fixture.tenant.schema_name},
    }  # fmt: skip
    (discount_id,) = fake.discounts
    assert fake.calls[4]["json"]["discount_id"] == discount_id
    with tenant_context(fixture.tenant):
        row = ProviderDiscount.objects.get()
        assert (row.provider, row.mode, row.coupon_code, row.months, row.external_id) == (
            "polar", "test", "TEAM20", 3, discount_id,
        )  # fmt: skip
    # a second checkout reuses it without asking Polar
    assert start(fixture, price="team-monthly", coupon="TEAM20").status_code == 201
    assert fake.routes(5) == [("POST", "/v1/checkouts/")]
    assert fake.calls[-1]["json"]["discount_id"] == discount_id and len(fake.discounts) == 1


def test_polar_fixed_discount_and_a_yearly_repeating_one(polar_coupons):
    fixture, fake = polar_coupons
    assert start(fixture, price="team-monthly", coupon="FIVEOFF").status_code == 201
    assert start(fixture, price="team-yearly", coupon="TEAM20").status_code == 201
    created = [c["json"] for c in fake.calls if c["method"] == "POST" and c["path"] == "/v1/discounts/"]
    assert [{k: v for k, v in body.items() if k != "metadata"} for body in created] == [
        {"name": "FIVEOFF", "duration": "once", "type": "fixed", "amount": 500, "currency": "usd"},
        {"name": "TEAM20", "duration": "repeating", "duration_in_months": 36, "type": "percentage", "basis_points": 2000},
    ]  # fmt: skip


def test_a_polar_discount_left_by_a_rolled_back_checkout_is_found_not_created_again(polar_coupons):
    fixture, fake = polar_coupons
    fake.fail["POST /v1/checkouts/"] = 500
    assert start(fixture, price="team-monthly", coupon="TEAM20").status_code == 503
    with tenant_context(fixture.tenant):
        assert not ProviderDiscount.objects.exists()  # rolled back with the checkout
    del fake.fail["POST /v1/checkouts/"]
    assert start(fixture, price="team-monthly", coupon="TEAM20").status_code == 201
    (discount_id,) = fake.discounts
    assert fake.calls[-1]["json"]["discount_id"] == discount_id


def test_a_polar_discount_stored_concurrently_wins_and_ours_is_deleted(polar_coupons):
    fixture, fake = polar_coupons

    def concurrent_checkout_stores_first(body):
        other = polar_discount(body)
        fake.discounts[other["id"]] = other
        ProviderDiscount.objects.create(provider="polar", mode="test", coupon_code="TEAM20", months=3,
                                        external_id=other["id"])  # fmt: skip

    fake.on_discount_create = concurrent_checkout_stores_first
    response = start(fixture, price="team-monthly", coupon="TEAM20")
    assert response.status_code == 201, response.content
    with tenant_context(fixture.tenant):
        winner = ProviderDiscount.objects.get().external_id
    (deleted,) = [c for c in fake.calls if c["method"] == "DELETE"]
    assert deleted["path"] != f"/v1/discounts/{winner}"  # ours, not the winner
    assert list(fake.discounts) == [winner]
    assert fake.calls[-1]["json"]["discount_id"] == winner


def test_a_polar_discount_with_our_metadata_but_other_terms_is_not_given(polar_coupons):
    fixture, fake = polar_coupons
    body = {"name": "TEAM20", "duration": "forever", "type": "percentage", "basis_points": 9000,
            "metadata": {"monetize_coupon": "TEAM20", "monetize_months": 3, "monetize_tenant": fixture.tenant.schema_name}}  # fmt: skip
    fake.discounts["hand-made"] = polar_discount(body) | {"id": "hand-made"}
    response = start(fixture, price="team-monthly", coupon="TEAM20")
    assert response.status_code == 409 and response.json()["error"]["code"] == "coupon_conflict"
    assert ("POST", "/v1/checkouts/") not in fake.routes() and nothing_made(fixture)


def test_polar_refuses_a_coupon_it_cannot_express_before_calling_polar(polar_coupons):
    fixture, fake = polar_coupons
    response = start(fixture, price="team-monthly", coupon="ODD")  # 12.345 %: not whole basis points
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "coupon_not_supported_by_provider"
    assert fake.calls == [] and nothing_made(fixture)


# --- Lemon Squeezy ---------------------------------------------------------------------------------


class FakeLemonSqueezyDiscounts(ls.FakeLemonSqueezy):
    """FakeLemonSqueezy with discounts: created (a code the store has is refused, 422) and listed."""

    def __init__(self):
        super().__init__()
        self.discounts: dict[str, dict] = {}

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/discounts":
            return super().handle(request)
        body = json.loads(request.content) if request.content else None
        self.calls.append({"method": request.method, "path": request.url.path, "body": body,
                           "params": dict(request.url.params), "headers": request.headers})  # fmt: skip
        if request.method == "GET":
            data = [
                d
                for d in self.discounts.values()
                if str(d["attributes"]["store_id"]) == request.url.params["filter[store_id]"]
            ]
            return httpx.Response(200, json={**ls.JSONAPI, "meta": {"page": {"currentPage": 1, "lastPage": 1}}, "data": data})  # fmt: skip
        attributes = body["data"]["attributes"]
        if any(d["attributes"]["code"] == attributes["code"] for d in self.discounts.values()):
            return ls.error(422, "The code has already been taken.", "/data/attributes/code")
        discount_id = str(7000 + len(self.discounts))
        store = int(body["data"]["relationships"]["store"]["data"]["id"])
        self.discounts[discount_id] = {"type": "discounts", "id": discount_id,
                                       "attributes": {"store_id": store, "status": "published", **attributes}}  # fmt: skip
        return httpx.Response(201, json={**ls.JSONAPI, "data": self.discounts[discount_id]})


@pytest.fixture
def lemon_coupons(ci_catalog, monkeypatch):
    from billing.providers.models import ProviderProduct
    from billing.providers.services import provider_account_upsert
    from billing.tiers.models import Price
    from tests.billing.test_entitlements import make_customer

    with tenant_context(ci_catalog.tenant):
        provider_account_upsert(provider="lemonsqueezy", credentials={"api_key": "ls_test_key", "store_id": ls.STORE},
                                webhook_secret=ls.SECRET, make_default=True)  # fmt: skip
        monkeypatch.setitem(ls.VARIANTS, "team-yearly", "1003")
        for code, variant in ls.VARIANTS.items():
            ProviderProduct.objects.create(provider="lemonsqueezy", mode="test", price=Price.objects.get(code=code, active=True),
                                           external_product_id="900", external_price_id=variant)  # fmt: skip
    make_customer(ci_catalog)
    coupons(ci_catalog)
    fake = ls.use(monkeypatch, FakeLemonSqueezyDiscounts())
    return ci_catalog, fake


def ls_routes(fake, start=0):
    return [(c["method"], c["path"]) for c in fake.calls[start:]]


def test_lemonsqueezy_checkout_creates_the_discount_once_and_gives_its_code(lemon_coupons):
    fixture, fake = lemon_coupons
    # when
    response = start(fixture, price="team-monthly", coupon="TEAM20")
    # then
    assert response.status_code == 201, response.content
    assert ls_routes(fake) == [("POST", "/v1/discounts"), ("POST", "/v1/checkouts")]
    assert fake.calls[0]["body"] == {"data": {
        "type": "discounts",
        "attributes": {"name": "TEAM20", "code": "TEAM20", "duration": "repeating", "duration_in_months": 3,
                       "amount": 20, "amount_type": "percent"},
        "relationships": {"store": {"data": {"type": "stores", "id": ls.STORE}}},
    }}  # fmt: skip
    assert fake.calls[1]["body"]["data"]["attributes"]["checkout_data"]["discount_code"] == "TEAM20"
    with tenant_context(fixture.tenant):
        row = ProviderDiscount.objects.get()
        assert (row.provider, row.coupon_code, row.months, row.external_id) == (
            "lemonsqueezy",
            "TEAM20",
            3,
            "7000",
        )
    # a second checkout gives the same code without creating it again
    assert start(fixture, price="team-monthly", coupon="TEAM20").status_code == 201
    assert ls_routes(fake, 2) == [("POST", "/v1/checkouts")]
    assert fake.calls[-1]["body"]["data"]["attributes"]["checkout_data"]["discount_code"] == "TEAM20"
    assert len(fake.discounts) == 1


def test_lemonsqueezy_fixed_discount(lemon_coupons):
    fixture, fake = lemon_coupons
    assert start(fixture, price="team-monthly", coupon="FIVEOFF").status_code == 201
    assert fake.calls[0]["body"]["data"]["attributes"] == {
        "name": "FIVEOFF", "code": "FIVEOFF", "duration": "once", "amount": 500, "amount_type": "fixed",
    }  # fmt: skip


def test_lemonsqueezy_yearly_price_gets_a_code_of_its_own_counted_in_months(lemon_coupons):
    fixture, fake = lemon_coupons
    assert start(fixture, price="team-monthly", coupon="TEAM20").status_code == 201
    assert start(fixture, price="team-yearly", coupon="TEAM20").status_code == 201
    assert ls_routes(fake, 2) == [("POST", "/v1/discounts"), ("POST", "/v1/checkouts")]
    attributes = fake.calls[2]["body"]["data"]["attributes"]
    assert (attributes["code"], attributes["duration_in_months"]) == ("TEAM2036M", 36)
    assert fake.calls[-1]["body"]["data"]["attributes"]["checkout_data"]["discount_code"] == "TEAM2036M"
    with tenant_context(fixture.tenant):
        assert sorted(ProviderDiscount.objects.values_list("months", flat=True)) == [3, 36]


def test_a_lemonsqueezy_code_left_by_a_rolled_back_checkout_is_found_not_created_again(lemon_coupons):
    fixture, fake = lemon_coupons
    original = fake._checkout
    fake._checkout = lambda body: ls.error(503, "Down.")
    assert start(fixture, price="team-monthly", coupon="TEAM20").status_code == 503
    with tenant_context(fixture.tenant):
        assert not ProviderDiscount.objects.exists()
    fake._checkout = original
    response = start(fixture, price="team-monthly", coupon="TEAM20")
    assert response.status_code == 201, response.content
    assert ls_routes(fake, 2) == [
        ("POST", "/v1/discounts"),
        ("GET", "/v1/discounts"),
        ("POST", "/v1/checkouts"),
    ]
    assert len(fake.discounts) == 1
    assert fake.calls[-1]["body"]["data"]["attributes"]["checkout_data"]["discount_code"] == "TEAM20"
    with tenant_context(fixture.tenant):
        assert ProviderDiscount.objects.get().external_id == "7000"


@pytest.mark.parametrize(
    "coupon", ["HALF", "SPRING-SALE"]
)  # 12.5 %: not a whole percentage; not a code LS takes
def test_lemonsqueezy_refuses_a_coupon_it_cannot_express_before_calling_it(lemon_coupons, coupon):
    fixture, fake = lemon_coupons
    response = start(fixture, price="team-monthly", coupon=coupon)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "coupon_not_supported_by_provider"
    assert fake.calls == [] and nothing_made(fixture)
