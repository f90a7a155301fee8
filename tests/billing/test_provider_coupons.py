"""A coupon given at checkout reaches the providers that run their own subscriptions: Stripe (a
Stripe coupon in the Checkout Session's `discounts`), Polar (a discount, `discount_id`) and Lemon
Squeezy (a discount code, `checkout_data.discount_code`). Each is created once at the provider and
reused; a coupon the provider cannot express is refused (422) before anything is made. Only the
providers' network edges are faked (the fakes of each adapter's own tests, extended)."""

import json
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django_tenants.utils import tenant_context

from billing.discounts.services import coupon_create
from billing.memberships.models import Checkout
from billing.providers.models import ProviderDiscount
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
