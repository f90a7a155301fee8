"""Taxes (issue 11 item 7): tax rates per tenant, a customer's country and exemption, tax per line after
discounts with one half-up rounding, inclusive rates carved out, merchant-of-record invoices left to
their provider, and the upcoming invoice equal to the invoice it becomes."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django_tenants.utils import tenant_context

from billing.discounts.services import coupon_create
from billing.invoicing.adjustments import Discount, Line, Rate, adjust
from billing.invoicing.exceptions import InvoicingError
from billing.invoicing.models import InvoiceTax, TaxRate
from billing.invoicing.services import LineDraft, invoice_draft_create, invoice_finalize
from billing.invoicing.taxes import tax_rate_create
from billing.memberships.services import customer_discount_apply, customer_upsert

# --- the rules, by hand ---------------------------------------------------------------------------


def rate(percent, inclusive=False, key=1):
    return Rate(key=key, name="T", percent=Decimal(percent), inclusive=inclusive)


def lines(*amounts):
    return [Line(amount=a) for a in amounts]


def test_exclusive_tax_is_added_per_line_rounded_once_half_up():
    # 20% of 19.99 = 3.998 → 4.00
    result = adjust(currency="usd", lines=lines(1999), rates=[rate("20")])
    assert (result.tax, result.tax_inclusive, result.total) == (400, 0, 2399)
    # per line: 10% of 0.05 = 0.005 → 0.01, twice (not 10% of 0.10 = 0.01 once)
    result = adjust(currency="usd", lines=lines(5, 5), rates=[rate("10")])
    assert [line.tax for line in result.lines] == [1, 1] and result.total == 12


def test_inclusive_tax_is_carved_out_and_changes_no_total():
    # 19% included in 11.90: 11.90 × 19 / 119 = 1.90
    result = adjust(currency="eur", lines=lines(1190), rates=[rate("19", inclusive=True)])
    assert (result.tax, result.tax_inclusive, result.total) == (190, 190, 1190)
    assert result.taxes[0].taxable == 1000
    # with an exclusive levy of 2% on the price without VAT: 119.00 × 2 / 119 = 2.00
    result = adjust(currency="eur", lines=lines(11_900), rates=[rate("19", inclusive=True), rate("2", key=2)])
    assert [t.amount for t in result.taxes] == [1900, 200] and (result.tax, result.total) == (2100, 12_100)


def test_tax_is_computed_after_the_discount():
    ten = Discount(key=1, code="TEN", percent_off=Decimal(10))
    result = adjust(currency="usd", lines=lines(1000), discounts=[ten], rates=[rate("20")])
    assert (result.discount, result.tax, result.total) == (100, 180, 1080)  # (10.00 - 1.00) × 20%
    result = adjust(currency="usd", lines=lines(1190), discounts=[ten], rates=[rate("19", inclusive=True)])
    # 11.90 - 1.19 = 10.71, of which 10.71 × 19 / 119 = 1.71 is VAT
    assert (result.discount, result.tax, result.total) == (119, 171, 1071)


def test_zero_decimal_currencies_and_an_invoice_that_bills_nothing():
    assert adjust(currency="krw", lines=lines(39_000), rates=[rate("10")]).total == 42_900
    # ₩39,000 with 10% VAT included: 39,000 × 10 / 110 = 3,545.45 → 3,545
    assert adjust(currency="krw", lines=lines(39_000), rates=[rate("10", inclusive=True)]).tax == 3_545
    assert adjust(currency="jpy", lines=lines(1_005), rates=[rate("8")]).tax == 80  # 80.4
    nothing = adjust(currency="usd", lines=lines(500, -900), rates=[rate("20")])
    assert (nothing.subtotal, nothing.tax, nothing.total, nothing.taxes) == (0, 0, 0, ())


# --- tax rates and customers through the API ------------------------------------------------------


def post(fixture, path, body=None, **extra):
    return fixture.api().post(path, body or {}, content_type="application/json", **extra)


def test_create_list_and_deactivate_tax_rates(alpha, beta):
    created = post(
        alpha, "/api/v1/tax-rates", {"name": "VAT", "percent": "19", "inclusive": True, "country": "de"},
        HTTP_IDEMPOTENCY_KEY="vat-de",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    vat = created.json()
    assert (vat["name"], vat["percent"], vat["inclusive"], vat["country"], vat["active"]) == (
        "VAT", "19", True, "DE", True,
    )  # fmt: skip
    again = post(
        alpha, "/api/v1/tax-rates", {"name": "VAT", "percent": "19", "inclusive": True, "country": "de"},
        HTTP_IDEMPOTENCY_KEY="vat-de",
    )  # fmt: skip
    assert again.json()["id"] == vat["id"]
    levy = post(alpha, "/api/v1/tax-rates", {"name": "Levy", "percent": 2.5}).json()
    assert (levy["percent"], levy["inclusive"], levy["country"]) == ("2.5", False, "")
    page = alpha.api().get("/api/v1/tax-rates", {"limit": 1}).json()
    assert [r["id"] for r in page["results"]] == [levy["id"]] and page["next"]

    off = post(alpha, f"/api/v1/tax-rates/{levy['id']}/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False
    active = alpha.api().get("/api/v1/tax-rates", {"active": "true"}).json()["results"]
    assert [r["id"] for r in active] == [vat["id"]]
    assert post(beta, f"/api/v1/tax-rates/{vat['id']}/deactivate").status_code == 404  # another tenant's
    assert beta.api().get("/api/v1/tax-rates").json()["results"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "VAT", "percent": 0},
        {"name": "VAT", "percent": "100.5"},
        {"name": "VAT", "percent": "abc"},
        {"name": "VAT", "percent": 5, "country": "DEU"},
        {"name": "VAT", "percent": 5, "inclusive": "maybe"},
        {"percent": 5},
        {"name": 5, "percent": 5},
    ],
)
def test_bad_tax_rates_are_refused(alpha, body):
    response = post(alpha, "/api/v1/tax-rates", body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
    with tenant_context(alpha.tenant):
        assert not TaxRate.objects.exists()


@pytest.mark.parametrize(
    "terms, field",
    [
        ({"name": "", "percent": Decimal(5)}, "name"),
        ({"name": "V" * 101, "percent": Decimal(5)}, "name"),
        ({"name": "V\x00AT", "percent": Decimal(5)}, "name"),
        ({"name": "VAT", "percent": Decimal("-1")}, "percent"),
        ({"name": "VAT", "percent": Decimal("100.01")}, "percent"),
        ({"name": "VAT", "percent": Decimal("NaN")}, "percent"),
        ({"name": "VAT", "percent": Decimal("5.00001")}, "percent"),
        ({"name": "VAT", "percent": Decimal(5), "country": "DEU"}, "country"),
        ({"name": "VAT", "percent": Decimal(5), "country": "D\x00"}, "country"),
    ],
)
def test_the_service_refuses_terms_the_database_would_with_the_field_named(in_alpha, terms, field):
    """The console's form has no serializer in front: the service says which term is wrong."""
    with pytest.raises(InvoicingError) as refused:
        tax_rate_create(**terms)
    assert refused.value.code == "invalid_tax_rate" and refused.value.details["field"] == field
    assert not TaxRate.objects.exists()


def test_tax_rate_terms_are_immutable_in_the_database(in_alpha):
    vat = tax_rate_create(name="VAT", percent=Decimal(20))
    with pytest.raises(DatabaseError), transaction.atomic():
        TaxRate.objects.filter(pk=vat.pk).update(percent=21)
    with pytest.raises(DatabaseError), transaction.atomic():
        TaxRate.objects.filter(pk=vat.pk).delete()


def test_a_customers_country_and_exemption_are_set_through_the_customer_api(alpha):
    created = post(alpha, "/api/v1/customers", {"external_id": "ada", "country": "de"})
    assert created.status_code == 201 and (created.json()["country"], created.json()["tax_exempt"]) == (
        "DE",
        False,
    )
    patched = (
        alpha.api()
        .patch("/api/v1/customers/ada", {"tax_exempt": True}, content_type="application/json")
        .json()
    )
    assert (patched["country"], patched["tax_exempt"]) == ("DE", True)
    cleared = alpha.api().patch("/api/v1/customers/ada", {"country": ""}, content_type="application/json")
    assert cleared.json()["country"] == ""
    for bad in ({"country": "Germany"}, {"country": 49}, {"tax_exempt": "perhaps"}):
        response = alpha.api().patch("/api/v1/customers/ada", bad, content_type="application/json")
        assert response.status_code == 400, bad


# --- invoices -------------------------------------------------------------------------------------


@pytest.fixture
def rates(in_alpha):
    return {
        "vat_de": tax_rate_create(name="VAT", percent=Decimal(19), inclusive=True, country="DE"),
        "levy": tax_rate_create(name="Levy", percent=Decimal(2)),
        "tva_fr": tax_rate_create(name="TVA", percent=Decimal(20), country="FR"),
    }


def billed(customer, *amounts, **extra):
    draft, _ = invoice_draft_create(
        customer=customer,
        currency="eur",
        lines=[LineDraft(kind="fee", description=f"Line {i}", amount=a) for i, a in enumerate(amounts)],
        **extra,
    )
    return invoice_finalize(invoice_id=draft.pk)


def test_an_invoice_with_inclusive_and_exclusive_tax(rates):
    customer = customer_upsert(external_id="hans", country="DE")[0]
    invoice = billed(customer, 11_900, 1_190)
    # VAT 19% included: 1,900 + 190; the levy, 2% of the price without VAT: 200 + 20
    assert (invoice.subtotal, invoice.discount, invoice.tax, invoice.total) == (13_090, 0, 2_310, 13_310)
    assert list(invoice.lines.values_list("tax_amount", flat=True)) == [2_100, 210]
    taxes = {t.name: (t.percent, t.inclusive, t.taxable_amount, t.amount) for t in invoice.taxes.all()}
    assert taxes == {"VAT": (19, True, 11_000, 2_090), "Levy": (2, False, 11_000, 220)}
    assert invoice.customer_details["country"] == "DE" and invoice.customer_details["tax_exempt"] is False
    with pytest.raises(DatabaseError), transaction.atomic():  # frozen with the invoice
        InvoiceTax.objects.filter(invoice=invoice).update(amount=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        InvoiceTax.objects.filter(invoice=invoice).delete()


def test_rates_follow_the_customers_country_and_a_discount(rates):
    customer = customer_upsert(external_id="marie", country="FR")[0]
    coupon_create(code="TEN", percent_off=Decimal(10), duration="forever")
    customer_discount_apply(customer=customer, coupon_code="TEN")
    invoice = billed(customer, 10_000)
    # 100.00 - 10.00 = 90.00; TVA 20% = 18.00 and the levy 2% = 1.80, both added
    assert (invoice.discount, invoice.tax, invoice.total) == (1_000, 1_980, 10_980)
    assert sorted(invoice.taxes.values_list("name", flat=True)) == ["Levy", "TVA"]
    nowhere = billed(customer_upsert(external_id="anon")[0], 10_000)  # no country: the all-country rates
    assert (nowhere.tax, nowhere.total) == (200, 10_200)


def test_an_exempt_customer_and_a_providers_invoice_get_no_tax_from_us(rates):
    exempt = customer_upsert(external_id="ngo", country="DE", tax_exempt=True)[0]
    invoice = billed(exempt, 11_900)
    assert (invoice.tax, invoice.total, invoice.taxes.count()) == (0, 11_900, 0)
    assert invoice.customer_details["tax_exempt"] is True
    hans = customer_upsert(external_id="hans", country="DE")[0]
    mirrored = billed(hans, 11_900, collected_by="provider", provider="polar", provider_invoice_id="ord_1")
    assert (mirrored.tax, mirrored.total, mirrored.taxes.count()) == (0, 11_900, 0)


def test_the_invoice_api_and_pdf_show_each_tax(alpha):
    from tests.billing.test_invoices import _pdf_text

    with tenant_context(alpha.tenant):
        tax_rate_create(name="VAT", percent=Decimal(19), inclusive=True, country="DE")
        tax_rate_create(name="Levy", percent=Decimal("2.5"))
        invoice = billed(customer_upsert(external_id="hans", country="DE")[0], 11_900)
    body = alpha.api().get(f"/api/v1/invoices/{invoice.pk}").json()
    # VAT 11,900 × 19 / 119 = 1,900; levy 11,900 × 2.5 / 119 = 250
    assert (body["tax"], body["total"], body["lines"][0]["tax_amount"]) == (2_150, 12_150, 2_150)
    assert body["taxes"] == [
        {
            "name": "VAT",
            "percent": "19",
            "inclusive": True,
            "country": "DE",
            "taxable_amount": 10_000,
            "amount": 1_900,
        },
        {
            "name": "Levy",
            "percent": "2.5",
            "inclusive": False,
            "country": "",
            "taxable_amount": 10_000,
            "amount": 250,
        },
    ]
    text = _pdf_text(alpha.api().get(f"/api/v1/invoices/{invoice.pk}/pdf").content)
    assert "Tax (VAT, 19%, included)" in text and "Tax (Levy, 2.5%)" in text and "€121.50" in text


# --- the upcoming invoice is the invoice ----------------------------------------------------------


def test_the_upcoming_invoice_equals_the_finalized_invoice(alpha):
    from billing.invoicing.charges import period_charges
    from billing.invoicing.upcoming import invoice_upcoming
    from billing.memberships.models import Membership
    from billing.tiers.models import Price
    from tests.billing.test_usage_prices import _member

    _member(alpha, tokens=[12_000, 501])
    with tenant_context(alpha.tenant):
        tax_rate_create(name="Sales tax", percent=Decimal("8.875"))
        coupon_create(code="PRO15", percent_off=Decimal(15), duration="repeating", duration_in_periods=2,
                      tier_codes=["pro"])  # fmt: skip
        customer = customer_upsert(external_id="ada", country="US")[0]
        customer_discount_apply(customer=customer, coupon_code="PRO15")
    preview = alpha.api().get("/api/v1/customers/ada/invoices/upcoming").json()
    # tokens 19,125 and the fee 2,900: 15% off each (2,868.75 → 2,869; 435), then 8.875% of
    # 16,256 (1,442.72 → 1,443) and of 2,465 (218.77 → 219)
    assert (preview["subtotal"], preview["discount"], preview["tax"], preview["total"]) == (
        22_025, 3_304, 1_662, 20_383,
    )  # fmt: skip
    assert [(line["discount_amount"], line["tax_amount"]) for line in preview["lines"]] == [
        (2_869, 1_443), (0, 0), (0, 0), (435, 219),
    ]  # fmt: skip
    assert preview["discounts"] == [{"coupon": "PRO15", "name": "", "amount": 3_304}]
    assert preview["taxes"][0]["amount"] == 1_662

    with tenant_context(alpha.tenant):
        membership = Membership.objects.get(customer=customer)
        upcoming = invoice_upcoming(customer=customer)
        charges = period_charges(  # what the period close bills: the whole period's usage
            customer="ada", tier=membership.tier, currency="usd", fee_price=Price.objects.get(code="pro-monthly"),
            quantity=1, period_start=upcoming.period_start, period_end=upcoming.period_end,
        )  # fmt: skip
        draft, _ = invoice_draft_create(
            customer=customer, currency="usd", lines=charges.lines, membership=membership,
            period_start=charges.period_start, period_end=charges.period_end,
        )  # fmt: skip
        invoice = invoice_finalize(invoice_id=draft.pk)
    body = alpha.api().get(f"/api/v1/invoices/{invoice.pk}").json()
    for key in ("subtotal", "discount", "tax", "total", "discounts", "taxes"):
        assert body[key] == preview[key], key
    assert [(line["amount"], line["discount_amount"], line["tax_amount"]) for line in body["lines"]] == [
        (line["amount"], line["discount_amount"], line["tax_amount"]) for line in preview["lines"]
    ]
    after = alpha.api().get("/api/v1/customers/ada/discount").json()
    assert (after["periods_applied"], after["periods_remaining"]) == (1, 1)
