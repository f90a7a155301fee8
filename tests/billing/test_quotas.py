"""Counters, leases and rate limits: atomic under concurrency, refusals change nothing."""

import datetime as dt

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.entitlements.models import Lease, UsageCounter
from tests.billing.test_entitlements import check, make_customer
from tests.helpers import run_parallel


def counter(fixture, body, feature="private_projects", customer="c1"):
    return fixture.api().post(
        f"/api/v1/customers/{customer}/counters/{feature}", body, content_type="application/json"
    )


def lease(fixture, feature="concurrent_jobs", customer="c1", **body):
    return fixture.api().post(
        f"/api/v1/customers/{customer}/leases/{feature}", body, content_type="application/json"
    )


def test_counter_delta_within_limit_then_refused_unchanged(ci_catalog):
    make_customer(ci_catalog, tier="team")  # private_projects: 10
    assert counter(ci_catalog, {"delta": 7}).json() == {
        "feature": "private_projects",
        "used": 7,
        "limit": 10,
        "remaining": 3,
    }
    assert check(ci_catalog, quantity=3).json()["allowed"] is True
    refused = counter(ci_catalog, {"delta": 4})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "limit_reached"
    assert refused.json()["error"]["details"] == {
        "feature": "private_projects",
        "used": 7,
        "limit": 10,
        "delta": 4,
    }
    with tenant_context(ci_catalog.tenant):
        assert UsageCounter.objects.get().value == 7
    assert counter(ci_catalog, {"delta": -2}).json()["used"] == 5
    assert counter(ci_catalog, {"delta": -6}).json()["error"]["code"] == "counter_underflow"
    assert check(ci_catalog, quantity=5).json()["allowed"] is True
    assert check(ci_catalog, quantity=6).json()["reason"] == "limit_reached"


def test_counter_set_records_a_fact_even_over_the_limit(ci_catalog):
    make_customer(ci_catalog, tier="team")
    assert counter(ci_catalog, {"set": 12}).json() == {
        "feature": "private_projects",
        "used": 12,
        "limit": 10,
        "remaining": 0,
    }
    body = check(ci_catalog).json()
    assert body["allowed"] is False and body["used"] == 12 and body["remaining"] == 0


@pytest.mark.parametrize(
    "body, feature, code",
    [
        ({"delta": 1.5}, "private_projects", "invalid_request"),
        ({"delta": "1"}, "private_projects", "invalid_request"),
        ({"delta": 0}, "private_projects", "invalid_request"),
        ({"set": -1}, "private_projects", "invalid_request"),
        ({"delta": 1, "set": 1}, "private_projects", "invalid_request"),
        ({}, "private_projects", "invalid_request"),
        ({"delta": 1}, "sso", "wrong_feature_kind"),
        ({"delta": 1}, "no_such_feature", "unknown_feature"),
    ],
)
def test_bad_counter_input_changes_nothing(ci_catalog, body, feature, code):
    make_customer(ci_catalog, tier="team")
    response = counter(ci_catalog, body, feature=feature)
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    with tenant_context(ci_catalog.tenant):
        assert not UsageCounter.objects.filter(value__gt=0).exists()


def test_counter_of_a_feature_not_in_tier_is_refused(ci_catalog):
    make_customer(ci_catalog)  # community has private_projects: 0 (enabled, limit 0)
    assert counter(ci_catalog, {"delta": 1}).json()["error"]["code"] == "limit_reached"
    assert counter(ci_catalog, {"delta": 1}, customer="ghost").status_code == 404


def test_counter_delta_with_idempotency_key_applies_once(ci_catalog):
    make_customer(ci_catalog, tier="team")
    for _ in range(3):
        response = ci_catalog.api().post(
            "/api/v1/customers/c1/counters/private_projects", {"delta": 2}, content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="add-2",
        )  # fmt: skip
        assert response.json()["used"] == 2
    with tenant_context(ci_catalog.tenant):
        assert UsageCounter.objects.get().value == 2


def test_parallel_deltas_against_a_limit_grant_exactly_n(live_tenant):
    # given: Team's private_projects limit is 10
    run_parallel(lambda i: make_customer(live_tenant, tier="team"), 1)
    # when: 24 parallel +1 requests, each on its own connection
    statuses = run_parallel(lambda i: counter(live_tenant, {"delta": 1}).status_code, 24)
    # then: exactly 10 succeed and the counter is 10
    assert sorted(statuses) == [200] * 10 + [409] * 14
    assert run_parallel(lambda i: check(live_tenant, quantity=1).json()["used"], 1) == [10]


def test_parallel_lease_acquisitions_grant_exactly_n(live_tenant):
    run_parallel(lambda i: make_customer(live_tenant, tier="team"), 1)  # concurrent_jobs: 3
    statuses = run_parallel(lambda i: lease(live_tenant).status_code, 12)
    assert sorted(statuses) == [201] * 3 + [409] * 9


def test_lease_lifecycle(ci_catalog):
    make_customer(ci_catalog)  # community: concurrent_jobs 1
    first = lease(ci_catalog, ttl=60)
    assert first.status_code == 201
    held = first.json()
    assert held["used"] == 1 and held["limit"] == 1
    refused = lease(ci_catalog)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "limit_reached"
    assert check(ci_catalog, feature="concurrent_jobs").json()["reason"] == "limit_reached"

    renewed = ci_catalog.api().post(
        f"/api/v1/customers/c1/leases/concurrent_jobs/{held['id']}/renew",
        {"ttl": 120},
        content_type="application/json",
    )
    assert renewed.status_code == 200 and renewed.json()["expires_at"] > held["expires_at"]

    assert (
        ci_catalog.api().delete(f"/api/v1/customers/c1/leases/concurrent_jobs/{held['id']}").status_code
        == 204
    )
    assert (
        ci_catalog.api().delete(f"/api/v1/customers/c1/leases/concurrent_jobs/{held['id']}").status_code
        == 204
    )  # twice is fine
    assert check(ci_catalog, feature="concurrent_jobs").json()["allowed"] is True
    gone = ci_catalog.api().post(
        f"/api/v1/customers/c1/leases/concurrent_jobs/{held['id']}/renew", content_type="application/json"
    )
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "lease_expired"
    assert lease(ci_catalog).status_code == 201
    assert (
        ci_catalog.api().delete("/api/v1/customers/c1/leases/concurrent_jobs/not-a-uuid").status_code == 400
    )


def test_expired_lease_frees_its_slot(ci_catalog):
    """A crashed build never holds a concurrent-jobs slot for ever."""
    make_customer(ci_catalog)
    assert lease(ci_catalog, ttl=30).status_code == 201
    assert lease(ci_catalog).status_code == 409
    with tenant_context(ci_catalog.tenant):
        Lease.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert lease(ci_catalog).status_code == 201


def test_lease_needs_a_limit_feature(ci_catalog):
    make_customer(ci_catalog)
    assert lease(ci_catalog, feature="sso").json()["error"]["code"] == "wrong_feature_kind"
    assert lease(ci_catalog, ttl=0).status_code == 400


def _rate_override(fixture, rate="3/minute"):
    fixture.api().put(
        "/api/v1/customers/c1/overrides/api_requests", {"rate": rate}, content_type="application/json"
    )


def test_rate_limit_with_headers(ci_catalog):
    make_customer(ci_catalog)
    _rate_override(ci_catalog)
    responses = [check(ci_catalog, feature="api_requests") for _ in range(4)]
    assert [r.json()["allowed"] for r in responses] == [True, True, True, False]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert all(r["X-RateLimit-Limit"] == "3" for r in responses)
    refused = responses[-1]
    assert refused.json()["reason"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 20 and "Retry-After" not in responses[0]
    assert 0 < int(refused["X-RateLimit-Reset"]) <= 60


def test_rate_limits_are_per_customer_and_tenant(ci_catalog, beta):
    make_customer(ci_catalog)
    make_customer(ci_catalog, "c2")
    _rate_override(ci_catalog, "1/minute")
    assert check(ci_catalog, feature="api_requests").json()["allowed"] is True
    assert check(ci_catalog, feature="api_requests").json()["allowed"] is False
    assert check(ci_catalog, "c2", feature="api_requests").json()["allowed"] is True  # 60/minute, own bucket


def test_parallel_rate_checks_never_over_grant(live_tenant):
    def setup(i):
        live_tenant.api().put(
            "/api/v1/customers/c1/overrides/api_requests", {"rate": "5/hour"}, content_type="application/json"
        )

    run_parallel(setup, 1)
    allowed = run_parallel(lambda i: check(live_tenant, feature="api_requests").json()["allowed"], 20)
    assert allowed.count(True) == 5


def test_redis_down_checks_answer_from_postgres(ci_catalog, monkeypatch):
    from kernel import redis as monetize_redis

    make_customer(ci_catalog, tier="team")
    counter(ci_catalog, {"delta": 4})
    monkeypatch.setattr(
        monetize_redis, "_client", lambda: monetize_redis.make_client("redis://127.0.0.1:1/0")
    )
    body = check(ci_catalog).json()
    assert body["allowed"] is True and body["used"] == 4 and body["limit"] == 10
    assert counter(ci_catalog, {"delta": 6}).status_code == 200
    assert check(ci_catalog).json()["reason"] == "limit_reached"
    rate = check(ci_catalog, feature="api_requests")
    assert rate.status_code == 200 and rate.json()["allowed"] is True  # fail-open is the default


def test_redis_down_rate_limits_fail_closed_when_chosen(ci_catalog, monkeypatch):
    from kernel import redis as monetize_redis
    from tenants.middleware import tenant_cache_clear
    from tenants.models import Tenant

    make_customer(ci_catalog)
    Tenant.objects.filter(pk=ci_catalog.tenant.pk).update(rate_limit_failure_mode="closed")
    tenant_cache_clear()
    monkeypatch.setattr(
        monetize_redis, "_client", lambda: monetize_redis.make_client("redis://127.0.0.1:1/0")
    )
    response = check(ci_catalog, feature="api_requests")
    assert response.status_code == 200
    assert response.json()["reason"] == "rate_limited" and response["Retry-After"] == "1"
    assert check(ci_catalog, feature="concurrent_jobs").json()["allowed"] is True  # limits still answer


def test_old_leases_are_purged(ci_catalog):
    from billing.entitlements.services import leases_purge

    make_customer(ci_catalog)
    lease(ci_catalog)
    with tenant_context(ci_catalog.tenant):
        Lease.objects.update(expires_at=timezone.now() - dt.timedelta(days=8))
        assert leases_purge() == 1
        assert not Lease.objects.exists()


def test_a_rejected_integrator_key_never_takes_a_rate_token(ci_catalog):
    from accounts.keys import key_hash
    from accounts.models import IntegratorApiKey
    from accounts.services import api_key_create, api_key_rotate

    make_customer(ci_catalog)
    _rate_override(ci_catalog, "1/minute")
    with tenant_context(ci_catalog.tenant):
        _, write_only = api_key_create(name="writer", scopes=["write"])
        new, new_secret = api_key_rotate(
            api_key=IntegratorApiKey.objects.get(key_hash=key_hash(ci_catalog.api_key)), grace_seconds=0
        )
    body = {"customer": "c1", "feature": "api_requests"}
    for _ in range(2):  # the second time its (expired) entry is cached
        assert (
            ci_catalog.api()
            .post("/api/v1/entitlements/check", body, content_type="application/json")
            .status_code
            == 401
        )
    for _ in range(2):
        response = ci_catalog.api(write_only).post(
            "/api/v1/entitlements/check", body, content_type="application/json"
        )
        assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
    allowed = ci_catalog.api(new_secret).post(
        "/api/v1/entitlements/check", body, content_type="application/json"
    )
    assert allowed.json()["allowed"] is True  # the one token per minute was still there
