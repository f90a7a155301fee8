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


# --- the upcoming invoice --------------------------------------------------------------------------


def _member(alpha, *, cancel=False, tokens=(), calls=0):
    import datetime as dt

    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from billing.memberships.models import Membership
    from billing.memberships.services import customer_upsert
    from billing.metering.ingest import events_ingest

    now = timezone.now()
    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
        customer, _ = customer_upsert(external_id="ada")
        price = Price.objects.get(code="pro-monthly")
        Membership.objects.create(
            customer=customer, tier=price.tier, price=price, status="active", quantity=1,
            started_at=now - dt.timedelta(days=10), current_period_start=now - dt.timedelta(days=10),
            current_period_end=now + dt.timedelta(days=20), cancel_at_period_end=cancel,
        )  # fmt: skip
        stamp = (now - dt.timedelta(hours=1)).isoformat()
        old = (now - dt.timedelta(days=11)).isoformat()  # before the period: not billed
        events = [
            {
                "id": f"t{i}",
                "customer": "ada",
                "type": "llm.call",
                "timestamp": stamp,
                "properties": {"tokens": n},
            }
            for i, n in enumerate(tokens)
        ] + [
            {
                "id": "old",
                "customer": "ada",
                "type": "llm.call",
                "timestamp": old,
                "properties": {"tokens": 10**6},
            }
        ]
        events_ingest(events=events)
    return now


def test_upcoming_invoice_rates_the_usage_so_far_and_the_next_fee(alpha):
    import datetime as dt

    now = _member(alpha, tokens=[12_000, 501])
    response = alpha.api().get("/api/v1/customers/ada/invoices/upcoming")
    assert response.status_code == 200, response.content
    body = response.json()
    tokens, calls, packs, fee = body["lines"]  # usage prices in catalog order, then the next fee
    # 12,501 tokens: 1,000 free + 9,000 × 2 + 2,501 × 0.25 + 500 = 19,125.25 → 19,125
    assert (tokens["quantity"], tokens["amount"], tokens["meter"]) == ("12501", 19_125, "tokens")
    assert tokens["description"] == "Tokens: 12,501" and len(tokens["breakdown"]) == 3
    assert (calls["quantity"], calls["amount"]) == ("2", 0)  # 2 calls at 0.1 = 0.2 → 0
    assert (packs["quantity"], packs["amount"]) == ("2", 0)  # no whole package of 1,000 calls
    assert (fee["kind"], fee["amount"], fee["description"]) == ("fee", 2900, "Pro (monthly)")
    period_end = dt.datetime.fromisoformat(body["period_end"])
    assert dt.datetime.fromisoformat(fee["period_start"]) == period_end > now
    assert body["total"] == body["subtotal"] == 19_125 + 2900 and body["currency"] == "usd"


def test_upcoming_invoice_of_a_membership_ending_at_period_end_has_no_fee(alpha):
    _member(alpha, cancel=True, tokens=[10])
    body = alpha.api().get("/api/v1/customers/ada/invoices/upcoming").json()
    assert [line["kind"] for line in body["lines"]] == ["usage", "usage", "usage"] and body["total"] == 0


def test_no_upcoming_invoice_without_fee_or_usage_prices(alpha, beta):
    from django_tenants.utils import tenant_context

    from billing.memberships.services import customer_upsert

    with tenant_context(alpha.tenant):
        catalog_import(text=USAGE)
        customer_upsert(external_id="free-rider")
    response = alpha.api().get("/api/v1/customers/free-rider/invoices/upcoming")
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_upcoming_invoice"
    assert alpha.api().get("/api/v1/customers/nobody/invoices/upcoming").status_code == 404
    _member(alpha, tokens=[1])
    assert beta.api().get("/api/v1/customers/ada/invoices/upcoming").status_code == 404


@pytest.mark.parametrize(
    ("unit", "quantity", "text"),
    [("memory", 3, "Calls: 3 memories"), ("memory", 1, "Calls: 1 memory"), ("minutes", 1, "Calls: 1 minute"),
     ("GB", 5_700, "Calls: 5,700 GB"), ("", 2, "Calls: 2")],
)  # fmt: skip
def test_a_usage_line_counts_its_unit_in_english(usage_catalog, unit, quantity, text):
    import datetime as dt

    from django_tenants.utils import tenant_context

    from billing.invoicing.charges import usage_line
    from billing.metering.models import Meter

    with tenant_context(usage_catalog.tenant):
        Meter.objects.filter(code="calls").update(unit=unit)
        end = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
        line = usage_line(
            price=Price.objects.get(code="pro-calls"), meter=Meter.objects.get(code="calls"),
            quantity=Decimal(quantity), start=end - dt.timedelta(days=30), end=end,
        )  # fmt: skip
    assert line.description == text
