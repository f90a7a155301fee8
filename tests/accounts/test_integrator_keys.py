import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.exceptions import ApiKeyInactive
from accounts.keys import key_hash
from accounts.models import IntegratorApiKey
from accounts.services import api_key_create, api_key_revoke, api_key_rotate


def _error(response) -> dict:
    return response.json()["error"]


def test_missing_key_is_401_with_json_error_and_challenge(alpha):
    response = alpha.client().get("/api/v1/me")
    assert response.status_code == 401
    assert _error(response)["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Basic abc", "Bearer nonsense", "Bearer mk_test_" + "a" * 40, "Token mk_test_x"],
)
def test_bad_keys_are_401(alpha, header):
    response = alpha.client(HTTP_AUTHORIZATION=header).get("/api/v1/me")
    assert response.status_code == 401
    assert set(_error(response)) == {"code", "message", "details"}


def test_me_returns_tenant_and_key(alpha):
    body = alpha.api().get("/api/v1/me").json()
    assert body["tenant"]["slug"] == "alpha"
    assert body["api_key"]["name"] == "Default"
    assert body["api_key"]["scopes"] == ["read", "write"]
    assert body["api_key"]["prefix"] == alpha.api_key[:12]


def test_key_is_stored_hashed_with_visible_prefix(in_alpha):
    key, secret = api_key_create(name="ci")
    assert secret.startswith("mk_test_") and len(secret) == 48
    row = IntegratorApiKey.objects.get(pk=key.pk)
    assert row.key_hash == key_hash(secret) and row.prefix == secret[:12]
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(k)::text FROM accounts_integratorapikey k")
        assert all(secret not in row[0] for row in cursor.fetchall())


def test_revoked_key_is_401_at_once(alpha, django_capture_on_commit_callbacks):
    client = alpha.api()
    assert client.get("/api/v1/me").status_code == 200  # now cached in Redis
    with alpha.tenant:
        key = IntegratorApiKey.objects.get(key_hash=key_hash(alpha.api_key))
        with django_capture_on_commit_callbacks(execute=True):
            api_key_revoke(api_key=key)
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_api_key"


def test_rotated_key_works_during_grace_then_expires(alpha, django_capture_on_commit_callbacks):
    with alpha.tenant:
        old = IntegratorApiKey.objects.get(key_hash=key_hash(alpha.api_key))
        with django_capture_on_commit_callbacks(execute=True):
            new, new_secret = api_key_rotate(api_key=old, grace_seconds=3600)
    assert alpha.api().get("/api/v1/me").status_code == 200
    assert alpha.api(new_secret).get("/api/v1/me").json()["api_key"]["id"] == new.pk

    with alpha.tenant:
        with django_capture_on_commit_callbacks(execute=True):
            IntegratorApiKey.objects.filter(pk=old.pk).update(
                expires_at=timezone.now() - dt.timedelta(seconds=1)
            )
            from kernel import keycache

            keycache.forget("ik", old.key_hash)
    assert alpha.api().get("/api/v1/me").status_code == 401
    assert alpha.api(new_secret).get("/api/v1/me").status_code == 200


def test_rotating_twice_or_a_revoked_key_is_refused(in_alpha):
    key, _ = api_key_create(name="x")
    api_key_rotate(api_key=key)
    with pytest.raises(ApiKeyInactive):
        api_key_rotate(api_key=key)
    other, _ = api_key_create(name="y")
    api_key_revoke(api_key=other)
    with pytest.raises(ApiKeyInactive):
        api_key_rotate(api_key=other)


def test_last_used_is_tracked_without_a_write_per_request(alpha):
    from accounts.services import api_keys_last_used_flush

    client = alpha.api()
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert client.get("/api/v1/me").status_code == 200
    assert not [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    with alpha.tenant:
        key = IntegratorApiKey.objects.get(key_hash=key_hash(alpha.api_key))
        assert key.last_used_at is None
        assert api_keys_last_used_flush() == 1  # the beat job, once a minute
        key.refresh_from_db()
        assert key.last_used_at is not None
        assert api_keys_last_used_flush() == 0  # nothing new recorded


def test_read_scope_key_cannot_write(alpha):
    with alpha.tenant:
        _, secret = api_key_create(name="ro", scopes=["read"])
    client = alpha.api(secret)
    assert client.get("/api/v1/me").status_code == 200
    response = client.post("/api/v1/customers", {"external_id": "c1"}, content_type="application/json")
    assert response.status_code == 403
    assert _error(response)["code"] == "insufficient_scope"


def test_keys_still_work_from_postgres_when_redis_is_down(alpha, monkeypatch):
    from kernel import redis as monetize_redis

    dead = monetize_redis.make_client("redis://127.0.0.1:1/0")
    monkeypatch.setattr(monetize_redis, "_client", lambda: dead)
    assert alpha.api().get("/api/v1/me").status_code == 200
    assert monetize_redis._open_until > 0  # breaker open: the next calls skip Redis
    assert alpha.api().get("/api/v1/me").status_code == 200
    assert alpha.api("mk_test_" + "b" * 40).get("/api/v1/me").status_code == 401
