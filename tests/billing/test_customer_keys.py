import re

from django.db import connection
from django_tenants.utils import tenant_context

from billing.entitlements.models import CustomerApiKey
from tests.billing.test_entitlements import make_customer


def create_key(fixture, customer="c1", **headers):
    return fixture.api().post(
        f"/api/v1/customers/{customer}/api-keys",
        {"name": "laptop"},
        content_type="application/json",
        **headers,
    )


def verify(fixture, key, feature=None, **extra):
    body = {"key": key, **({"feature": feature} if feature else {}), **extra}
    return fixture.api().post("/api/v1/keys/verify", body, content_type="application/json")


def test_create_list_and_verify(ci_catalog):
    make_customer(ci_catalog, tier="pro")
    created = create_key(ci_catalog)
    assert created.status_code == 201
    body = created.json()
    assert re.fullmatch(r"sk-alpha-[0-9a-f]{32}", body["key"])
    assert body["prefix"] == body["key"][: len("sk-alpha-") + 6] and body["name"] == "laptop"
    listed = ci_catalog.api().get("/api/v1/customers/c1/api-keys").json()["results"]
    assert [k["prefix"] for k in listed] == [body["prefix"]] and "key" not in listed[0]
    with tenant_context(ci_catalog.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(k)::text FROM entitlements_customerapikey k")
        assert body["key"] not in cursor.fetchone()[0]

    plain = verify(ci_catalog, body["key"])
    assert plain.status_code == 200
    assert plain.json() == {
        "valid": True,
        "customer": "c1",
        "tier": "pro",
        "entitlement": None,
        "rate_limit": None,
    }

    gated = verify(ci_catalog, body["key"], feature="api_requests")
    assert gated.status_code == 200
    assert gated.json()["entitlement"]["allowed"] is True
    assert gated.json()["rate_limit"]["limit"] == 1000 and gated["X-RateLimit-Limit"] == "1000"
    with tenant_context(ci_catalog.tenant):
        from accounts.services import api_keys_last_used_flush

        assert CustomerApiKey.objects.get().last_used_at is None  # no write on the request path
        api_keys_last_used_flush()
        assert CustomerApiKey.objects.get().last_used_at is not None


def test_verify_maps_decisions_to_status_codes(ci_catalog):
    make_customer(ci_catalog)  # community
    key = create_key(ci_catalog).json()["key"]
    denied = verify(ci_catalog, key, feature="sso")
    assert denied.status_code == 403 and denied.json()["entitlement"]["reason"] == "not_in_tier"
    ci_catalog.api().put(
        "/api/v1/customers/c1/overrides/api_requests", {"rate": "1/minute"}, content_type="application/json"
    )
    assert verify(ci_catalog, key, feature="api_requests").status_code == 200
    limited = verify(ci_catalog, key, feature="api_requests")
    assert limited.status_code == 429 and limited["Retry-After"] and limited["X-RateLimit-Remaining"] == "0"
    assert limited.json()["valid"] is True and limited.json()["entitlement"]["reason"] == "rate_limited"
    assert verify(ci_catalog, key, feature="nope").status_code == 400


def test_revoked_rotated_unknown_and_foreign_keys_are_401(ci_catalog, beta):
    make_customer(ci_catalog)
    created = create_key(ci_catalog).json()
    assert verify(ci_catalog, created["key"]).status_code == 200  # cached now
    assert verify(beta, created["key"]).status_code == 401  # another tenant's key
    rotated = ci_catalog.api().post(f"/api/v1/customers/c1/api-keys/{created['id']}/rotate")
    assert rotated.status_code == 201 and rotated.json()["key"] != created["key"]
    assert verify(ci_catalog, created["key"]).status_code == 401
    assert verify(ci_catalog, rotated.json()["key"]).status_code == 200
    assert ci_catalog.api().delete(f"/api/v1/customers/c1/api-keys/{rotated.json()['id']}").status_code == 204
    response = verify(ci_catalog, rotated.json()["key"])
    assert response.status_code == 401 and response.json()["valid"] is False
    for bad in ("sk-alpha-" + "0" * 32, "nonsense", "sk-" + "x" * 300):
        assert verify(ci_catalog, bad).status_code == 401
    assert verify(ci_catalog, "").status_code == 400
    assert (
        ci_catalog.api().post("/api/v1/keys/verify", {"key": 5}, content_type="application/json").status_code
        == 400
    )
    assert ci_catalog.api().delete("/api/v1/customers/c1/api-keys/999999").status_code == 404
    rotate_revoked = ci_catalog.api().post(f"/api/v1/customers/c1/api-keys/{created['id']}/rotate")
    assert rotate_revoked.status_code == 409


def test_key_creation_replay_never_reveals_the_secret_again(ci_catalog):
    make_customer(ci_catalog)
    first = create_key(ci_catalog, HTTP_IDEMPOTENCY_KEY="new-key-1")
    second = create_key(ci_catalog, HTTP_IDEMPOTENCY_KEY="new-key-1")
    assert first.json()["key"].startswith("sk-alpha-")
    assert second.status_code == 201 and second["Idempotent-Replayed"] == "true"
    assert second.json()["key"] is None and second.json()["id"] == first.json()["id"]
    with tenant_context(ci_catalog.tenant):
        assert CustomerApiKey.objects.count() == 1
        from accounts.models import IdempotencyRecord

        assert first.json()["key"] not in str(IdempotencyRecord.objects.get().response_body)


def test_keys_of_an_unknown_customer_are_404(ci_catalog):
    assert create_key(ci_catalog, customer="ghost").status_code == 404
    assert ci_catalog.api().get("/api/v1/customers/ghost/api-keys").status_code == 404


def test_verify_answers_from_postgres_when_redis_is_down(ci_catalog, monkeypatch):
    from kernel import redis as monetize_redis

    make_customer(ci_catalog, tier="team")
    key = create_key(ci_catalog).json()["key"]
    assert verify(ci_catalog, key, feature="private_projects").status_code == 200  # cached
    monkeypatch.setattr(
        monetize_redis, "_client", lambda: monetize_redis.make_client("redis://127.0.0.1:1/0")
    )
    response = verify(ci_catalog, key, feature="private_projects")
    assert response.status_code == 200 and response.json()["tier"] == "team"
    assert verify(ci_catalog, "sk-alpha-" + "1" * 32).status_code == 401
