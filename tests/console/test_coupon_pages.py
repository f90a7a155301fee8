"""Coupons and tax rates in the console: `/catalog/coupons/` and `/catalog/tax-rates/` for owners and
admins (like the catalog editor). Created through the services the API calls (the same rules,
refusals beside their fields, nothing created), deactivated behind the confirmation dialog, other
roles refused, other tenants' coupons and rates a 404, the list's queries bounded."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.roles import Role
from billing.discounts.models import Coupon
from billing.discounts.services import coupon_create
from billing.invoicing.models import TaxRate
from billing.invoicing.taxes import tax_rate_create
from billing.memberships.services import customer_discount_apply, customer_upsert
from tests.console.test_customers import _login


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def _coupons():
    return list(Coupon.objects.order_by("id").values_list("code", "active", "times_redeemed"))


def _rates():
    return list(TaxRate.objects.order_by("id").values_list("name", "percent", "active"))


@pytest.fixture
def owner(ci_catalog):
    return _login(ci_catalog, "coupons-owner@alpha.test", Role.OWNER)


def _coupon_post(**overrides):
    data = {
        "code": "launch20",
        "name": "Launch",
        "kind": "percent",
        "percent_off": "20",
        "amount_off": "",
        "currency": "",
        "duration": "repeating",
        "duration_in_periods": "3",
        "max_redemptions": "100",
        "expires_at": "",
    }
    data.update(overrides)
    return data


# --- coupons ----------------------------------------------------------------------------------------


def test_an_empty_list_says_what_to_do(ci_catalog, owner):
    response = owner.get("/catalog/coupons/")
    assert response.status_code == 200
    text = _text(response)
    assert 'data-testid="empty"' in text and "No coupons yet" in text
    assert 'href="/catalog/coupons/new/"' in text and "Create a coupon" in text
    # reachable from the catalog's tabs, under the Catalog link of the navigation
    catalog = _text(owner.get("/catalog/"))
    assert 'href="/catalog/coupons/"' in catalog and 'href="/catalog/tax-rates/"' in catalog
    assert re.search(r'<a href="/catalog/" aria-current="page">Catalog</a>', text)


def test_the_list_shows_each_coupon_in_words(ci_catalog, owner):
    with tenant_context(ci_catalog.tenant):
        coupon_create(code="TEAM50", name="Team half", percent_off=Decimal("12.5"), duration="repeating",
                      duration_in_periods=3, max_redemptions=100, tier_codes=["team", "pro"])  # fmt: skip
        coupon_create(code="FIVE", amount_off=500, currency="usd", duration="once")
        coupon_create(code="WON", amount_off=5000, currency="krw", duration="forever")
        coupon_create(code="LATE", percent_off=Decimal(5), duration="once",
                      expires_at=timezone.now() - dt.timedelta(days=1))  # fmt: skip
        gone = coupon_create(code="GONE", percent_off=Decimal(5), duration="once")
        gone.active = False
        gone.save(update_fields=["active"])
        coupon_create(code="ONE", percent_off=Decimal(5), duration="once", max_redemptions=1)
        for n in range(12):
            customer = customer_upsert(external_id=f"c{n}")[0]
            customer_discount_apply(customer=customer, coupon_code="TEAM50" if n else "ONE")
    response = owner.get("/catalog/coupons/")
    assert response.status_code == 200
    text = _text(response)
    assert re.search(r'<a href="/catalog/coupons/TEAM50/"><code>TEAM50</code></a>', text)
    assert "12.5%" in text and "for 3 invoices" in text and "11 of 100" in text and "Pro, Team" in text
    assert "$5.00" in text and "₩5,000" in text and "once" in text and "forever" in text
    assert "Every tier" in text
    for code, status in [
        ("TEAM50", "active"),
        ("LATE", "expired"),
        ("GONE", "deactivated"),
        ("ONE", "used_up"),
    ]:
        row = re.search(rf"<tr>(?:(?!</tr>).)*/catalog/coupons/{code}/(?:(?!</tr>).)*</tr>", text).group(0)
        assert f'class="badge tone-{"success" if status == "active" else "muted"}"' in row, (code, row)
        assert {"used_up": "Used up"}.get(status, status.capitalize()) in row
    # sorted by a column
    assert owner.get("/catalog/coupons/?sort=code").status_code == 200
    assert owner.get("/catalog/coupons/?sort=nope&page=99").status_code == 200


def test_create_a_coupon_through_the_service_with_a_flash_message(ci_catalog, owner):
    expiry = (timezone.now() + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    response = owner.post(
        "/catalog/coupons/new/", _coupon_post(tiers=["team", "pro"], expires_at=expiry), follow=True
    )
    assert response.status_code == 200 and response.redirect_chain[-1][0] == "/catalog/coupons/"
    text = _text(response)
    assert "Coupon LAUNCH20 created: 20% off, for 3 invoices." in text
    assert "/catalog/coupons/LAUNCH20/" in text
    with tenant_context(ci_catalog.tenant):
        coupon = Coupon.objects.get(code="LAUNCH20")
        assert (coupon.percent_off, coupon.duration, coupon.duration_in_periods) == (20, "repeating", 3)
        assert coupon.max_redemptions == 100 and coupon.expires_at > timezone.now()
        assert sorted(t.code for t in coupon.tiers.all()) == ["pro", "team"]
    # an amount off in major units, stored in minor units of its currency
    response = owner.post(
        "/catalog/coupons/new/",
        _coupon_post(code="TENOFF", kind="amount", amount_off="10.50", currency="EUR", duration="forever",
                     duration_in_periods="", max_redemptions=""),
        follow=True,
    )  # fmt: skip
    assert "Coupon TENOFF created: €10.50 off, forever." in _text(response)
    with tenant_context(ci_catalog.tenant):
        coupon = Coupon.objects.get(code="TENOFF")
        assert (coupon.amount_off, coupon.currency, coupon.percent_off) == (1050, "eur", None)
    # the API sees them as it sees its own
    listed = ci_catalog.api().get("/api/v1/coupons").json()["results"]
    assert {c["code"] for c in listed} == {"LAUNCH20", "TENOFF"}


BAD_COUPONS = [
    ({"percent_off": "-5"}, "percent_off", "above 0 and at most 100"),
    ({"percent_off": "0"}, "percent_off", "above 0 and at most 100"),
    ({"percent_off": "100.5"}, "percent_off", "above 0 and at most 100"),
    ({"percent_off": "1e309"}, "percent_off", "above 0 and at most 100"),
    ({"percent_off": "12.123456"}, "percent_off", "at most 4 decimal places"),
    ({"percent_off": "NaN"}, "percent_off", "Enter a number"),
    ({"percent_off": ""}, "percent_off", "Enter the percent off"),
    ({"kind": "amount", "amount_off": "5"}, "currency", "needs its currency"),
    ({"kind": "amount", "amount_off": "-5", "currency": "usd"}, "amount_off", "above 0"),
    ({"kind": "amount", "amount_off": "0", "currency": "usd"}, "amount_off", "above 0"),
    ({"kind": "amount", "amount_off": "9" * 30, "currency": "usd"}, "amount_off", "at most"),
    ({"kind": "amount", "amount_off": "0.001", "currency": "usd"}, "amount_off", "no smaller unit"),
    ({"kind": "amount", "amount_off": "5.5", "currency": "krw"}, "amount_off", "no smaller unit"),
    ({"kind": "amount", "amount_off": "five", "currency": "usd"}, "amount_off", "such as 19.00"),
    ({"kind": "amount", "amount_off": "5", "currency": "u$d"}, "currency", "three-letter"),
    ({"kind": "amount", "amount_off": "", "currency": "usd"}, "amount_off", "Enter the amount off"),
    ({"kind": "bogus"}, "kind", "Select a valid choice"),
    ({"duration": "weekly"}, "duration", "Select a valid choice"),
    ({"duration_in_periods": ""}, "duration_in_periods", "for, and only for, a repeating coupon"),
    ({"duration_in_periods": "0"}, "duration_in_periods", "1 to 1,200 invoices"),
    ({"duration_in_periods": "99999999999999999999"}, "duration_in_periods", "1 to 1,200 invoices"),
    ({"max_redemptions": "-1"}, "max_redemptions", "1 to 2,147,483,647"),
    ({"max_redemptions": "9" * 25}, "max_redemptions", "1 to 2,147,483,647"),
    ({"expires_at": "2020-01-01T00:00"}, "expires_at", "in the future"),
    ({"expires_at": "yesterday"}, "expires_at", "Enter a valid date/time"),
    ({"code": "two words"}, "code", "letters, digits, - and _"),
    ({"code": "NUL\x00"}, "code", "Null characters are not allowed"),
    ({"code": ""}, "code", "This field is required"),
    ({"code": "X" * 10_000}, "code", "at most 64 characters"),
    ({"name": "x" * 10_000}, "name", "at most 200 characters"),
    ({"name": "a\x00b"}, "name", "Null characters are not allowed"),
    (
        {"currency": "\x00", "kind": "amount", "amount_off": "5"},
        "currency",
        "Null characters are not allowed",
    ),
    ({"tiers": ["nope"]}, "tiers", "Select a valid choice"),
]


@pytest.mark.parametrize("change, field, message", BAD_COUPONS)
def test_each_bad_coupon_is_a_form_error_beside_its_field_and_creates_nothing(
    ci_catalog, owner, change, field, message
):
    response = owner.post("/catalog/coupons/new/", _coupon_post(**change))
    assert response.status_code == 400, (change, response.status_code)
    text = _text(response)
    error = re.search(rf'data-testid="error-{field}">([^<]*)<', text)
    assert error and message in error.group(1).replace("&#x27;", "'"), (change, text[-3000:])
    assert not re.search(r"\w_\w", error.group(1)), error.group(1)  # in words, not the API's field names
    assert 'data-testid="coupon-form"' in text  # the form again, with what was typed
    with tenant_context(ci_catalog.tenant):
        assert _coupons() == []


def test_every_refused_term_is_shown_at_once(ci_catalog, owner):
    response = owner.post(
        "/catalog/coupons/new/", _coupon_post(code="two words", percent_off="150", max_redemptions="-1")
    )
    assert response.status_code == 400
    text = _text(response)
    for field in ("code", "percent_off", "max_redemptions"):
        assert f'data-testid="error-{field}"' in text, field
    response = owner.post("/catalog/tax-rates/new/", {"name": "VAT", "percent": "150", "country": "D1"})
    assert 'data-testid="error-percent"' in _text(response) and 'data-testid="error-country"' in _text(
        response
    )
    with tenant_context(ci_catalog.tenant):
        assert _coupons() == [] and _rates() == []


def test_a_duplicate_code_is_a_form_error_and_changes_nothing(ci_catalog, owner):
    with tenant_context(ci_catalog.tenant):
        coupon_create(code="LAUNCH20", percent_off=Decimal(10), duration="once")
        before = _coupons()
    response = owner.post("/catalog/coupons/new/", _coupon_post(code=" Launch20 "))
    assert response.status_code == 400
    assert re.search(r'data-testid="error-code">A coupon &#x27;LAUNCH20&#x27; exists.<', _text(response))
    with tenant_context(ci_catalog.tenant):
        assert _coupons() == before
        assert Coupon.objects.get(code="LAUNCH20").percent_off == 10


def test_deactivate_a_coupon_behind_the_confirmation(ci_catalog, owner):
    with tenant_context(ci_catalog.tenant):
        coupon_create(code="SPRING", percent_off=Decimal(10), duration="once")
        coupon_create(code="SUMMER", percent_off=Decimal(10), duration="once")
    page = _text(owner.get("/catalog/coupons/SPRING/"))
    assert "Spring" not in page and "10% off, once" in page
    form = re.search(r'<form method="post" action="/catalog/coupons/SPRING/deactivate/"[^>]*>', page).group(0)
    assert 'data-confirm="Deactivate SPRING?' in form
    response = owner.post("/catalog/coupons/SPRING/deactivate/", follow=True)
    assert response.status_code == 200
    text = _text(response)
    assert "Coupon SPRING deactivated" in text and 'data-status="deactivated"' in text
    assert 'data-testid="deactivate"' not in text  # nothing left to deactivate
    with tenant_context(ci_catalog.tenant):
        assert _coupons() == [("SPRING", False, 0), ("SUMMER", True, 0)]
    again = owner.post("/catalog/coupons/SPRING/deactivate/", follow=True)
    assert "already deactivated" in _text(again)
    # the API agrees
    assert ci_catalog.api().get("/api/v1/coupons/SPRING").json()["active"] is False
    # a deactivated coupon is refused at redemption, as through the API
    with tenant_context(ci_catalog.tenant):
        from billing.discounts.exceptions import CouponInactive

        with pytest.raises(CouponInactive):
            customer_discount_apply(customer=customer_upsert(external_id="late")[0], coupon_code="SPRING")


def test_the_list_reads_a_bounded_number_of_queries(ci_catalog, owner):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner.get("/catalog/coupons/").status_code == 200
        return len(captured.captured_queries)

    with tenant_context(ci_catalog.tenant):
        coupon_create(code="C0", percent_off=Decimal(10), duration="once", tier_codes=["team"])
    few = queries_for_list()
    with tenant_context(ci_catalog.tenant):
        for n in range(1, 40):
            coupon_create(code=f"C{n}", percent_off=Decimal(10), duration="once", tier_codes=["team", "pro"])
    many = queries_for_list()
    assert many == few, (few, many)
    page = _text(owner.get("/catalog/coupons/"))
    assert len(re.findall(r'<a href="/catalog/coupons/C\d+/">', page)) == 25 and "Page 1 of 2" in page


# --- tax rates --------------------------------------------------------------------------------------


def test_tax_rates_empty_create_list_and_deactivate(ci_catalog, owner):
    empty = _text(owner.get("/catalog/tax-rates/"))
    assert "No tax rates yet" in empty and 'href="/catalog/tax-rates/new/"' in empty
    response = owner.post(
        "/catalog/tax-rates/new/",
        {"name": "VAT", "percent": "19", "inclusive": "on", "country": "de"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/catalog/tax-rates/"
    text = _text(response)
    assert "Tax rate VAT created: 19% inclusive, DE." in text
    owner.post("/catalog/tax-rates/new/", {"name": "Sales tax", "percent": "8.875"})
    text = _text(owner.get("/catalog/tax-rates/"))
    assert "8.875%" in text and "Exclusive" in text and "Every country" in text and "Inclusive" in text
    with tenant_context(ci_catalog.tenant):
        vat = TaxRate.objects.get(name="VAT")
        assert (vat.percent, vat.inclusive, vat.country) == (19, True, "DE")
    page = _text(owner.get(f"/catalog/tax-rates/{vat.pk}/"))
    assert (
        f'action="/catalog/tax-rates/{vat.pk}/deactivate/"' in page and 'data-confirm="Deactivate VAT' in page
    )
    done = owner.post(f"/catalog/tax-rates/{vat.pk}/deactivate/", follow=True)
    assert "Tax rate VAT deactivated" in _text(done) and 'data-status="inactive"' in _text(done)
    assert "already inactive" in _text(owner.post(f"/catalog/tax-rates/{vat.pk}/deactivate/", follow=True))
    with tenant_context(ci_catalog.tenant):
        assert _rates() == [("VAT", 19, False), ("Sales tax", Decimal("8.875"), True)]
    assert (
        ci_catalog.api().get("/api/v1/tax-rates", {"active": "true"}).json()["results"][0]["name"]
        == "Sales tax"
    )


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"percent": "-1"}, "percent", "above 0 and at most 100"),
        ({"percent": "0"}, "percent", "above 0 and at most 100"),
        ({"percent": "101"}, "percent", "above 0 and at most 100"),
        ({"percent": "99999999999999999999"}, "percent", "above 0 and at most 100"),
        ({"percent": "1.000001"}, "percent", "at most 4 decimal places"),
        ({"percent": "Infinity"}, "percent", "Enter a number"),
        ({"percent": ""}, "percent", "This field is required"),
        ({"name": ""}, "name", "This field is required"),
        ({"name": "   "}, "name", "This field is required"),
        ({"name": "x" * 10_000}, "name", "at most 100 characters"),
        ({"name": "V\x00T"}, "name", "Null characters are not allowed"),
        ({"country": "DEU"}, "country", "at most 2 characters"),
        ({"country": "D1"}, "country", "two-letter"),
        ({"country": "\x00"}, "country", "Null characters are not allowed"),
    ],
)
def test_each_bad_tax_rate_is_a_form_error_and_creates_nothing(ci_catalog, owner, change, field, message):
    response = owner.post(
        "/catalog/tax-rates/new/", {"name": "VAT", "percent": "19", "country": "", **change}
    )
    assert response.status_code == 400, change
    error = re.search(rf'data-testid="error-{field}">([^<]*)<', _text(response))
    assert error and message in error.group(1), (change, _text(response)[-2000:])
    with tenant_context(ci_catalog.tenant):
        assert _rates() == []


# --- who may -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.FINANCE, Role.CUSTOMER, Role.CREATOR])
def test_only_owner_and_admin_see_and_change_coupons_and_tax_rates(ci_catalog, role):
    client = _login(ci_catalog, f"coupons-{role}@alpha.test", role)
    with tenant_context(ci_catalog.tenant):
        coupon_create(code="KEEP", percent_off=Decimal(10), duration="once")
        rate = tax_rate_create(name="VAT", percent=Decimal(20))
        before = (_coupons(), _rates())
    for method, url, data in [
        ("get", "/catalog/coupons/", None),
        ("get", "/catalog/coupons/new/", None),
        ("get", "/catalog/coupons/KEEP/", None),
        ("post", "/catalog/coupons/new/", _coupon_post()),
        ("post", "/catalog/coupons/KEEP/deactivate/", {}),
        ("get", "/catalog/tax-rates/", None),
        ("get", f"/catalog/tax-rates/{rate.pk}/", None),
        ("post", "/catalog/tax-rates/new/", {"name": "X", "percent": "5"}),
        ("post", f"/catalog/tax-rates/{rate.pk}/deactivate/", {}),
    ]:
        response = getattr(client, method)(url, data) if data is not None else getattr(client, method)(url)
        assert response.status_code == 403, (role, url)
    with tenant_context(ci_catalog.tenant):
        assert (_coupons(), _rates()) == before


def test_an_admin_creates_and_deactivates(ci_catalog):
    client = _login(ci_catalog, "coupons-admin@alpha.test", Role.ADMIN)
    assert client.post("/catalog/coupons/new/", _coupon_post()).status_code == 302
    assert client.post("/catalog/coupons/LAUNCH20/deactivate/").status_code == 302
    assert client.post("/catalog/tax-rates/new/", {"name": "GST", "percent": "10"}).status_code == 302


def test_anonymous_goes_to_login(ci_catalog):
    for path in ("/catalog/coupons/", "/catalog/tax-rates/new/"):
        response = ci_catalog.client().get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_other_tenants_coupons_and_rates_are_a_404(ci_catalog, beta, owner):
    with tenant_context(beta.tenant):
        coupon_create(code="BETAONLY", percent_off=Decimal(10), duration="once")
        for n in range(3):
            theirs = tax_rate_create(name=f"Beta VAT {n}", percent=Decimal(20))
    with tenant_context(ci_catalog.tenant):
        ours = tax_rate_create(name="Alpha VAT", percent=Decimal(20))
        assert not TaxRate.objects.filter(pk=theirs.pk).exists()  # ids are per schema
    assert owner.get(f"/catalog/tax-rates/{theirs.pk}/").status_code == 404
    assert owner.post(f"/catalog/tax-rates/{theirs.pk}/deactivate/").status_code == 404
    assert owner.get("/catalog/coupons/BETAONLY/").status_code == 404
    assert owner.post("/catalog/coupons/BETAONLY/deactivate/").status_code == 404
    assert owner.get("/catalog/coupons/%00/").status_code == 400  # NUL: refused before any view
    for path in ("/catalog/coupons/" + "X" * 500 + "/", "/catalog/coupons/a%20b/",
                 "/catalog/tax-rates/0/", "/catalog/tax-rates/99999999999999999999/", "/catalog/tax-rates/x/",
                 f"/catalog/tax-rates/{ours.pk + 1000}/"):  # fmt: skip
        assert owner.get(path).status_code == 404, path
    assert owner.post("/catalog/tax-rates/abc/deactivate/").status_code == 404
    with tenant_context(beta.tenant):
        assert Coupon.objects.get(code="BETAONLY").active and TaxRate.objects.get(pk=theirs.pk).active


# --- a customer's discount on the customer page -----------------------------------------------------


def test_owner_applies_and_ends_a_customers_discount(ci_catalog, owner):
    from billing.memberships.models import CouponRedemption

    with tenant_context(ci_catalog.tenant):
        customer_upsert(external_id="ada", email="ada@example.com")
        coupon_create(code="TEAM20", percent_off=Decimal(20), duration="repeating", duration_in_periods=3)
        coupon_create(code="OLD", percent_off=Decimal(5), duration="once",
                      expires_at=timezone.now() - dt.timedelta(days=1))  # fmt: skip
    page = _text(owner.get("/customers/ada/"))
    form = re.search(r'<form[^>]*data-testid="discount-form".*?</form>', page).group(0)
    assert "TEAM20: 20% off, for 3 invoices" in form and "OLD" not in form  # only redeemable coupons

    response = owner.post("/customers/ada/discount/", {"coupon": "TEAM20"}, follow=True)
    text = _text(response)
    assert "now has TEAM20: 20% off, for 3 invoices." in text
    assert re.search(r'data-testid="discount">Discount: <a href="/catalog/coupons/TEAM20/"><code>TEAM20</code></a>, '
                     r"20% off, for 3 invoices · 3 invoices left", text)  # fmt: skip
    again = owner.post("/customers/ada/discount/", {"coupon": "TEAM20"}, follow=True)
    assert "nothing was counted twice" in _text(again)
    with tenant_context(ci_catalog.tenant):
        assert Coupon.objects.get(code="TEAM20").times_redeemed == 1

    for bad in ("OLD", "NOPE", "", "\x00", "x" * 10_000):
        refused = owner.post("/customers/ada/discount/", {"coupon": bad})
        assert refused.status_code == 400, bad
        form = re.search(r'<form[^>]*data-testid="discount-form".*?</form>', _text(refused)).group(0)
        expected = "This field is required" if bad == "" else "Select a valid choice"
        assert f'<small class="errors" role="alert">{expected}' in form, bad
        assert "Nothing was changed: check the form below." in _text(refused)
    ended = owner.post("/customers/ada/discount-remove/", follow=True)
    assert "discount (TEAM20) ended" in _text(ended) and 'data-testid="discount"' not in _text(ended)
    with tenant_context(ci_catalog.tenant):
        assert CouponRedemption.objects.get(customer__external_id="ada").ended_at is not None
        assert Coupon.objects.get(code="OLD").times_redeemed == 0


@pytest.mark.parametrize("role", [Role.FINANCE, Role.SUPPORT])
def test_finance_and_support_see_a_discount_but_do_not_change_it(ci_catalog, role):
    with tenant_context(ci_catalog.tenant):
        ada = customer_upsert(external_id="ada")[0]
        coupon_create(code="TEAM20", percent_off=Decimal(20), duration="forever")
        coupon_create(code="MORE", percent_off=Decimal(30), duration="forever")
        customer_discount_apply(customer=ada, coupon_code="TEAM20")
    client = _login(ci_catalog, f"discount-{role}@alpha.test", role)
    page = _text(client.get("/customers/ada/"))
    assert 'data-testid="discount">Discount: <code>TEAM20</code>, 20% off, forever' in page
    assert 'data-testid="discount-form"' not in page and 'data-testid="discount-remove"' not in page
    assert client.post("/customers/ada/discount/", {"coupon": "MORE"}).status_code == 403
    assert client.post("/customers/ada/discount-remove/").status_code == 403
    with tenant_context(ci_catalog.tenant):
        assert Coupon.objects.get(code="MORE").times_redeemed == 0
        assert Coupon.objects.get(code="TEAM20").times_redeemed == 1
