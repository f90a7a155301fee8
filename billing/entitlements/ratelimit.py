"""Rate limits in Redis: GCRA (generic cell rate algorithm), one atomic Lua script per check.

`limit` requests per `window` seconds with a burst of `limit`: the key stores the theoretical
arrival time (TAT) in microseconds; Redis' own clock is used so every web process agrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db import connection

from kernel.redis import get_redis, key_prefix

# the algorithm as a Lua function, shared with the snapshot scripts in billing/entitlements/cache.py
GCRA_LUA = """
local function gcra(key, limit, window, quantity)
  local interval = math.floor(window * 1000000 / limit)
  local tolerance = window * 1000000
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval * quantity
  local allow_at = new_tat - tolerance
  if allow_at > now then
    return {0, math.floor((tolerance - (tat - now)) / interval), allow_at - now, tat - now, limit}
  end
  redis.call('SET', key, new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
  return {1, math.floor((tolerance - (new_tat - now)) / interval), 0, new_tat - now, limit}
end
"""
_GCRA = GCRA_LUA + "return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))"
_script = None


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after_seconds: int  # 0 when allowed

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers

    def as_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "limit": self.limit,
            "remaining": self.remaining,
            "reset": self.reset_seconds,
            "retry_after": self.retry_after_seconds,
        }


def rate_limit_hit(
    *, customer: str, feature: str, limit: int, window_seconds: int, quantity: int = 1
) -> RateDecision:
    """Take `quantity` from the bucket if it fits. Raises on Redis errors (the caller decides
    between fail-open and fail-closed)."""
    global _script
    client = get_redis()
    if _script is None:
        _script = client.register_script(_GCRA)
    return decision_from_reply(
        _script(keys=[rate_key(customer, feature)], args=[limit, window_seconds, quantity], client=client)
    )


def rate_key(customer: str, feature: str) -> str:
    return f"{key_prefix()}:{connection.schema_name}:rl:{feature}:{customer}"


def decision_from_reply(reply) -> RateDecision:
    """The Lua `gcra` function's reply: {allowed, remaining, retry µs, reset µs, limit}."""
    allowed, remaining, retry_us, reset_us, limit = (int(x) for x in reply)
    return RateDecision(
        allowed=bool(allowed),
        limit=limit,
        remaining=max(0, remaining),
        reset_seconds=math.ceil(reset_us / 1_000_000),
        retry_after_seconds=max(1, math.ceil(retry_us / 1_000_000)) if not allowed else 0,
    )
