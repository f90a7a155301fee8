"""Usage prices in the catalog (a price that names a meter; per_unit; fractional unit amounts; package
rounding) and the pricing calculator `GET /api/v1/prices/{code}/quote`."""

from decimal import Decimal

import pytest
import yaml
from django.db import DatabaseError, transaction

from billing.tiers.catalog import catalog_export, catalog_import
from billing.tiers.exceptions import CatalogError
from billing.tiers.models import Price
from tests.conftest import CATALOGS

USAGE = """
currency: usd
features:
  tokens: {name: Tokens, kind: metered, unit: token}
tiers:
  - code: free
    name: Free
    default: true
  - code: pro
    name: Pro
    prices:
      - {code: pro-monthly, unit_amount: 2900, interval: month}
      - code: pro-tokens
        interval: month
        meter: tokens
        model: graduated
        tiers:
          - {up_to: 1000, unit_amount: 0}
          - {up_to: 10000, unit_amount: 2}
          - {up_to: null, unit_amount_decimal: "0.25", flat_amount: 500}
      - {code: pro-calls, interval: month, meter: calls, model: per_unit, unit_amount_decimal: "0.1"}
      - {code: pro-packs, interval: month, meter: calls, model: package, unit_amount: 500, package_size: 1000, package_rounding: down}
meters:
  tokens: {name: Tokens, event_type: llm.call, aggregation: sum, value_property: tokens, feature: tokens}
  calls: {name: Calls, event_type: llm.call, aggregation: count}
"""


def test_usage_prices_import_export_and_reimport_unchanged(in_alpha):
    catalog_import(text=USAGE, filename="usage.yaml")
    tokens = Price.objects.get(code="pro-tokens", active=True)
    assert (tokens.meter, tokens.model) == ("tokens", "graduated")
    assert tokens.tiers[2] == {
        "up_to": None,
        "unit_amount": 0,
        "flat_amount": 500,
        "unit_amount_decimal": "0.25",
    }
    calls = Price.objects.get(code="pro-calls")
    assert calls.unit_amount_decimal == Decimal("0.1") and calls.model == "per_unit"
    assert Price.objects.get(code="pro-packs").package_rounding == "down"

    exported = yaml.safe_load(catalog_export())
    prices = {p["code"]: p for t in exported["tiers"] for p in t.get("prices", [])}
    assert prices["pro-calls"]["unit_amount_decimal"] == "0.1" and prices["pro-calls"]["meter"] == "calls"
    assert prices["pro-packs"]["package_rounding"] == "down"
    assert "meter" not in prices["pro-monthly"]
    again = catalog_import(text=catalog_export(), filename="export.yaml")
    assert not again.changed and Price.objects.filter(code="pro-calls").count() == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ("meter: calls, model: per_unit", None),
        ("meter: nope, model: per_unit", "no meter 'nope'"),
        ("meter: calls", "a usage price (with a meter) is per_unit"),
        ("meter: calls, model: per_unit, interval: one_time", "billed each month or year"),
        ("model: per_unit, unit_amount_decimal: -1", "at most 12 decimals"),
        ("model: per_unit, unit_amount_decimal: '0.0000000000001'", "at most 12 decimals"),
        ("model: package, package_size: 10, package_rounding: sideways", "must be up or down"),
    ],
)
def test_usage_price_terms_are_validated_with_their_line(in_alpha, change, message):
    text = USAGE.replace(
        '{code: pro-calls, interval: month, meter: calls, model: per_unit, unit_amount_decimal: "0.1"}',
        "{code: pro-calls, interval: month, " + change + "}",
    )
    assert text != USAGE
    if message is None:
        catalog_import(text=text, filename="usage.yaml")
        return
    with pytest.raises(CatalogError) as exc:
        catalog_import(text=text, filename="usage.yaml")
    assert message in exc.value.message and exc.value.details["file"] == "usage.yaml"
    assert exc.value.details["line"] > 1
    assert not Price.objects.filter(code="pro-monthly").exists()  # nothing applied


def test_new_price_terms_are_immutable_in_the_database(in_alpha):
    catalog_import(text=USAGE)
    for field, value in (
        ("meter", "tokens"),
        ("unit_amount_decimal", Decimal("9")),
        ("package_rounding", "up"),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            Price.objects.filter(code="pro-packs" if field == "package_rounding" else "pro-calls").update(
                **{field: value}
            )


def test_the_shipped_ai_usage_catalog_has_a_usage_price(in_alpha):
    catalog_import(text=(CATALOGS / "ai-usage.yaml").read_text())
    price = Price.objects.get(code="growth-tokens")
    assert price.meter == "tokens" and price.tiers[1]["unit_amount_decimal"] == "0.0002"


# --- the quote API -----------------------------------------------------------------------------


@pytest.fixture
def usage_catalog(alpha):
    from django_tenants.utils import tenant_context

    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
    return alpha


def quote(tenant, code, quantity):
    return tenant.api().get(f"/api/v1/prices/{code}/quote", {"quantity": quantity})


def test_quote_of_a_graduated_usage_price_matches_a_hand_computation(usage_catalog):
    # 1,000 included; 9,000 at 2; 2,501 at 0.25 + 500 flat = 18,000 + 625.25 + 500 = 19,125.25 → 19,125
    response = quote(usage_catalog, "pro-tokens", "12501")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["amount"] == 19_125 and body["currency"] == "usd" and body["quantity"] == "12501"
    assert [s["quantity"] for s in body["breakdown"]] == ["1000", "9000", "2501"]
    assert body["breakdown"][2] == {
        "first": "10001", "last": None, "quantity": "2501", "unit_amount": "0.25", "flat_amount": 500,
        "amount": "1125.25",
    }  # fmt: skip


def test_quote_of_fractional_and_package_prices(usage_catalog):
    assert quote(usage_catalog, "pro-calls", "15").json()["amount"] == 2  # 1.5 rounds half-up
    assert quote(usage_catalog, "pro-calls", "2.5").json()["amount"] == 0  # 0.25
    assert quote(usage_catalog, "pro-packs", "2999").json()["amount"] == 1000  # whole packages only
    assert quote(usage_catalog, "pro-monthly", "1").json()["amount"] == 2900


@pytest.mark.parametrize("quantity", ["-1", "abc", "NaN", "Infinity", "", "1e30"])
def test_quote_refuses_bad_quantities(usage_catalog, quantity):
    response = quote(usage_catalog, "pro-tokens", quantity)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_quantity"


def test_quote_of_an_unknown_or_other_tenants_price_is_404(usage_catalog, beta):
    assert quote(usage_catalog, "nope", "1").status_code == 404
    response = quote(beta, "pro-tokens", "1")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_price"


def test_tiers_api_shows_usage_price_terms(usage_catalog):
    body = usage_catalog.api().get("/api/v1/tiers").json()
    prices = {p["code"]: p for t in body["results"] for p in t["prices"]}
    assert prices["pro-tokens"]["meter"] == "tokens"
    assert prices["pro-calls"]["unit_amount_decimal"] == "0.1"
    assert prices["pro-monthly"]["meter"] is None
