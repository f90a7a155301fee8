"""The catalog editor (issue 13 item 5): `/catalog/` for owners and admins. Tiers and prices edited
through forms go through the catalog import (same validation, same immutability rules); the
pricing page is previewed from a rolled-back dry run; YAML is exported, and imported only after a
dry-run diff is confirmed."""

import re

import pytest
import yaml
from django_tenants.utils import tenant_context

from accounts.roles import Role
from billing.tiers.catalog import catalog_export
from billing.tiers.exceptions import CatalogError
from billing.tiers.models import Price, Tier, TierFeature
from tests.console.test_customers import _login


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def _snapshot():
    return (
        list(
            Tier.objects.order_by("id").values_list("code", "name", "is_default", "is_public", "sort_order")
        ),
        list(Price.objects.order_by("id").values_list("code", "active", "unit_amount", "model")),
        list(TierFeature.objects.order_by("id").values_list("tier__code", "feature__code", "limit_value")),
    )


@pytest.fixture
def owner(ci_catalog):
    return _login(ci_catalog, "catalog-owner@alpha.test", Role.OWNER)


def _tier_post(**overrides):
    data = {
        "code": "scale",
        "name": "Scale",
        "description": "For busy pipelines.",
        "sort": "25",
        "public": "on",
        "f_private_projects": "unlimited",
        "f_concurrent_jobs": "20",
        "f_build_minutes": "50000",
        "f_custom_runners": "on",
        "f_api_requests": "2000/minute",
    }
    data.update(overrides)
    return data


GRADUATED = {
    "code": "scale-minutes",
    "model": "graduated",
    "interval": "month",
    "currency": "usd",
    "amount": "",
    "meter": "build-minutes",
    "row0_up_to": "1000",
    "row0_unit": "0",
    "row0_flat": "",
    "row1_up_to": "",
    "row1_unit": "0.008",
    "row1_flat": "5",
    "package_rounding": "up",
}


def test_create_tier_and_graduated_price_shows_on_pricing_and_in_export(ci_catalog, owner):
    # when: a tier through its form, then a graduated usage price through the price form
    response = owner.post("/catalog/tiers/new/", _tier_post())
    assert response.status_code == 302, _text(response)[:2000]
    response = owner.post("/catalog/tiers/scale/prices/new/", GRADUATED)
    assert response.status_code == 302, _text(response)[:2000]
    response = owner.post(
        "/catalog/tiers/scale/prices/new/",
        {"code": "scale-monthly", "model": "flat", "interval": "month", "currency": "usd", "amount": "99.00",
         "package_rounding": "up"},
    )  # fmt: skip
    assert response.status_code == 302, _text(response)[:2000]

    # then: the pricing page lists it, the export has it with its tiers table
    pricing = _text(ci_catalog.client().get("/pricing/"))
    assert 'data-tier="scale"' in pricing and "$99.00" in pricing and "graduated pricing" in pricing
    with tenant_context(ci_catalog.tenant):
        document = yaml.safe_load(catalog_export())
        price = Price.objects.get(code="scale-minutes")
    scale = next(t for t in document["tiers"] if t["code"] == "scale")
    assert scale["features"]["concurrent_jobs"] == 20 and scale["features"]["api_requests"] == "2000/minute"
    assert scale["features"]["private_projects"] == "unlimited" and scale["features"]["sso"] is False
    exported = next(p for p in scale["prices"] if p["code"] == "scale-minutes")
    assert exported["model"] == "graduated" and exported["meter"] == "build-minutes"
    assert exported["tiers"] == [
        {"up_to": 1000, "unit_amount": 0, "flat_amount": 0},
        {"up_to": None, "unit_amount": 0, "flat_amount": 500, "unit_amount_decimal": "0.8"},
    ]
    # and the page's quote calculator rates it as the API does
    quote = owner.get(f"/catalog/prices/{price.pk}/", {"quantity": "3000"})
    assert quote.status_code == 200
    assert "$21.00" in _text(quote)  # 2000 x 0.8 cents + $5 flat
    # in the meter's unit, counted in English
    assert "up to 1,000: $0.00 a minute" in _text(quote) and "beyond: $0.008 a minute + $5.00" in _text(quote)
    partial = _text(owner.get(f"/catalog/prices/{price.pk}/", {"quantity": "3000"}, HTTP_HX_REQUEST="true"))
    assert "3,000 minutes cost" in partial and "$21.00" in partial
    assert "1 minute costs" in _text(owner.get(f"/catalog/prices/{price.pk}/", {"quantity": "1"}))
    # the catalog page lists both prices
    home = _text(owner.get("/catalog/"))
    assert 'data-testid="price-scale-minutes"' in home and 'data-testid="price-scale-monthly"' in home


def test_edit_tier_changes_features_and_moves_the_default(ci_catalog, owner):
    response = owner.get("/catalog/tiers/team/")
    assert response.status_code == 200 and 'value="300/minute"' in _text(response)
    response = owner.post(
        "/catalog/tiers/team/",
        _tier_post(
            code="ignored", name="Team Plus", default="on", f_concurrent_jobs="4", f_custom_runners=""
        ),
    )
    assert response.status_code == 302, _text(response)[:2000]
    with tenant_context(ci_catalog.tenant):
        team = Tier.objects.get(code="team")
        assert (team.name, team.is_default) == ("Team Plus", True)
        assert not Tier.objects.get(code="community").is_default
        assert not Tier.objects.filter(code="ignored").exists()  # the code is fixed once created
        assert TierFeature.objects.get(tier=team, feature__code="concurrent_jobs").limit_value == 4
        assert Price.objects.filter(tier=team, active=True).count() == 2  # prices untouched


def test_a_price_code_in_use_is_a_form_error_and_changes_nothing(ci_catalog, owner):
    # given: pro-monthly is $49 per seat; a price's terms never change
    with tenant_context(ci_catalog.tenant):
        before = _snapshot()
    # when: a "new" price reuses its code with other terms (on another tier, then on its own)
    for tier in ("team", "pro"):
        response = owner.post(
            f"/catalog/tiers/{tier}/prices/new/",
            {"code": "pro-monthly", "model": "per_seat", "interval": "month", "currency": "usd", "amount": "59",
             "package_rounding": "up"},
        )  # fmt: skip
        # then: the form says why (beside the code when the clash is on this tier), and nothing changed
        assert response.status_code == 400
        assert "duplicate price code &#x27;pro-monthly&#x27;" in _text(response)
        marker = 'data-testid="error-code"' if tier == "pro" else 'data-testid="form-errors"'
        assert marker in _text(response)
    with tenant_context(ci_catalog.tenant):
        assert _snapshot() == before


def test_catalog_rule_violations_land_beside_their_fields(ci_catalog, owner):
    with tenant_context(ci_catalog.tenant):
        before = _snapshot()
    cases = [
        ({**GRADUATED, "row0_up_to": "", "row1_up_to": ""}, "error-row0_up_to", "increasing up_to"),
        ({**GRADUATED, "row0_up_to": "", "row0_unit": "", "row1_unit": "", "row1_flat": ""}, "error-row0_up_to", "non-empty tiers table"),
        ({**GRADUATED, "model": "flat"}, "error-model", "a usage price"),
        ({**GRADUATED, "code": "Bad Code!"}, "error-code", "must be a string"),
        ({**GRADUATED, "model": "package", "meter": ""}, "error-package_size", "needs package_size"),
        ({**GRADUATED, "currency": "US$"}, "error-", ""),
        ({**GRADUATED, "row1_flat": "0.001"}, "error-row1_flat", "integer"),
    ]  # fmt: skip
    for data, marker, message in cases:
        response = owner.post("/catalog/tiers/pro/prices/new/", data)
        assert response.status_code == 400, data
        assert marker in _text(response) and message in _text(response), (data, _text(response)[-3000:])
    response = owner.post("/catalog/tiers/new/", _tier_post(code="Nope Nope"))
    assert response.status_code == 400 and 'data-testid="error-code"' in _text(response)
    response = owner.post("/catalog/tiers/new/", _tier_post(f_concurrent_jobs="lots"))
    assert response.status_code == 400 and 'data-testid="error-f_concurrent_jobs"' in _text(response)
    response = owner.post("/catalog/tiers/new/", _tier_post(f_api_requests="fast"))
    assert response.status_code == 400 and 'data-testid="error-f_api_requests"' in _text(response)
    response = owner.post("/catalog/tiers/new/", _tier_post(code="team"))
    assert response.status_code == 400 and "exists already" in _text(response)
    with tenant_context(ci_catalog.tenant):
        assert _snapshot() == before


def test_preview_renders_the_pricing_page_with_the_change_and_saves_nothing(ci_catalog, owner):
    from billing.tiers.signals import catalog_changed

    told = []

    def heard(**kwargs):
        told.append(kwargs)

    # a preview changes nothing for anyone: no cache is invalidated (it refreshes per keystroke)
    catalog_changed.connect(heard, dispatch_uid="test-preview-silent")
    with tenant_context(ci_catalog.tenant):
        before = _snapshot()
    response = owner.post("/catalog/tiers/new/", {**_tier_post(), "preview": "1"})
    assert response.status_code == 200
    body = _text(response)
    assert 'data-testid="pricing-preview"' in body and 'data-tier="scale"' in body
    assert 'data-testid="diff"' in body and "+- code: scale" in body  # the catalog file's diff
    partial = owner.post("/catalog/tiers/new/", {**_tier_post(), "preview": "1"}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and _text(partial).lstrip().startswith('<div id="preview"')
    assert 'data-tier="scale"' in _text(partial) and "<html" not in _text(partial)
    price = owner.post("/catalog/tiers/pro/prices/new/", {**GRADUATED, "preview": "1"})
    assert price.status_code == 200 and "scale-minutes" in _text(price)
    catalog_changed.disconnect(dispatch_uid="test-preview-silent")
    assert told == []
    with tenant_context(ci_catalog.tenant):
        assert _snapshot() == before


def test_deactivate_a_price(ci_catalog, owner):
    with tenant_context(ci_catalog.tenant):
        price = Price.objects.get(code="team-yearly")
    response = owner.post(f"/catalog/prices/{price.pk}/deactivate/")
    assert response.status_code == 302
    with tenant_context(ci_catalog.tenant):
        price.refresh_from_db()
        assert not price.active
        assert Price.objects.get(code="team-monthly").active
    assert "team-yearly" not in _text(ci_catalog.client().get("/pricing/"))
    again = owner.post(f"/catalog/prices/{price.pk}/deactivate/", follow=True)
    assert again.status_code == 200 and "already inactive" in _text(again)


def test_yaml_export_and_dry_run_import_apply_only_when_confirmed(ci_catalog, owner):
    exported = owner.get("/catalog/export.yaml")
    assert exported.status_code == 200 and "attachment" in exported["Content-Disposition"]
    text = exported.content.decode()
    assert "code: team-monthly" in text
    changed = text.replace("name: Team\n", "name: Team Two\n").replace(
        "unit_amount: 1900", "unit_amount: 2100"
    )
    with tenant_context(ci_catalog.tenant):
        before = _snapshot()

    # dry run: the diff, and nothing applied
    response = owner.post("/catalog/import/", {"step": "preview", "text": changed})
    assert response.status_code == 200
    body = _text(response)
    assert "-  name: Team + name: Team Two" in body.replace("  ", " ") or "+ name: Team Two" in body
    assert "- unit_amount: 1900" in body and "+ unit_amount: 2100" in body
    assert 'data-testid="apply"' in body
    with tenant_context(ci_catalog.tenant):
        assert _snapshot() == before

    # unchanged file: says so, offers nothing to apply
    same = owner.post("/catalog/import/", {"step": "preview", "text": text})
    assert "changes nothing" in _text(same) and 'data-testid="apply"' not in _text(same)

    # confirmed: applied (the old price deactivated, a new one with the new terms)
    applied = owner.post("/catalog/import/", {"step": "apply", "text": changed})
    assert applied.status_code == 302
    with tenant_context(ci_catalog.tenant):
        assert Tier.objects.get(code="team").name == "Team Two"
        assert Price.objects.get(code="team-monthly", active=True).unit_amount == 2100
        assert Price.objects.filter(code="team-monthly", active=False, unit_amount=1900).count() == 1


def test_yaml_errors_show_inline_with_their_path_and_change_nothing(ci_catalog, owner):
    text = owner.get("/catalog/export.yaml").content.decode()
    with tenant_context(ci_catalog.tenant):
        before = _snapshot()
    bad_cases = [
        (text.replace("concurrent_jobs: 3", "concurrent_jobs: lots"), "tiers[1].features.concurrent_jobs"),
        (text.replace("aggregation: sum", "aggregation: max"), "meters.build-minutes"),  # a meter is fixed
        ("tiers: [", "(document)"),
        ("tiers:\n  - {code: x, prices: [{model: graduated}]}\n", "tiers[0].prices[0].tiers"),
    ]
    for bad, path in bad_cases:
        for step in ("preview", "apply"):
            response = owner.post("/catalog/import/", {"step": step, "text": bad})
            assert response.status_code == 400, (step, path)
            body = _text(response)
            assert 'data-testid="import-error"' in body and path in body, body[-2000:]
    response = owner.post("/catalog/import/", {"step": "preview", "text": bad_cases[0][0]})
    assert 'data-testid="bad-line"' in _text(response)
    with tenant_context(ci_catalog.tenant):
        assert _snapshot() == before


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.FINANCE, Role.CUSTOMER, Role.CREATOR])
def test_only_owner_and_admin_edit_the_catalog(ci_catalog, role):
    client = _login(ci_catalog, f"catalog-{role}@alpha.test", role)
    with tenant_context(ci_catalog.tenant):
        before = _snapshot()
        price = Price.objects.get(code="team-yearly")
    for method, url, data in [
        ("get", "/catalog/", None),
        ("get", "/catalog/export.yaml", None),
        ("post", "/catalog/tiers/new/", _tier_post()),
        ("post", "/catalog/tiers/pro/prices/new/", GRADUATED),
        ("post", f"/catalog/prices/{price.pk}/deactivate/", {}),
        ("post", "/catalog/import/", {"step": "apply", "text": "tiers: []"}),
    ]:
        response = getattr(client, method)(url, data) if data is not None else getattr(client, method)(url)
        assert response.status_code == 403, (role, url)
    assert 'href="/catalog/"' not in _text(client.get("/pricing/"))
    with tenant_context(ci_catalog.tenant):
        assert _snapshot() == before


def test_admin_edits_and_sees_the_nav_link(ci_catalog):
    client = _login(ci_catalog, "catalog-admin@alpha.test", Role.ADMIN)
    assert 'href="/catalog/"' in _text(client.get("/catalog/"))
    assert client.post("/catalog/tiers/new/", _tier_post()).status_code == 302


def test_anonymous_goes_to_login(ci_catalog):
    response = ci_catalog.client().get("/catalog/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_hostile_input_is_never_a_500(ci_catalog, owner):
    with tenant_context(ci_catalog.tenant):
        before = _snapshot()
    hostile = [
        "",
        "\x00",
        "' OR 1=1 --",
        "9" * 400,
        "-1",
        "1e309",
        "NaN",
        "<script>alert(1)</script>",
        "ü" * 70,
    ]
    for value in hostile:
        for field in (
            "code",
            "amount",
            "currency",
            "row0_up_to",
            "row0_unit",
            "package_size",
            "trial_days",
            "meter",
            "model",
        ):
            response = owner.post("/catalog/tiers/pro/prices/new/", {**GRADUATED, field: value})
            assert response.status_code in (200, 302, 400), (field, value)
        for field in ("code", "name", "sort", "credits_per_period", "f_concurrent_jobs", "f_api_requests"):
            response = owner.post(
                "/catalog/tiers/new/", _tier_post(**{field: value, "code": "h" if field != "code" else value})
            )
            assert response.status_code in (200, 302, 400), (field, value)
        assert owner.get("/catalog/prices/1/", {"quantity": value}).status_code in (200, 400, 404)
        assert owner.post("/catalog/import/", {"step": "preview", "text": value}).status_code in (200, 400)
    for path in ("/catalog/prices/0/", "/catalog/prices/99999999999999999999/", "/catalog/prices/x/",
                 "/catalog/tiers/nope/", "/catalog/tiers/nope/prices/new/"):  # fmt: skip
        assert owner.get(path).status_code == 404, path
    assert owner.post("/catalog/prices/abc/deactivate/").status_code == 404
    yaml_bombs = ["a: &a [*a]", "!!python/object/apply:os.system ['true']", "- " * 5000, "{" * 3000]
    for text in yaml_bombs:
        assert owner.post("/catalog/import/", {"step": "preview", "text": text}).status_code == 400
    with tenant_context(ci_catalog.tenant):
        after = _snapshot()
    # only tiers "h" and "1e309" (valid codes) may have been created; nothing else changed
    assert [t for t in after[0] if t[0] not in {"h", "1e309"}] == before[0]


def test_the_same_price_added_twice_at_once_is_added_once(live_tenant):
    """Two editors (or a double-clicked Save) add the same price concurrently: the catalog is locked
    while a change is made, so the second sees the first's price and is refused; one price."""
    from billing.tiers.services import catalog_edit, document_price_add
    from tests.helpers import committed, run_parallel

    price = {"code": "pro-weekly-ish", "unit_amount": 1500, "interval": "month"}

    def add(_):
        with tenant_context(live_tenant.tenant):
            try:
                catalog_edit(edit=lambda doc: document_price_add(doc, tier_code="pro", price=dict(price)))
            except CatalogError as error:
                return error.message
            return "added"

    outcomes = run_parallel(add, 4)
    assert outcomes.count("added") == 1, outcomes
    assert all("duplicate price code" in o for o in outcomes if o != "added"), outcomes

    def count():
        with tenant_context(live_tenant.tenant):
            return Price.objects.filter(code="pro-weekly-ish").count()

    assert committed(count) == 1


def test_the_tier_form_names_each_features_unit_in_the_plural(alpha):
    from billing.tiers.catalog import catalog_import
    from tests.conftest import CATALOGS

    with tenant_context(alpha.tenant):
        catalog_import(text=(CATALOGS / "ai-memory-api.yaml").read_text())
    page = _text(_login(alpha, "units-owner@alpha.test", Role.OWNER).get("/catalog/tiers/pro/"))
    assert "Stored memories (memories)" in page and "Agents (agents)" in page and "memorys" not in page
