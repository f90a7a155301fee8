"""Shared fixtures.

The test database gets, once per session and committed: the public tenant row, the template schema,
and two tenants -- `alpha` (one owner) and `beta` (an owner and a customer) -- provisioned through
the real service. Each test then runs in a transaction that is rolled back, so tests may change
anything in those schemas freely.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.roles import Role
from accounts.services import ProvisionedTenant, tenant_provision, user_create
from billing.providers.selectors import provider_accounts_cache_clear
from kernel.redis import reset as redis_breaker_reset
from tenants.middleware import tenant_cache_clear
from tenants.services import tenant_public_ensure, tenant_template_ensure

PASSWORD = "a-strong-test-password-1"


@dataclass(frozen=True)
class TenantFixture:
    tenant: object
    host: str
    api_key: str
    owner_email: str

    def client(self, **extra) -> Client:
        return Client(HTTP_HOST=self.host, **extra)

    def api(self, key: str | None = None) -> Client:
        return Client(HTTP_HOST=self.host, HTTP_AUTHORIZATION=f"Bearer {key or self.api_key}")


def _as_fixture(provisioned: ProvisionedTenant) -> TenantFixture:
    return TenantFixture(
        tenant=provisioned.tenant,
        host=provisioned.domain,
        api_key=provisioned.api_key_secret,
        owner_email=provisioned.owner.email,
    )


def _purge_broker() -> None:
    from monetize.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()


def pytest_collection_modifyitems(items):
    # pytest-django creates the test database only for tests that ask for it; tests that work on
    # committed data through their own connections (live_tenant, worker) must ask too, or a run
    # of only those would touch the development database
    for item in items:
        if {"live_tenant", "worker"} & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker(
            "django_db"
        ):
            item.add_marker(pytest.mark.django_db)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    name = connection.settings_dict["NAME"]
    if not name.startswith("test_"):  # never seed fixtures into a real database
        pytest.exit(f"refusing to set up test tenants in the non-test database {name!r}", returncode=3)
    with django_db_blocker.unblock():
        cache.clear()  # the test cache database
        _purge_broker()  # messages a killed earlier run may have left
        tenant_public_ensure(domain="localhost")
        tenant_template_ensure()
        alpha = tenant_provision(
            slug="alpha",
            name="Alpha",
            domain="alpha.test",
            owner_email="owner@alpha.test",
            owner_password=PASSWORD,
        )
        beta = tenant_provision(
            slug="beta",
            name="Beta",
            domain="beta.test",
            owner_email="owner@beta.test",
            owner_password=PASSWORD,
        )
        with tenant_context(beta.tenant):
            user_create(email="customer@beta.test", password=PASSWORD, role=Role.CUSTOMER)
        connection.set_schema_to_public()
    pytest.tenants = {"alpha": _as_fixture(alpha), "beta": _as_fixture(beta)}
    yield


@pytest.fixture
def alpha(db) -> TenantFixture:
    return pytest.tenants["alpha"]


@pytest.fixture
def beta(db) -> TenantFixture:
    return pytest.tenants["beta"]


@pytest.fixture(autouse=True)
def _reset_schema():
    tenant_cache_clear()
    redis_breaker_reset()
    provider_accounts_cache_clear()
    yield
    connection.set_schema_to_public()
    tenant_cache_clear()
    # test transactions roll back, Redis does not: drop what a test cached so the next starts clean
    cache.clear()


@pytest.fixture
def in_alpha(alpha):
    with tenant_context(alpha.tenant):
        yield alpha


CATALOGS = Path(__file__).resolve().parent.parent / "config" / "tiers"


@pytest.fixture
def ci_catalog(alpha):
    """alpha with the CI-service catalog (Community default, Team, Pro, Enterprise)."""
    from billing.tiers.catalog import catalog_import

    with tenant_context(alpha.tenant):
        catalog_import(text=(CATALOGS / "ci-service.yaml").read_text(), filename="ci-service.yaml")
    return alpha


@pytest.fixture
def live_tenant(django_db_setup, django_db_blocker):
    """A committed tenant with the CI catalog and a customer `c1` (Community), for tests whose
    requests run on their own connections in parallel. Dropped afterwards. Use it without `db`:
    do all database work through tests.helpers.committed/run_parallel."""
    import secrets

    from billing.memberships.services import customer_upsert
    from billing.tiers.catalog import catalog_import
    from tenants.services import tenant_delete
    from tests.helpers import committed

    slug = f"live-{secrets.token_hex(3)}"
    with django_db_blocker.unblock():
        provisioned = committed(lambda: tenant_provision(slug=slug, name="Live", domain=f"{slug}.test"))

        def seed():
            with tenant_context(provisioned.tenant):
                catalog_import(text=(CATALOGS / "ci-service.yaml").read_text())
                customer_upsert(external_id="c1")

        committed(seed)
        try:
            yield TenantFixture(
                tenant=provisioned.tenant,
                host=provisioned.domain,
                api_key=provisioned.api_key_secret,
                owner_email="",
            )
        finally:
            committed(lambda: tenant_delete(tenant=provisioned.tenant))


@contextmanager
def celery_worker(*, queues: str, name: str, log: Path, broker: str | None = None):
    """A real Celery worker process (solo pool) on the test database and the test broker (or
    `broker`: a private one, out of the session worker's reach), consuming `queues`; stopped on exit."""
    import os
    import subprocess
    import sys
    import time

    from monetize.celery import app as celery_app

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "monetize.settings_test",
        "DATABASE_URL": _test_database_url(),
        **({"CELERY_BROKER_URL": broker} if broker else {}),
    }
    hostname = f"{name}-{os.getpid()}@localhost"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "monetize", "worker", "--pool", "solo", "--queues", queues,
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", hostname],
            cwd=Path(__file__).resolve().parent.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not celery_app.control.ping(destination=[hostname], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{log.read_text()[-3000:]}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def worker(django_db_setup, tmp_path_factory):
    """A real Celery worker process on the test database and the test broker (every queue)."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with celery_worker(queues="inbox,deliveries,housekeeping", name="pytest", log=log) as process:
        process.log = log  # shown under a failed test that used it (pytest_runtest_makereport)
        yield process


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used the session's Celery worker shows the end of the worker's log: what it
    was busy with is usually why an event was late."""
    outcome = yield
    report = outcome.get_result()
    process = getattr(item, "funcargs", {}).get("worker")
    if report.failed and process is not None and getattr(process, "log", None):
        try:
            tail = process.log.read_text()[-6000:]
        except OSError:
            return
        report.sections.append(("celery worker log (last 6,000 characters)", tail))


def _test_database_url() -> str:
    from urllib.parse import quote

    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"postgres://{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _wait_for_port(port: int, process, log: Path, seconds: float = 30) -> None:
    import socket
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(log.read_text()[-3000:]) from None
            time.sleep(0.1)


# gunicorn listens here too, so a test can give the live tenant an IP address as a domain (for
# clients that cannot be told a Host header, such as localstripe's webhook sender); 127.0.0.1 is the
# operator's bare host
SECOND_LOOPBACK = "127.0.0.2"


@pytest.fixture
def gunicorn(live_tenant, tmp_path):
    """The app under gunicorn (2 workers) on the test database; yields its port. Requests must name
    the tenant's host (live_tenant.host) in the Host header."""
    import os
    import subprocess
    import sys

    from bench._harness import free_port

    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "monetize.settings_test",
        "DATABASE_URL": _test_database_url(),
    }
    log = tmp_path / "gunicorn.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "monetize.wsgi", "--bind", f"127.0.0.1:{port}", "--bind", f"{SECOND_LOOPBACK}:{port}",
             "--workers", "2"],
            cwd=Path(__file__).resolve().parent.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for_port(port, process, log)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def granian(live_tenant, tmp_path):
    """The app as the Procfile serves it by default (scripts/web.sh: Granian, one thread a worker,
    restarted if it exits), with 2 workers whatever the cores (the script's default is one more than
    the cores, at most 8), on the test database; yields (port, log path, the script's process)."""
    import os
    import subprocess
    import sys
    import time

    from bench._harness import free_port

    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PORT": str(port),
        "WEB_HOST": "127.0.0.1",
        "WEB_SERVER": "granian",
        "WEB_CONCURRENCY": "2",
        "DJANGO_SETTINGS_MODULE": "monetize.settings_test",
        "DATABASE_URL": _test_database_url(),
    }
    log = tmp_path / "web.log"
    root = Path(__file__).resolve().parent.parent
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["bash", str(root / "scripts" / "web.sh")], cwd=root, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for_port(port, process, log)
        deadline = time.monotonic() + 60  # both workers loaded the app (the port answers before)
        while log.read_text().count("Started worker") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        yield port, log, process
    finally:
        process.terminate()
        process.wait(timeout=60)


LOCALSTRIPE_VERSION = "1.15.10"


def localstripe_executable() -> Path:
    """localstripe (a fake, stateful Stripe server; GPL) lives in its own virtualenv under .data/,
    never in the app's: it is a development-only process that the tests talk to over HTTP."""
    import os
    import subprocess
    import sys

    venv = Path(
        os.environ.get("LOCALSTRIPE_VENV") or Path(__file__).resolve().parent.parent / ".data" / "localstripe"
    )
    executable = venv / "bin" / "localstripe"
    stamp = venv / ".version"
    if not executable.exists() or not stamp.exists() or stamp.read_text() != LOCALSTRIPE_VERSION:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", f"localstripe=={LOCALSTRIPE_VERSION}"],
            check=True,
        )  # fmt: skip
        stamp.write_text(LOCALSTRIPE_VERSION)
    return executable


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    """A localstripe server started from scratch; yields its base URL."""
    import subprocess

    from bench._harness import free_port

    port = free_port()
    workdir = tmp_path_factory.mktemp("localstripe")
    log = workdir / "localstripe.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(localstripe_executable()), "--port", str(port), "--from-scratch"],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def private_redis(monkeypatch):
    """kernel.redis talks to a private redis-server (tests.helpers.PrivateRedis) for this test."""
    from kernel import redis as kernel_redis
    from tests.helpers import PrivateRedis

    server = PrivateRedis()
    pool = kernel_redis.make_pool(server.url)  # the same connections as the real one's
    monkeypatch.setattr(kernel_redis, "_pool", lambda: pool)
    kernel_redis.reset()
    try:
        yield server
    finally:
        from kernel import localcache

        localcache.reset()  # its listener follows the pool: stop it before the server goes
        pool.disconnect()
        server.close()
        kernel_redis.reset()


@pytest.fixture
def private_broker():
    """The Celery app publishes to a private redis-server (tests.helpers.PrivateRedis) for this test."""
    from monetize.celery import app
    from tests.helpers import PrivateRedis

    def fresh_pools(*, close: bool) -> None:
        # kombu keeps one pool per broker URL for the process: close only the private one (a closed
        # pool for the real broker would be handed back to every later test)
        if close and app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    server, url = PrivateRedis(), app.conf.broker_url
    app.conf.broker_url = server.url
    fresh_pools(close=False)
    try:
        yield server
    finally:
        server.close()
        app.conf.broker_url = url
        fresh_pools(close=True)
