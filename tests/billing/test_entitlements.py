import datetime as dt
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.entitlements.models import EntitlementOverride


def check(fixture, customer="c1", feature="private_projects", **extra):
    return fixture.api().post(
        "/api/v1/entitlements/check",
        {"customer": customer, "feature": feature, **extra},
        content_type="application/json",
    )


def make_customer(fixture, external_id="c1", tier=None):
    body = {"external_id": external_id, **({"tier": tier} if tier else {})}
    response = fixture.api().post("/api/v1/customers", body, content_type="application/json")
    assert response.status_code in (200, 201), response.content
    return response.json()


def test_default_tier_decisions(ci_catalog):
    assert make_customer(ci_catalog)["tier"] == "community"
    body = check(ci_catalog, feature="concurrent_jobs").json()
    assert body == {
        "allowed": True, "feature": "concurrent_jobs", "kind": "limit", "tier": "community",
        "limit": 1, "used": 0, "remaining": 1, "reason": "ok",
    }  # fmt: skip
    assert check(ci_catalog, feature="private_projects").json()["reason"] == "limit_reached"  # limit 0
    assert (
        check(ci_catalog, feature="sso").json() | {"allowed": False, "reason": "not_in_tier"}
        == check(ci_catalog, feature="sso").json()
    )
    assert check(ci_catalog, feature="build_minutes", quantity=400).json()["allowed"] is True
    assert check(ci_catalog, feature="build_minutes", quantity=401).json()["reason"] == "limit_reached"


def test_a_call_needing_a_paid_tier_fails_before_and_succeeds_after(ci_catalog):
    make_customer(ci_catalog)
    assert check(ci_catalog, feature="custom_runners").json()["allowed"] is False
    assert check(ci_catalog, feature="custom_runners").json()["reason"] == "not_in_tier"  # cached snapshot
    make_customer(ci_catalog, tier="pro")
    body = check(ci_catalog, feature="custom_runners").json()
    assert body["allowed"] is True and body["tier"] == "pro"
    unlimited = check(ci_catalog, feature="private_projects", quantity=10_000).json()
    assert unlimited["allowed"] is True and unlimited["limit"] is None
    make_customer(ci_catalog, tier="community")  # back to the default tier
    assert check(ci_catalog, feature="custom_runners").json()["allowed"] is False


def _entitled_reads(queries) -> int:
    """Reads of a customer's entitled plan membership (entitled_membership's query)."""
    return sum(
        1
        for q in queries.captured_queries
        if 'FROM "memberships_membership"' in q["sql"]
        and "('trialing', 'active', 'past_due')" in q["sql"]
        and '"creator_id" IS NULL' in q["sql"]
    )


def test_a_snapshot_build_reads_the_entitled_membership_once(ci_catalog):
    from billing.entitlements.selectors import snapshot_build
    from billing.memberships.models import Customer

    make_customer(ci_catalog, tier="team")  # build minutes are metered: the period is read too
    with tenant_context(ci_catalog.tenant):
        customer = Customer.objects.get(external_id="c1")
        with CaptureQueriesContext(connection) as queries:
            snapshot = snapshot_build(customer=customer)
        assert snapshot["tier"] == "team" and snapshot["features"]["build_minutes"]["used"] == 0
        assert _entitled_reads(queries) == 1


def test_snapshot_endpoint(ci_catalog):
    make_customer(ci_catalog, tier="team")
    body = ci_catalog.api().get("/api/v1/customers/c1/entitlements").json()
    assert body["tier"] == "team"
    assert body["features"]["private_projects"] == {
        "kind": "limit",
        "enabled": True,
        "override": False,
        "limit": 10,
        "used": 0,
        "remaining": 10,
    }
    assert body["features"]["api_requests"]["rate"] == {"limit": 300, "window_seconds": 60}
    assert body["features"]["sso"]["enabled"] is False
    assert ci_catalog.api().get("/api/v1/customers/nobody/entitlements").status_code == 404


def test_cached_check_does_not_touch_postgres(ci_catalog):
    make_customer(ci_catalog, tier="team")
    check(ci_catalog)  # builds and caches the snapshot
    client = ci_catalog.api()
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/v1/entitlements/check",
            {"customer": "c1", "feature": "private_projects"},
            content_type="application/json",
        )
    assert response.status_code == 200
    assert [q["sql"] for q in queries.captured_queries] == []


@pytest.mark.parametrize(
    "body, code, status",
    [
        ({"customer": "nobody", "feature": "sso"}, "unknown_customer", 404),
        ({"customer": "c1", "feature": "warp_drive"}, "unknown_feature", 400),
        ({"customer": "c1", "feature": "sso", "quantity": 0}, "invalid_request", 400),
        ({"customer": "c1", "feature": "sso", "quantity": -3}, "invalid_request", 400),
        ({"customer": "c1", "feature": "sso", "quantity": "1"}, "invalid_request", 400),
        ({"customer": "c1", "feature": "sso", "quantity": 1.5}, "invalid_request", 400),
        ({"customer": "c1", "feature": "sso", "quantity": True}, "invalid_request", 400),
        ({"customer": "c1"}, "invalid_request", 400),
        ({"feature": "sso"}, "invalid_request", 400),
        ({"customer": 7, "feature": "sso"}, "invalid_request", 400),
        (["c1", "sso"], "invalid_request", 400),
    ],
)
def test_bad_checks_are_clear_4xx(ci_catalog, body, code, status):
    make_customer(ci_catalog)
    response = ci_catalog.api().post("/api/v1/entitlements/check", body, content_type="application/json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_overrides_from_the_api(ci_catalog):
    make_customer(ci_catalog)
    api = ci_catalog.api()
    put = api.put(
        "/api/v1/customers/c1/overrides/sso",
        {"enabled": True, "note": "beta tester"},
        content_type="application/json",
    )
    assert put.status_code == 200 and put.json()["features"]["sso"] == {
        "kind": "boolean",
        "enabled": True,
        "override": True,
    }
    assert check(ci_catalog, feature="sso").json()["allowed"] is True
    api.put("/api/v1/customers/c1/overrides/private_projects", {"limit": 2}, content_type="application/json")
    assert check(ci_catalog, feature="private_projects", quantity=2).json()["allowed"] is True
    assert check(ci_catalog, feature="private_projects", quantity=3).json()["reason"] == "limit_reached"
    api.put(
        "/api/v1/customers/c1/overrides/build_minutes",
        {"limit": "unlimited"},
        content_type="application/json",
    )
    assert check(ci_catalog, feature="build_minutes", quantity=10**6).json()["allowed"] is True
    assert api.delete("/api/v1/customers/c1/overrides/sso").status_code == 204
    assert check(ci_catalog, feature="sso").json()["allowed"] is False
    bad = api.put("/api/v1/customers/c1/overrides/sso", {"limit": -1}, content_type="application/json")
    assert bad.status_code == 400
    unknown = api.put(
        "/api/v1/customers/c1/overrides/nope", {"enabled": True}, content_type="application/json"
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_feature"


def test_expired_override_stops_counting(ci_catalog):
    make_customer(ci_catalog)
    ci_catalog.api().put(
        "/api/v1/customers/c1/overrides/sso",
        {"enabled": True, "expires_at": (timezone.now() + dt.timedelta(seconds=1.5)).isoformat()},
        content_type="application/json",
    )
    assert check(ci_catalog, feature="sso").json()["allowed"] is True  # now cached
    time.sleep(1.6)
    # the cached snapshot knows when the override ends: no invalidation is needed
    assert check(ci_catalog, feature="sso").json()["allowed"] is False
    with tenant_context(ci_catalog.tenant):
        assert EntitlementOverride.objects.count() == 1  # the row stays, as history


def test_catalog_change_reaches_cached_snapshots(ci_catalog):
    from billing.tiers.catalog import catalog_import
    from tests.conftest import CATALOGS

    make_customer(ci_catalog)
    assert check(ci_catalog, feature="concurrent_jobs", quantity=2).json()["allowed"] is False
    text = (
        (CATALOGS / "ci-service.yaml").read_text().replace("concurrent_jobs: 1\n", "concurrent_jobs: 2\n", 1)
    )
    with tenant_context(ci_catalog.tenant):
        catalog_import(text=text)
    assert check(ci_catalog, feature="concurrent_jobs", quantity=2).json()["allowed"] is True


def test_tenant_b_cannot_check_tenant_a_customers(ci_catalog, beta):
    make_customer(ci_catalog)
    assert check(beta, feature="sso").status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/entitlements/check", "/api/v1/keys/verify"])
def test_hot_paths_speak_the_same_errors(ci_catalog, path):
    api = ci_catalog.api()
    malformed = api.post(path, '{"customer": ', content_type="application/json")
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"
    assert api.post(path, "customer=c1", content_type="application/x-www-form-urlencoded").status_code == 415
    wrong_method = api.get(path)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    anonymous = ci_catalog.client().post(path, {}, content_type="application/json")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    bad_key = ci_catalog.api("mk_test_" + "z" * 40).post(path, {}, content_type="application/json")
    assert bad_key.status_code == 401 and bad_key.json()["error"]["code"] == "invalid_api_key"


def test_read_only_integrator_key_may_check(ci_catalog):
    from accounts.services import api_key_create

    make_customer(ci_catalog)
    with tenant_context(ci_catalog.tenant):
        _, read_only = api_key_create(name="gateway", scopes=["read"])
    response = ci_catalog.api(read_only).post(
        "/api/v1/entitlements/check", {"customer": "c1", "feature": "sso"}, content_type="application/json"
    )
    assert response.status_code == 200
