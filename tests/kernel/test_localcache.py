"""Process-local copies of hot keys (kernel.localcache), kept coherent by Redis's client-side
caching: writes from other connections (other processes), flushes, expiry, a lost listener or
tracking connection, a frozen Redis and a read racing an invalidation, each against a private
redis-server. Then the check endpoint answered from the copies: no Redis command per check, and
every change made elsewhere seen on the next check; key verification likewise."""

import time

import pytest
import redis

from kernel import keycache, localcache
from kernel import redis as kernel_redis
from tests.billing.test_customer_keys import create_key, verify
from tests.billing.test_entitlements import check, make_customer


@pytest.fixture
def local(private_redis, settings):
    settings.LOCAL_CACHE_SECONDS = 5
    localcache.reset()
    other = redis.Redis.from_url(private_redis.url)  # another process's connection
    _wait_live()
    yield other
    localcache.reset()
    other.close()


def _wait_live(timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if localcache.get([]) is not None:
            return
        time.sleep(0.02)
    raise AssertionError("the listener never became live")


def _commands(other) -> int:
    """Commands Redis processed, but for the listener's pings and the INFOs that ask."""
    stats = other.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_ping", "cmdstat_info"))


def _eventually(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


def test_answers_from_copies_until_another_connection_writes(local):
    local.set("k1", "one")
    assert localcache.get(["k1", "k2"]) == [b"one", None]
    before = _commands(local)
    for _ in range(20):
        assert localcache.get(["k1", "k2"]) == [b"one", None]
    assert _commands(local) == before  # twenty answers, no command

    # Redis writes the invalidation in the same pass as the writer's reply: it is on our
    # listener's socket microseconds later, and get() applies it before answering
    local.set("k1", "two")
    _eventually(lambda: localcache.get(["k1", "k2"]) == [b"two", None])
    local.set("k2", "new")  # a missing key is tracked too
    _eventually(lambda: localcache.get(["k1", "k2"]) == [b"two", b"new"])
    local.delete("k1")
    _eventually(lambda: localcache.get(["k1"]) == [None])


def test_flush_and_expiry_drop_copies(local):
    local.set("k1", "one")
    local.set("k2", "two", px=300)
    assert localcache.get(["k1", "k2"]) == [b"one", b"two"]
    _eventually(lambda: localcache.get(["k2"]) == [None], timeout=3)  # expired in Redis: the copy goes
    local.flushdb()
    _eventually(lambda: localcache.get(["k1"]) == [None])


def test_this_process_forgets_its_own_writes_at_once(local):
    local.set("k1", "one")
    assert localcache.get(["k1"]) == [b"one"]
    kernel_redis.get_redis().set("k1", "two")
    localcache.forget(["k1"])  # what keycache.put/forget and the snapshot invalidation call
    assert localcache.get(["k1"]) == [b"two"]


def test_a_lost_listener_stops_local_answers_and_drops_copies(local):
    local.set("k1", "one")
    assert localcache.get(["k1"]) == [b"one"]
    local.client_kill_filter(_type="pubsub")  # the listener is gone: invalidations would be lost
    _eventually(lambda: localcache.stats()["generation"] > 1 or not localcache.stats()["live"])
    local.set("k1", "two")
    _eventually(lambda: localcache.get(["k1"]) == [b"two"], timeout=5)  # back, read afresh
    assert localcache.stats()["live"]


def test_a_tracking_connection_redis_closed_drops_every_copy(local):
    local.set("k1", "one")
    assert localcache.get(["k1"]) == [b"one"]
    local.client_kill_filter(_type="normal", skipme=True)  # our tracking connection: no invalidations now
    local.set("k1", "two")
    # the next read notices the closed connection (its socket reads as ended) and drops the copies
    _eventually(lambda: localcache.get(["k1"]) == [b"two"], timeout=1)
    local.set("k1", "three")
    _eventually(lambda: localcache.get(["k1"]) == [b"three"])  # a new connection tracks afresh


def test_tracking_lost_unnoticed_is_bounded_by_the_copy_age(local, settings):
    settings.LOCAL_CACHE_SECONDS = 1
    local.set("k1", "one")
    assert localcache.get(["k1"]) == [b"one"]
    # tracking turned off on a connection that stays open: nothing tells this process any more
    conn = localcache._local.conn[1]
    conn.call("CLIENT", "TRACKING", "OFF")
    local.set("k1", "two")
    time.sleep(0.3)
    assert localcache.get(["k1"]) == [b"one"]  # not told: the copy stays, for at most its age
    time.sleep(0.8)
    assert localcache.get(["k1"]) == [b"two"]  # too old: read again


def test_a_frozen_redis_stops_local_answers(local, private_redis, settings):
    local.set("k1", "one")
    assert localcache.get(["k1"]) == [b"one"]
    private_redis.stop()
    try:
        # within ALIVE_SECONDS and a ping the copies are no longer answered: the caller reads Redis,
        # times out and falls back to PostgreSQL (a change made meanwhile can't reach us)
        _eventually(lambda: localcache.get(["k1"]) is None, timeout=localcache.ALIVE_SECONDS + 1.5)
    finally:
        private_redis.cont()
    _eventually(lambda: localcache.get(["k1"]) == [b"one"], timeout=5)


def test_a_read_racing_an_invalidation_stores_nothing(local):
    local.set("k1", "old")
    state = localcache._current()
    real = state.tracking_conn

    def racing():
        conn, generation = real()
        call = conn.call

        def mget_then_write(*args):
            reply = call(*args)  # Redis answered "old" ...
            local.set("k1", "new")  # ... then another process wrote before we stored it
            _eventually(lambda: "k1" not in state.claims)  # the listener took the claim
            return reply

        conn.call = mget_then_write
        return conn, generation

    state.tracking_conn = racing
    try:
        assert localcache.get(["k1"]) == [b"old"]  # this call's answer was right when Redis gave it
    finally:
        del state.tracking_conn
    assert "k1" not in state.entries
    assert localcache.get(["k1"]) == [b"new"]


def test_off_when_no_seconds(private_redis, settings):
    settings.LOCAL_CACHE_SECONDS = 0
    assert localcache.get(["k1"]) is None


def test_checks_answer_from_copies_and_see_changes_made_elsewhere(ci_catalog, local, settings):
    make_customer(ci_catalog, tier="team")
    first = check(ci_catalog)
    assert first.status_code == 200
    assert check(ci_catalog).json() == first.json()  # the second reads the copies
    before = _commands(local)
    for _ in range(10):
        assert check(ci_catalog).json() == first.json()
    assert _commands(local) == before  # ten checks, no Redis command

    # another process changes the snapshot in Redis: the next check here sees it
    key = f"{kernel_redis.key_prefix()}:{ci_catalog.tenant.schema_name}:ent:c1"
    stored = local.get(key)
    local.set(key, stored.replace(b'"limit": 10', b'"limit": 3'))
    _eventually(lambda: check(ci_catalog).json()["limit"] == 3)

    # this process changes the customer's override: the change is seen on the next check
    put = ci_catalog.api().put(
        "/api/v1/customers/c1/overrides/private_projects", {"limit": 7}, content_type="application/json"
    )
    assert put.status_code in (200, 201), put.content
    assert check(ci_catalog).json()["limit"] == 7


def test_an_integrator_key_revoked_elsewhere_stops(ci_catalog, local):
    from accounts.models import IntegratorApiKey

    make_customer(ci_catalog, tier="team")
    assert check(ci_catalog).status_code == 200
    assert check(ci_catalog).status_code == 200  # from the copies
    # another process revokes the key: its row, then its cached entry
    IntegratorApiKey.objects.filter(revoked_at__isnull=True).update(revoked_at="2026-01-01T00:00:00Z")
    local.delete(*local.keys(f"{kernel_redis.key_prefix()}:{ci_catalog.tenant.schema_name}:ik:*"))
    _eventually(lambda: check(ci_catalog).status_code == 401)


def test_verifications_answer_from_copies_and_see_a_key_revoked(ci_catalog, local):
    """/keys/verify from the copies too: the integrator key, the end-user key and its customer's
    snapshot held, no Redis command; an end-user key revoked by another process (its row, then its
    cached entry) or by this one stops verifying on the next call; an unknown key, cached as
    missing, is refused from its copy."""
    from billing.entitlements.models import CustomerApiKey

    make_customer(ci_catalog, tier="team")
    secret = create_key(ci_catalog).json()["key"]
    first = verify(ci_catalog, secret, feature="private_projects")
    assert first.status_code == 200 and first.json()["valid"] is True
    assert verify(ci_catalog, secret, feature="private_projects").json() == first.json()  # copies now
    before = _commands(local)
    for _ in range(10):
        assert verify(ci_catalog, secret, feature="private_projects").json() == first.json()
        assert verify(ci_catalog, secret).json()["valid"] is True
    assert _commands(local) == before  # twenty verifications, no Redis command

    unknown = "sk-alpha-" + "0" * 32
    assert verify(ci_catalog, unknown).status_code == 401  # looked up once, cached as missing
    assert verify(ci_catalog, unknown).status_code == 401
    before = _commands(local)
    assert verify(ci_catalog, unknown).status_code == 401
    assert _commands(local) == before

    # another process revokes the key: its row, then its cached entry
    CustomerApiKey.objects.filter(revoked_at__isnull=True).update(revoked_at="2026-01-01T00:00:00Z")
    local.delete(*local.keys(f"{kernel_redis.key_prefix()}:{ci_catalog.tenant.schema_name}:ck:*"))
    _eventually(lambda: verify(ci_catalog, secret).status_code == 401)

    # a key revoked through this process stops at once
    second = create_key(ci_catalog).json()
    assert verify(ci_catalog, second["key"]).status_code == 200
    assert verify(ci_catalog, second["key"]).status_code == 200  # copies
    revoked = ci_catalog.api().delete(f"/api/v1/customers/c1/api-keys/{second['id']}")
    assert revoked.status_code in (200, 204), revoked.content
    assert verify(ci_catalog, second["key"]).status_code == 401


def test_verifications_from_copies_note_the_end_user_key_use(ci_catalog, local, monkeypatch):
    from billing.entitlements.services.keys import customer_key_hash

    make_customer(ci_catalog, tier="team")
    secret = create_key(ci_catalog).json()["key"]
    start = int(time.time())
    clock = [float(start)]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    keycache._used_sent.clear()
    from django_tenants.utils import tenant_context

    with tenant_context(ci_catalog.tenant):
        assert verify(ci_catalog, secret).status_code == 200  # the script records the use
        keycache.take_used("ck")
        clock[0] += keycache.USED_EVERY_SECONDS
        assert verify(ci_catalog, secret).status_code == 200  # the copies: the use noted here
        assert keycache.take_used("ck") == {customer_key_hash(secret): start + keycache.USED_EVERY_SECONDS}


def test_local_answers_note_the_key_use_once_per_interval(ci_catalog, local, monkeypatch):
    make_customer(ci_catalog, tier="team")
    start = int(time.time())
    clock = [float(start)]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    keycache._used_sent.clear()
    check(ci_catalog)  # the script records the use
    check(ci_catalog)  # the copies: the use noted
    from django_tenants.utils import tenant_context

    with tenant_context(ci_catalog.tenant):
        assert list(keycache.take_used("ik").values()) == [start]
        clock[0] += 2
        check(ci_catalog)
        assert keycache.take_used("ik") == {}  # within USED_EVERY_SECONDS: not written again
        clock[0] += keycache.USED_EVERY_SECONDS
        check(ci_catalog)
        assert list(keycache.take_used("ik").values()) == [start + 2 + keycache.USED_EVERY_SECONDS]


def test_noted_key_uses_stay_bounded(local, monkeypatch):
    """The throttle's memory of which key's use was written when: bounded however many keys a
    process sees (each over the cap costs one more write, never a lost use)."""
    monkeypatch.setattr(keycache, "USED_SENT_MAX", 3)
    monkeypatch.setattr(keycache, "_used_sent", {})
    for i in range(10):
        keycache.note_used("ik", f"hash{i}", 1000.0, base="bounded")
        assert len(keycache._used_sent) <= 3
    keycache.note_used("ik", "hash9", 1001.0, base="bounded")  # remembered: not written again
    written = local.hgetall(keycache._used_key("ik", "bounded"))
    assert written == {f"hash{i}".encode(): b"1000" for i in range(10)}


def test_copies_stay_bounded(local, monkeypatch):
    monkeypatch.setattr(localcache, "MAX_COPIES", 3)
    for i in range(10):
        local.set(f"k{i}", str(i))
        assert localcache.get([f"k{i}"]) == [str(i).encode()]
        assert localcache.stats()["copies"] <= 3
    local.set("k9", "changed")  # what is still held is still invalidated
    _eventually(lambda: localcache.get(["k9"]) == [b"changed"])


def test_a_server_without_client_tracking_is_read_as_before(local, monkeypatch):
    # as a Redis whose CLIENT command is renamed away (some managed services) answers
    real = localcache._Conn.call

    def refusing(self, *args):
        if args[:2] == ("CLIENT", "ID"):
            raise redis.exceptions.ResponseError("ERR unknown command 'CLIENT'")
        return real(self, *args)

    monkeypatch.setattr(localcache._Conn, "call", refusing)
    localcache.reset()
    state = localcache._current()
    _eventually(lambda: state.refused)
    local.set("k1", "one")
    assert localcache.get(["k1"]) is None  # the caller reads Redis its usual way
    _eventually(lambda: not state.thread.is_alive())  # and no listener keeps retrying


def test_a_server_still_loading_is_tried_again(local, monkeypatch):
    real, answered = localcache._Conn.call, []

    def loading_once(self, *args):
        if args[:2] == ("CLIENT", "ID") and not answered:
            answered.append(args)
            raise redis.exceptions.ResponseError("LOADING Redis is loading the dataset in memory")
        return real(self, *args)

    monkeypatch.setattr(localcache._Conn, "call", loading_once)
    localcache.reset()
    local.set("k1", "one")
    _eventually(lambda: localcache.get(["k1"]) == [b"one"], timeout=5)  # live after the retry
    assert answered and not localcache._state.refused


@pytest.mark.parametrize(
    ("change", "status"),
    [({"expires_at": 1.0}, 401), ({"scopes": ["write"]}, 403), ({"missing": True}, 401)],
    ids=["expired", "without the read scope", "missing"],
)
def test_an_unusable_cached_key_is_refused_as_the_script_refuses_it(ci_catalog, local, change, status):
    import json

    from accounts.selectors import key_hash

    make_customer(ci_catalog, tier="team")
    secret = create_key(ci_catalog).json()["key"]
    assert check(ci_catalog).status_code == 200
    assert check(ci_catalog).status_code == 200  # the key's entry and the snapshot are held here now
    assert verify(ci_catalog, secret).status_code == 200
    assert verify(ci_catalog, secret).status_code == 200  # and the end-user key's entry
    key = f"{kernel_redis.key_prefix()}:{ci_catalog.tenant.schema_name}:ik:{key_hash(ci_catalog.api_key)}"
    entry = json.loads(local.get(key))
    local.set(key, json.dumps({**entry, **change}))  # another process caches the key as unusable
    _eventually(lambda: check(ci_catalog).status_code == status)
    assert verify(ci_catalog, secret).status_code == status
