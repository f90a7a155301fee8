import os

import pytest
from django.test import Client


def test_healthz_answers_for_any_host(db):
    for host in ("localhost", "alpha.test", "unknown.example"):
        response = Client(HTTP_HOST=host).get("/healthz")
        assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_database_redis_and_broker(db):
    body = Client().get("/readyz").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "broker"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_is_503_when_redis_is_down(db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False and body["checks"]["broker"]["ok"] is False


def test_metrics_count_redis_fallbacks_on_the_operator_host(ci_catalog, monkeypatch):
    from kernel import redis as monetize_redis

    ci_catalog.api().post("/api/v1/customers", {"external_id": "m1"}, content_type="application/json")
    monkeypatch.setattr(
        monetize_redis, "_client", lambda: monetize_redis.make_client("redis://127.0.0.1:1/0")
    )
    ci_catalog.api().post(
        "/api/v1/entitlements/check", {"customer": "m1", "feature": "sso"}, content_type="application/json"
    )
    body = Client(HTTP_HOST="localhost").get("/metrics").content.decode()
    assert 'monetize_redis_fallbacks_total{component="entitlements"}' in body
    assert 'monetize_entitlement_checks_total{reason="not_in_tier"}' in body
    assert ci_catalog.client().get("/metrics").status_code == 404  # not on tenant hosts


@pytest.mark.django_db
def test_metrics_are_not_empty_on_the_first_scrape_of_a_fresh_process(tmp_path):
    """`make run` empties PROMETHEUS_MULTIPROC_DIR at each start: a new worker's first scrape must
    already show the series (issue 10, a newcomer's first hour)."""
    import os
    import subprocess
    import sys

    from tests.conftest import _test_database_url

    probe = (
        "import django; django.setup(); from django.test import Client; "
        "print(Client(HTTP_HOST='localhost').get('/metrics').content.decode())"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "monetize.settings_test", "DATABASE_URL": _test_database_url(),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "monetize_up 1.0" in out.stdout
    assert 'monetize_entitlement_checks_total{reason="ok"} 0.0' in out.stdout


def test_a_missing_multiprocess_directory_is_created_not_a_crash(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR naming a directory that does not exist (a fresh machine, a cleaned
    .data/) used to fail every import of the metrics module, so every request."""
    import subprocess
    import sys

    missing = tmp_path / "not" / "yet"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(missing),
        "DJANGO_SETTINGS_MODULE": "monetize.settings",
    }
    code = "import kernel.metrics as m; m.REDIS_FALLBACKS.labels('x').inc(); print('ok')"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-800:]
    assert missing.is_dir() and any(missing.iterdir())
