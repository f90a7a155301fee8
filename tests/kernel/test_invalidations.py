"""Invalidations that fail while Redis is away are kept (kernel.invalidations) and replayed when it
answers again: a revoked key stops verifying and a changed override is seen within seconds, not
after the cache TTL. Redis is a private redis-server frozen with SIGSTOP while the breaker is open
(a busy process: every invalidation is skipped by the breaker, none reaches Redis)."""

import time

from django_tenants.utils import tenant_context

from kernel import redis as kernel_redis
from kernel.models import DeferredInvalidation
from tests.billing.test_customer_keys import create_key, verify
from tests.billing.test_entitlements import check, make_customer


def _redis_away(private_redis, fixture, key=None):
    """Freeze Redis and let one request trip the breaker, as traffic would."""
    private_redis.stop()
    if key:
        verify(fixture, key)
    else:
        check(fixture, feature="sso")
    assert kernel_redis.is_open()


def _redis_back(private_redis, settings):
    private_redis.cont()
    time.sleep(settings.REDIS_BREAKER_SECONDS + 0.1)


def test_key_revoked_while_redis_is_away_stops_verifying_when_it_answers(
    ci_catalog, private_redis, settings, django_capture_on_commit_callbacks
):
    settings.REDIS_BREAKER_SECONDS = 1
    make_customer(ci_catalog, tier="pro")
    created = create_key(ci_catalog).json()
    assert verify(ci_catalog, created["key"]).status_code == 200  # cached in Redis now

    _redis_away(private_redis, ci_catalog, key=created["key"])
    with django_capture_on_commit_callbacks(execute=True):
        revoked = ci_catalog.api().delete(f"/api/v1/customers/c1/api-keys/{created['id']}")
    assert revoked.status_code == 204
    assert verify(ci_catalog, created["key"]).status_code == 401  # PostgreSQL answers meanwhile

    _redis_back(private_redis, settings)
    assert verify(ci_catalog, created["key"]).status_code == 401  # not the stale cached entry
    assert not kernel_redis.is_open()
    assert not DeferredInvalidation.objects.exists()


def test_override_changed_while_redis_is_away_is_seen_when_it_answers(
    ci_catalog, private_redis, settings, django_capture_on_commit_callbacks
):
    settings.REDIS_BREAKER_SECONDS = 1
    make_customer(ci_catalog)
    assert check(ci_catalog, feature="sso").json()["allowed"] is False  # snapshot cached

    _redis_away(private_redis, ci_catalog)
    with django_capture_on_commit_callbacks(execute=True):
        put = ci_catalog.api().put(
            "/api/v1/customers/c1/overrides/sso", {"enabled": True}, content_type="application/json"
        )
    assert put.status_code == 200

    _redis_back(private_redis, settings)
    assert check(ci_catalog, feature="sso").json()["allowed"] is True
    assert check(ci_catalog, feature="sso").json()["allowed"] is True  # and the rebuilt snapshot caches it


def test_replay_keeps_rows_while_redis_is_still_away(ci_catalog, private_redis):
    from kernel.invalidations import defer, replay

    with tenant_context(ci_catalog.tenant):
        defer("ent", ["c1", "c2"])
        defer("ent", ["c1"])  # the same invalidation twice is one row
    assert DeferredInvalidation.objects.count() == 2
    private_redis.stop()
    assert replay() == 0 and DeferredInvalidation.objects.count() == 2
    private_redis.cont()
    assert replay() == 2 and not DeferredInvalidation.objects.exists()


def test_integrator_key_revoked_while_redis_is_away_stops_when_it_answers(
    alpha, private_redis, settings, django_capture_on_commit_callbacks
):
    from accounts.keys import key_hash
    from accounts.models import IntegratorApiKey
    from accounts.services import api_key_revoke

    settings.REDIS_BREAKER_SECONDS = 1
    client = alpha.api()
    assert client.get("/api/v1/me").status_code == 200  # cached in Redis now
    private_redis.stop()
    assert client.get("/api/v1/me").status_code == 200  # trips the breaker
    with alpha.tenant:
        key = IntegratorApiKey.objects.get(key_hash=key_hash(alpha.api_key))
        with django_capture_on_commit_callbacks(execute=True):
            api_key_revoke(api_key=key)
    _redis_back(private_redis, settings)
    assert client.get("/api/v1/me").status_code == 401
