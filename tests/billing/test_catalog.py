from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction
from django_tenants.utils import tenant_context

from billing.tiers.catalog import catalog_export, catalog_import
from billing.tiers.exceptions import CatalogError
from billing.tiers.models import Feature, Price, Tier, TierFeature

CATALOGS = Path(__file__).resolve().parents[2] / "config" / "tiers"
EXAMPLES = sorted(CATALOGS.glob("*.yaml"))


def _counts():
    return (Tier.objects.count(), Price.objects.count(), Feature.objects.count(), TierFeature.objects.count())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_catalogs_import_and_reimport_changes_nothing(in_alpha, path):
    first = catalog_import(text=path.read_text(), filename=path.name)
    assert first.changed and Tier.objects.filter(is_default=True).count() == 1
    before = _counts()
    again = catalog_import(text=path.read_text(), filename=path.name)
    assert not again.changed and _counts() == before


def test_three_examples_ship():
    assert {p.name for p in EXAMPLES} >= {"ci-service.yaml", "ai-memory-api.yaml", "ai-usage.yaml"}


def test_memory_api_values(in_alpha):
    catalog_import(text=(CATALOGS / "ai-memory-api.yaml").read_text())
    values = {
        (tf.tier.code, tf.feature.code): (tf.limit_value, tf.rate_limit, tf.rate_window_seconds)
        for tf in TierFeature.objects.select_related("tier", "feature")
    }
    assert [values[(t, "memories")][0] for t in ("free", "pro", "team")] == [5000, 50000, 500000]
    assert [values[(t, "agents")][0] for t in ("free", "pro", "team")] == [1, 5, 20]
    assert [values[(t, "api_requests")][1:] for t in ("free", "pro", "team")] == [
        (60, 60),
        (300, 60),
        (1000, 60),
    ]
    krw = Price.objects.get(code="pro-monthly-krw")
    assert (krw.currency, krw.unit_amount) == ("krw", 39000)  # zero-decimal: whole won


def test_changed_file_updates_limits_and_replaces_changed_prices(in_alpha):
    text = (CATALOGS / "ci-service.yaml").read_text()
    catalog_import(text=text)
    old_price = Price.objects.get(code="pro-monthly", active=True)
    changed = text.replace("name: Pro\n", "name: Pro Plus\n").replace(
        "private_projects: 10", "private_projects: 12"
    )
    changed = changed.replace("code: pro-monthly, unit_amount: 4900", "code: pro-monthly, unit_amount: 5900")
    report = catalog_import(text=changed)
    assert report.changed and report.created["prices"] == 1 and report.deactivated_prices == 1
    assert Tier.objects.get(code="pro").name == "Pro Plus"
    assert TierFeature.objects.get(tier__code="team", feature__code="private_projects").limit_value == 12
    old_price.refresh_from_db()
    assert old_price.active is False and old_price.unit_amount == 4900  # never edited in place
    assert Price.objects.get(code="pro-monthly", active=True).unit_amount == 5900


def test_price_terms_are_immutable_in_the_database(in_alpha):
    catalog_import(text=(CATALOGS / "ci-service.yaml").read_text())
    price = Price.objects.get(code="team-monthly")
    with pytest.raises(DatabaseError), transaction.atomic():
        Price.objects.filter(pk=price.pk).update(unit_amount=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        Price.objects.filter(pk=price.pk).delete()
    Price.objects.filter(pk=price.pk).update(active=False)  # deactivating is allowed


@pytest.mark.parametrize(
    "text, line, field",
    [
        ("tiers: [\n  {code: a\n", 3, "(document)"),
        ("features:\n  x: {kind: nope}\n", 2, "features.x.kind"),
        (
            "features:\n  x: {kind: limit}\ntiers:\n  - code: a\n    features:\n      x: -1\n",
            6,
            "tiers[0].features.x",
        ),
        (
            "features:\n  r: {kind: rate}\ntiers:\n  - code: a\n    features:\n      r: 60 per minute\n",
            6,
            "tiers[0].features.r",
        ),
        ("tiers:\n  - code: a\n    features:\n      ghost: 1\n", 4, "tiers[0].features.ghost"),
        (
            "tiers:\n  - code: a\n    prices:\n      - {unit_amount: 12.5}\n",
            4,
            "tiers[0].prices[0].unit_amount",
        ),
        (
            "tiers:\n  - code: a\n    prices:\n      - {unit_amount: 100, currency: USD}\n",
            4,
            "tiers[0].prices[0].currency",
        ),
        ("tiers:\n  - {code: a, default: true}\n  - {code: b, default: true}\n", 3, "tiers.default"),
        ("tiers:\n  - {code: a}\n  - {code: a}\n", 3, "tiers[1].code"),
        ("tiers:\n  - {code: a, colour: red}\n", 2, "tiers[0].colour"),
        ("tiers:\n  - code: a\n    prices:\n      - {model: graduated}\n", 4, "tiers[0].prices[0].tiers"),
    ],
)
def test_bad_files_name_file_line_and_field_and_change_nothing(in_alpha, text, line, field):
    catalog_import(text=(CATALOGS / "ci-service.yaml").read_text())
    before = _counts()
    with pytest.raises(CatalogError) as error:
        catalog_import(text=text, filename="bad.yaml")
    assert error.value.details == {"file": "bad.yaml", "line": line, "field": field}
    assert error.value.message.startswith(f"bad.yaml:{line}: {field}: ")
    assert _counts() == before


def test_export_round_trips(in_alpha):
    catalog_import(text=(CATALOGS / "ci-service.yaml").read_text())
    exported = catalog_export()
    assert yaml.safe_load(exported)["tiers"][0]["code"] == "community"
    assert not catalog_import(text=exported).changed


def test_commands(ci_catalog, tmp_path):
    out = StringIO()
    call_command("tiers_import", "--tenant", "alpha", str(CATALOGS / "ci-service.yaml"), stdout=out)
    assert "nothing changed" in out.getvalue()
    target = tmp_path / "out.yaml"
    call_command("tiers_export", "--tenant", "alpha", str(target), stdout=StringIO())
    assert "enterprise" in target.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers:\n  - code: Bad Code\n")
    with pytest.raises(CommandError, match=r"bad.yaml:2: tiers\[0\].code"):
        call_command("tiers_import", "--tenant", "alpha", str(bad), stdout=StringIO())
    with pytest.raises(CommandError, match="No tenant"):
        call_command("tiers_import", "--tenant", "nope", str(bad), stdout=StringIO())


def test_tiers_api(ci_catalog, beta):
    body = ci_catalog.api().get("/api/v1/tiers").json()
    codes = [t["code"] for t in body["results"]]
    assert codes == ["community", "team", "pro"]  # enterprise is private
    team = body["results"][1]
    assert {p["code"] for p in team["prices"]} == {"team-monthly", "team-yearly"}
    features = {f["code"]: f for f in team["features"]}
    assert features["private_projects"] == {
        "code": "private_projects",
        "name": "Private projects",
        "kind": "limit",
        "unit": "project",
        "value": 10,
    }
    assert features["api_requests"]["value"] == {"limit": 300, "window_seconds": 60}
    assert features["sso"]["value"] is False
    everything = ci_catalog.api().get("/api/v1/tiers?all=true").json()["results"]
    assert "enterprise" in [t["code"] for t in everything]
    assert beta.api().get("/api/v1/tiers").json()["results"] == []  # tenant B has its own (empty) catalog
    with tenant_context(beta.tenant):
        assert not Tier.objects.exists()
