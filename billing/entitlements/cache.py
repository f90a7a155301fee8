"""Redis cache of entitlement snapshots, one per customer, with race-free invalidation.

A reader does one round trip (`GET snapshot`, plus the customer's and the tenant's version numbers
in the same pipeline). On a miss it builds the snapshot from PostgreSQL and stores it with a small
Lua compare-and-set that succeeds only if neither version moved meanwhile, so a snapshot read
before a concurrent change can never be written after that change's invalidation.
Invalidation bumps the version and deletes the snapshot (per customer), or bumps the tenant's
generation and unlinks every snapshot of the tenant (catalog changes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from billing.entitlements.ratelimit import GCRA_LUA
from kernel import invalidations, keycache, localcache
from kernel.metrics import REDIS_FALLBACKS
from kernel.redis import REDIS_ERRORS, get_redis, key_prefix, loads_stored, trip

_CAS = """
if (redis.call('GET', KEYS[1]) or '0') == ARGV[1] and (redis.call('GET', KEYS[2]) or '0') == ARGV[2] then
  redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
  return 1
end
return 0
"""
_cas_script = None
# KEYS: version and snapshot key of each customer, in pairs; ARGV[1]: the version keys' TTL
_INVALIDATE = """
for i = 1, #KEYS, 2 do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[1])
  redis.call('DEL', KEYS[i + 1])
end
return #KEYS / 2
"""
_invalidate_script = None


_base = keycache._base  # "<prefix>:<schema>": the hot paths build both kinds of key from one


def _keys(customer: str) -> tuple[str, str, str]:
    base = _base()
    return f"{base}:entv:{customer}", f"{base}:entgen", f"{base}:ent:{customer}"


class Miss:
    """A cache miss, carrying the versions to compare-and-set against (None: Redis is down)."""

    def __init__(self, versions: tuple[str, str] | None):
        self.versions = versions


def read(customer: str) -> dict | Miss:
    version_key, gen_key, snapshot_key = _keys(customer)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.get(snapshot_key)
        pipe.get(version_key)
        pipe.get(gen_key)
        raw, version, gen = pipe.execute()
    except REDIS_ERRORS as exc:
        trip(exc)
        REDIS_FALLBACKS.labels(component="entitlements").inc()
        return Miss(None)
    if raw is not None:
        return loads_stored(raw)
    return Miss(((version or b"0").decode(), (gen or b"0").decode()))


def store(customer: str, snapshot: dict, miss: Miss, ttl: int) -> None:
    global _cas_script
    if miss.versions is None or ttl <= 0:
        return
    try:
        client = get_redis()
        if _cas_script is None:
            _cas_script = client.register_script(_CAS)
        keys = list(_keys(customer))
        _cas_script(keys=keys, args=[*miss.versions, json.dumps(snapshot), ttl], client=client)
    except REDIS_ERRORS as exc:
        trip(exc)
    else:
        localcache.forget(keys[2:])


def invalidate(customer: str) -> None:
    invalidate_many([customer])


def invalidate_many(customers) -> None:
    """invalidate() for many customers in one command (usage ingestion and burning touch hundreds
    per batch: three pipelined commands each cost more in redis-py than the batch's SQL). If Redis
    does not take it, kernel.invalidations keeps it for replay when Redis answers again."""
    customers = list(customers)
    if not customers:
        return
    try:
        _invalidate_many(connection.schema_name, customers)
    except REDIS_ERRORS as exc:
        trip(exc)
        invalidations.defer("ent", customers)


def _invalidate_many(schema: str, customers: list[str]) -> None:
    global _invalidate_script
    base = f"{key_prefix()}:{schema}"
    keys = [key for customer in customers for key in (f"{base}:entv:{customer}", f"{base}:ent:{customer}")]
    client = get_redis()
    if _invalidate_script is None:
        _invalidate_script = client.register_script(_INVALIDATE)
    _invalidate_script(keys=keys, args=[settings.ENTITLEMENT_CACHE_SECONDS * 2], client=client)
    localcache.forget(keys[1::2])  # this process's copies at once; Redis tells the other processes


def invalidate_all() -> None:
    try:
        _invalidate_all(connection.schema_name)
    except REDIS_ERRORS as exc:
        trip(exc)
        invalidations.defer("ent_all", [""])


def _invalidate_all(schema: str, _idents: list[str] | None = None) -> None:
    base = f"{key_prefix()}:{schema}"
    client = get_redis()
    client.incr(f"{base}:entgen")
    batch = []
    for key in client.scan_iter(match=f"{base}:ent:*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)
    localcache.clear()


invalidations.register("ent", _invalidate_many)
invalidations.register("ent_all", _invalidate_all)


# The hot paths read everything in one round trip: the snapshot, its versions and, when the check
# is for a rate feature the snapshot grants, the GCRA step itself (the same Lua function as
# ratelimit.py). Snapshot and rate keys are derived inside the scripts, so this assumes one Redis
# node (no cluster). The script skips the rate step for a snapshot past `valid_until`: Python then
# rebuilds the snapshot and takes the rate step itself, so a token is never taken twice.
_SNAPSHOT_AND_RATE = (
    GCRA_LUA
    + """
local function snapshot_and_rate(base, customer, feature, quantity, now)
  local snap = redis.call('GET', base .. ':ent:' .. customer)
  local ver = redis.call('GET', base .. ':entv:' .. customer) or '0'
  local gen = redis.call('GET', base .. ':entgen') or '0'
  local rate = false
  if snap and feature ~= '' then
    local s = cjson.decode(snap)
    local valid = s['valid_until']
    if valid == cjson.null or tonumber(valid) > now then
      local f = s['features'][feature]
      if type(f) == 'table' and f['enabled'] == true and f['kind'] == 'rate' and type(f['rate']) == 'table' then
        rate = gcra(base .. ':rl:' .. feature .. ':' .. customer, f['rate'][1], f['rate'][2], quantity)
      end
    end
  end
  return {snap or false, ver, gen, rate}
end
"""
)
_CHECK = (
    _SNAPSHOT_AND_RATE
    + "return snapshot_and_rate(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))"
)
# for a customer-key verification, first the cached key entry (recording its use, as
# kernel.keycache.lookup does), then the same as a check for the key's customer
# the check endpoint's whole Redis work in one round trip: the calling integrator key's cached entry
# (recording its use, as kernel.keycache.lookup does), then -- only if that entry is usable for
# the required scope, the same rules as accounts.selectors.api_key_authenticate -- the snapshot and
# rate step of a check. An unusable or uncached key touches nothing else; Python then decides.
_INTEGRATOR_KEY = """
local function integrator_key(entry_key, used_key, hash, now, scope)
  local ik = redis.call('GET', entry_key)
  redis.call('HSET', used_key, hash, math.floor(now))
  if not ik then return false, false end
  local key = cjson.decode(ik)
  if key['missing'] or (key['expires_at'] ~= cjson.null and tonumber(key['expires_at']) <= now) then
    return ik, false
  end
  for _, s in ipairs(key['scopes']) do if s == scope then return ik, true end end
  return ik, false
end
"""
_CHECK_AUTHED = (
    _SNAPSHOT_AND_RATE
    + _INTEGRATOR_KEY
    + """
local ik, ok = integrator_key(KEYS[1], KEYS[2], ARGV[6], tonumber(ARGV[5]), ARGV[7])
if not ik then return {false} end
if not ok then return {ik} end
local r = snapshot_and_rate(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
return {ik, r[1], r[2], r[3], r[4]}
"""
)
# key verification in one round trip: the integrator key as above, then the end-user key's entry
# (recording its use) and its customer's snapshot and rate step
_VERIFY_AUTHED = (
    _SNAPSHOT_AND_RATE
    + _INTEGRATOR_KEY
    + """
local ik, ok = integrator_key(KEYS[1], KEYS[2], ARGV[6], tonumber(ARGV[5]), ARGV[7])
if not ik then return {false} end
if not ok then return {ik} end
local entry = redis.call('GET', KEYS[3])
redis.call('HSET', KEYS[4], ARGV[1], math.floor(tonumber(ARGV[5])))
if not entry then return {ik, false} end
local decoded = cjson.decode(entry)
if decoded['missing'] then return {ik, entry} end
local r = snapshot_and_rate(ARGV[2], decoded['customer'], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
return {ik, entry, r[1], r[2], r[3], r[4]}
"""
)
_VERIFY = (
    _SNAPSHOT_AND_RATE
    + """
local entry = redis.call('GET', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1], math.floor(tonumber(ARGV[5])))
if not entry then return {false} end
local decoded = cjson.decode(entry)
if decoded['missing'] then return {entry} end
local r = snapshot_and_rate(ARGV[2], decoded['customer'], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
return {entry, r[1], r[2], r[3], r[4]}
"""
)
_scripts: dict = {}


def _run(name: str, source: str, keys: list, args: list):
    client = get_redis()
    script = _scripts.get(name)
    if script is None:
        script = _scripts[name] = client.register_script(source)
    return script(keys=keys, args=args, client=client)


def _unpack(snapshot, version, gen, rate) -> tuple[dict | Miss, list | None]:
    if snapshot is not None:
        return loads_stored(snapshot), rate
    return Miss(((version or b"0").decode(), (gen or b"0").decode())), None


def read_for_check(
    customer: str, *, feature: str, quantity: int, now: float
) -> tuple[dict | Miss, list | None]:
    """(snapshot or Miss, the GCRA reply if the script already took the rate step)."""
    try:
        reply = _run("check", _CHECK, [], [_base(), customer, feature, quantity, now])
    except REDIS_ERRORS as exc:
        trip(exc)
        REDIS_FALLBACKS.labels(component="entitlements").inc()
        return Miss(None), None
    return _unpack(*reply)


@dataclass
class Prefetched:
    """What the check endpoint read in its one round trip (see _CHECK_AUTHED)."""

    integrator_entry: dict | None  # None: not cached (or Redis down): authenticate from PostgreSQL
    snapshot: dict | Miss | None = None  # None: not read (the key was unusable or uncached)
    rate: list | None = None
    now: float = 0.0


def read_for_authed_check(
    *, integrator_hash: str, scope: str, customer: str, feature: str, quantity: int, now: float
) -> Prefetched:
    base = _base()
    local = _local_check(base, integrator_hash, customer, now)
    if local is not None:
        return local
    try:
        reply = _run(
            "check_authed",
            _CHECK_AUTHED,
            [keycache._key("ik", integrator_hash, base), keycache._used_key("ik", base)],
            [base, customer, feature, quantity, now, integrator_hash, scope],
        )
    except REDIS_ERRORS as exc:
        trip(exc)
        REDIS_FALLBACKS.labels(component="entitlements").inc()
        return Prefetched(integrator_entry=None, snapshot=Miss(None), now=now)
    if reply[0] is None:
        return Prefetched(integrator_entry=None, now=now)
    entry = loads_stored(reply[0])
    if len(reply) == 1:
        return Prefetched(integrator_entry=entry, now=now)
    snapshot, rate = _unpack(*reply[1:])
    return Prefetched(integrator_entry=entry, snapshot=snapshot, rate=rate, now=now)


def _local_check(base, integrator_hash, customer, now) -> Prefetched | None:
    """_CHECK_AUTHED's answer from this process's copies (kernel.localcache), when the key's
    entry and the snapshot are both held: handed back as the script would hand them, for the lean
    dispatch to judge the key (missing, expired, scope) and the check to decide. A rate feature's
    step is then taken by the check itself (services.check.decide: rate_limit_hit, one round trip
    as the script's would have been). None: ask Redis."""
    values = localcache.get([keycache._key("ik", integrator_hash, base), f"{base}:ent:{customer}"])
    if values is None or values[0] is None or values[1] is None:
        return None
    keycache.note_used("ik", integrator_hash, now, base)
    return Prefetched(integrator_entry=loads_stored(values[0]), snapshot=loads_stored(values[1]), now=now)


@dataclass
class VerifyPrefetched:
    """What key verification read in its one round trip (see _VERIFY_AUTHED)."""

    integrator_entry: dict | None
    key_read: bool = False  # the end-user key part ran (the integrator key was usable)
    key_entry: dict | None = None
    snapshot: dict | Miss | None = None
    rate: list | None = None
    now: float = 0.0
    # read from this process's copies: the end-user key's use is noted by the verification once
    # the integrator key is accepted (the script records it only then, too)
    from_copies: bool = False


def read_for_authed_verify(
    *, integrator_hash: str, scope: str, key_hash: str, feature: str | None, quantity: int, now: float
) -> VerifyPrefetched:
    base = _base()
    local = _local_verify(base, integrator_hash, key_hash, now)
    if local is not None:
        return local
    keys = [
        keycache._key("ik", integrator_hash, base),
        keycache._used_key("ik", base),
        keycache._key("ck", key_hash, base),
        keycache._used_key("ck", base),
    ]
    try:
        reply = _run(
            "verify_authed",
            _VERIFY_AUTHED,
            keys,
            [key_hash, base, feature or "", quantity, now, integrator_hash, scope],
        )
    except REDIS_ERRORS as exc:
        trip(exc)
        REDIS_FALLBACKS.labels(component="keys").inc()
        return VerifyPrefetched(integrator_entry=None, key_read=True, snapshot=Miss(None), now=now)
    if reply[0] is None:
        return VerifyPrefetched(integrator_entry=None, now=now)
    result = VerifyPrefetched(integrator_entry=loads_stored(reply[0]), now=now)
    if len(reply) == 1:
        return result
    result.key_read = True
    if reply[1] is None:  # the end-user key is not cached
        return result
    result.key_entry = loads_stored(reply[1])
    if len(reply) > 2:
        result.snapshot, result.rate = _unpack(*reply[2:])
    return result


def _local_verify(base, integrator_hash, key_hash, now) -> VerifyPrefetched | None:
    """_VERIFY_AUTHED's answer from this process's copies, as _local_check's for a check: the
    integrator key's entry, the end-user key's entry and (unless that says missing) its customer's
    snapshot, all held; the lean dispatch judges the integrator key, the verification the rest, and
    a rate feature's step is taken by decide(). None: ask Redis."""
    values = localcache.get([keycache._key("ik", integrator_hash, base), keycache._key("ck", key_hash, base)])
    if values is None or values[0] is None or values[1] is None:
        return None
    key_entry = loads_stored(values[1])
    snapshot = None
    if not key_entry.get("missing"):
        held = localcache.get([f"{base}:ent:{key_entry['customer']}"])
        if held is None or held[0] is None:
            return None
        snapshot = loads_stored(held[0])
    keycache.note_used("ik", integrator_hash, now, base)
    return VerifyPrefetched(
        integrator_entry=loads_stored(values[0]), key_read=True, key_entry=key_entry, snapshot=snapshot,
        now=now, from_copies=True,
    )  # fmt: skip


def read_key_and_snapshot(
    kind: str, hashed: str, *, feature: str | None, quantity: int, now: float
) -> tuple[dict | None, dict | Miss | None, list | None]:
    """(key entry or None, its customer's snapshot or a Miss, GCRA reply or None). The snapshot is
    None when the key is unknown to the cache. Redis down: (None, Miss(None), None)."""
    try:
        reply = _run(
            "verify",
            _VERIFY,
            [keycache._key(kind, hashed), keycache._used_key(kind)],
            [hashed, _base(), feature or "", quantity, now],
        )
    except REDIS_ERRORS as exc:
        trip(exc)
        REDIS_FALLBACKS.labels(component="keys").inc()
        return None, Miss(None), None
    if reply[0] is None:
        return None, None, None
    entry = loads_stored(reply[0])
    if len(reply) == 1:  # a cached "missing" entry
        return entry, None, None
    snapshot, rate = _unpack(*reply[1:])
    return entry, snapshot, rate
