"""The Redis bucket store: limits that hold across gateway replicas sharing one Redis.

One Lua script (loaded once with SCRIPT LOAD, run with EVALSHA) does what ``MemoryBuckets`` does,
step for step in the same integer arithmetic, so every scope of a request is checked and charged
atomically. ``now`` is the gateway's clock, passed in: replicas need synchronised clocks (NTP). A
replica whose clock runs ahead by d lets a bucket refill at most d early, once, since a bucket's
time never moves backwards. Keys expire when their bucket would be full again (or a day's counter
is over), which reads the same as a bucket never used. For Redis Cluster, put a hash tag in the
prefix (``{bastion}:rl:``) so that all of a request's keys live in one slot.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from bastion.errors import RateLimiterUnavailable
from bastion.policy.limits import DEBT_MINUTES, EXPIRY_MARGIN_MS, FULL_MS, Limiter

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from bastion.policy.limits import Bucket

DEFAULT_PREFIX = "bastion:rl:"

# KEYS[i] is bucket i. ARGV: now (ms), mode ("take" or "settle"), then per bucket: rate, capacity,
# amount, expires (ms). Rate 0 marks a daily counter (a string: tokens used); a rate bucket is a
# hash of level "l" and last refill "t". Numbers stay integers below 2^53, exact in Lua's doubles.
SCRIPT = f"""
local now = tonumber(ARGV[1])
local take = ARGV[2] == 'take'
local levels, times = {{}}, {{}}
local allowed = 1
for i = 1, #KEYS do
  local j = 2 + (i - 1) * 4
  local rate, cap, amount = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3])
  if rate == 0 then
    levels[i] = cap - (tonumber(redis.call('GET', KEYS[i])) or 0)
  else
    local state = redis.call('HMGET', KEYS[i], 'l', 't')
    local level, t = tonumber(state[1]), tonumber(state[2])
    if not level then level, t = cap, now end
    levels[i] = math.min(cap, level + math.min(math.max(now - t, 0), {FULL_MS}) * rate)
    times[i] = math.max(t, now)
  end
  if take and amount > levels[i] then allowed = 0 end
end
if allowed == 1 then
  for i = 1, #KEYS do
    local j = 2 + (i - 1) * 4
    local rate, cap, amount = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3])
    local level = math.max(math.min(levels[i] - amount, cap), -{DEBT_MINUTES} * cap)
    if rate == 0 then
      local ttl = math.max(tonumber(ARGV[j + 4]) - now, 1000)
      redis.call('SET', KEYS[i], string.format('%.0f', cap - level), 'PX', string.format('%.0f', ttl))
    else
      local ttl = (times[i] - now) + math.ceil((cap - level) / rate) + {EXPIRY_MARGIN_MS}
      redis.call('HSET', KEYS[i], 'l', string.format('%.0f', level), 't', string.format('%.0f', times[i]))
      redis.call('PEXPIRE', KEYS[i], string.format('%.0f', ttl))
    end
  end
end
local reply = {{allowed}}
for i = 1, #KEYS do reply[i + 1] = levels[i] end
return reply
"""


class RedisBuckets:
    """Bucket levels in Redis under ``prefix``; every failure to reach Redis is ``RateLimiterUnavailable``."""

    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._sha: str | None = None

    async def take(self, buckets: Sequence[Bucket], now_ms: int) -> tuple[bool, tuple[int, ...]]:
        reply = await self._run(buckets, now_ms, "take")
        return reply[0] == 1, tuple(int(level) for level in reply[1:])

    async def settle(self, buckets: Sequence[Bucket], now_ms: int) -> None:
        await self._run(buckets, now_ms, "settle")

    async def _run(self, buckets: Sequence[Bucket], now_ms: int, mode: str) -> list[int]:
        keys = [self._prefix + bucket.key for bucket in buckets]
        args: list[str | int] = [now_ms, mode]
        for bucket in buckets:
            args += (bucket.rate, bucket.capacity, bucket.amount, bucket.expires_ms)
        try:
            return await self._evalsha(len(keys), *keys, *args)
        except RedisError as exc:
            raise RateLimiterUnavailable(
                f"The rate limiter cannot use Redis ({type(exc).__name__}), so requests are refused until it can; "
                "check that Redis is running and that BASTION_REDIS_URL points at it."
            ) from exc

    async def _evalsha(self, numkeys: int, *keys_and_args: str | int) -> list[int]:
        """Run the script by its hash, loading it first, and again if Redis lost it (restart, SCRIPT FLUSH)."""
        if self._sha is None:
            self._sha = await self._client.script_load(SCRIPT)
        try:
            reply = await self._client.evalsha(self._sha, numkeys, *keys_and_args)
        except NoScriptError:
            self._sha = await self._client.script_load(SCRIPT)
            reply = await self._client.evalsha(self._sha, numkeys, *keys_and_args)
        return list(reply)


def connect(url: str, *, timeout: float = 0.5) -> Redis:
    """A client that fails fast: short timeouts and one immediate retry (for a connection Redis dropped).

    A retried script may have run once already: a request is then charged twice, never admitted unchecked.
    """
    return Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), retries=1)
    )


def redis_limiter(client: Redis, *, prefix: str = DEFAULT_PREFIX, clock: Callable[[], float] = time.time) -> Limiter:
    """A limiter whose limits hold across every gateway process that shares ``client``'s Redis."""
    return Limiter(RedisBuckets(client, prefix=prefix), clock=clock)
