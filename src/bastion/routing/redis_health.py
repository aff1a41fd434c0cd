"""Endpoint health shared by every replica through Redis, without a round trip on the common request.

Each replica keeps a local copy of every breaker. ``record`` changes the copy at once and queues the
outcome; a background task (``start``) pushes the queued outcomes every ``interval`` seconds (0.5 by
default, at most 1) and takes the shared state back, so the state a replica acts on is never older than
that plus a round trip. ``admit`` answers from the copy while a circuit is closed or cooling down; only
when a half-open probe may be taken does it ask Redis, where one Lua script makes the transition, so
exactly one replica wins the probe. The script repeats ``breaker.Breaker`` step for step.

When Redis cannot be reached the replica says so in the log and goes on with its own copy, which its
own outcomes keep driving; it shares again as soon as Redis answers. Keys are ``<prefix><provider>``
and expire a day after their last change (an untouched circuit reads as a new, closed one). ``now``
is this gateway's clock: replicas need synchronised clocks (NTP), as for the rate limiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, RedisError

from bastion.routing.breaker import CLOSED, Breaker
from bastion.routing.health import Endpoints, View

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from redis.asyncio import Redis

    from bastion.routing.breaker import Thresholds

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "bastion:breaker:"
SYNC_INTERVAL = 0.5
KEY_TTL_MS = 86_400_000
FIELDS = (
    "state",
    "failures",
    "window_start",
    "requests",
    "errors",
    "previous_requests",
    "previous_errors",
    "opened_at",
    "probe_until",
)

# KEYS[1] is the breaker (a hash of the fields above). ARGV: mode ("admit" or "record"), now (ms), the
# thresholds (failures, error_rate, window, min_requests, cooldown, lease), then for "record" the
# outcomes in order as pairs of ok ("1" or "0") and time (ms). Replies admitted (0/1) and the fields.
SCRIPT = f"""
local mode, now = ARGV[1], tonumber(ARGV[2])
local max_failures, rate, width = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local min_requests, cooldown, lease = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local h = redis.call('HMGET', KEYS[1], {", ".join(f"'{name}'" for name in FIELDS)})
local state = h[1] or '{CLOSED}'
local c = {{}}
for i, name in ipairs({{'f', 'ws', 'n', 'e', 'pn', 'pe', 'o', 'p'}}) do c[name] = tonumber(h[i + 1]) or 0 end

local function scaled(at)
  local start = at - at % width
  local cn, ce, pn, pe, elapsed
  if start > c.ws + width then return 0, 0 end
  if start == c.ws + width then
    cn, ce, pn, pe, elapsed = 0, 0, c.n, c.e, at - start
  else
    cn, ce, pn, pe = c.n, c.e, c.pn, c.pe
    elapsed = math.min(math.max(at - c.ws, 0), width)
  end
  local weight = width - elapsed
  return cn * width + pn * weight, ce * width + pe * weight
end

local function count(ok, at)
  local start = at - at % width
  if start > c.ws then
    if start - c.ws == width then c.pn, c.pe = c.n, c.e else c.pn, c.pe = 0, 0 end
    c.n, c.e, c.ws = 0, 0, start
  end
  c.n = c.n + 1
  if ok then c.f = 0 else c.e, c.f = c.e + 1, c.f + 1 end
end

local function tripped(at)
  if c.f >= max_failures then return true end
  local seen, failed = scaled(at)
  return seen >= min_requests * width and failed >= rate * seen
end

local function open(at) state, c.o, c.p = 'open', at, 0 end

local function close()
  state, c.f, c.o, c.p = '{CLOSED}', 0, 0, 0
  c.n, c.e, c.pn, c.pe = 0, 0, 0, 0
end

local function record(ok, at)
  if state == 'half_open' then
    if ok then close() else c.f = c.f + 1; open(at) end
  elseif state == '{CLOSED}' then
    count(ok, at)
    if not ok and tripped(at) then open(at) end
  end
end

local admitted = 0
if mode == 'admit' then
  if state == 'open' and now >= c.o + cooldown then state, c.p = 'half_open', 0 end
  if state == 'half_open' and now >= c.p then
    c.p, admitted = now + lease, 1
  elseif state == '{CLOSED}' then
    admitted = 1
  end
else
  for i = 9, #ARGV, 2 do record(ARGV[i] == '1', tonumber(ARGV[i + 1])) end
end
local values = {{c.f, c.ws, c.n, c.e, c.pn, c.pe, c.o, c.p}}
if mode == 'admit' or #ARGV > 8 then
  local args = {{'state', state}}
  for i, name in ipairs({{{", ".join(f"'{name}'" for name in FIELDS[1:])}}}) do
    args[#args + 1] = name
    args[#args + 1] = string.format('%.0f', values[i])
  end
  redis.call('HSET', KEYS[1], unpack(args))
  redis.call('PEXPIRE', KEYS[1], {KEY_TTL_MS})
end
return {{admitted, state, unpack(values)}}
"""


class RedisHealth:
    """Breakers shared by the replicas that share ``client``'s Redis; see the module's docstring."""

    def __init__(
        self,
        client: Redis,
        thresholds: Mapping[str, Thresholds],
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
        interval: float = SYNC_INTERVAL,
    ) -> None:
        self._client = client
        self._local = Endpoints(thresholds)
        self._prefix = prefix
        self._clock = clock
        self._interval = min(interval, 1.0)
        self._pending: dict[str, list[tuple[bool, int]]] = {}
        self._synced_at: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._sha: str | None = None
        self.shared = True  # False while Redis cannot be reached and this replica decides alone

    async def admit(self, provider: str) -> bool:
        now, rules = self._now(), self._local.rules(provider)
        breaker = self._local.breaker(provider)
        if breaker.state == CLOSED or not breaker.ready(rules, now):
            return breaker.state == CLOSED
        try:
            reply = await self._script(provider, "admit", now, ())
        except RedisError as exc:
            self._lost(exc)
            return breaker.admit(rules, now)
        self._reached()
        return self._adopt(provider, reply)

    def record(self, provider: str, ok: bool, latency_s: float) -> None:
        now = self._now()
        self._local.observe(provider, ok, latency_s, now)
        self._pending.setdefault(provider, []).append((ok, now))

    async def views(self, providers: Sequence[str]) -> dict[str, View]:
        """The local copies; without the background task, a copy older than ``interval`` is synced first."""
        if self._task is None and (self._synced_at is None or self._now() - self._synced_at >= self._interval * 1000):
            await self.sync()
        now = self._now()
        return {name: self._local.view(name, now) for name in providers}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return self._local.snapshot(self._now())

    def configure(self, thresholds: Mapping[str, Thresholds]) -> None:
        self._local.configure(thresholds)
        for gone in set(self._pending) - set(thresholds):
            del self._pending[gone]

    async def sync(self) -> None:
        """Push the outcomes counted since the last sync and take the shared state in place of the copies.

        If Redis fails, the queued outcomes are dropped: they already moved this replica's own copy.
        """
        self._synced_at = self._now()
        for name in sorted(set(self._local.names()) | set(self._pending)):
            outcomes = self._pending.pop(name, [])
            try:
                reply = await self._script(name, "record", self._now(), outcomes)
            except RedisError as exc:
                self._pending.clear()
                self._lost(exc)
                return
            self._adopt(name, reply)
        self._reached()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop syncing, after one last push of what this replica saw."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.sync()

    async def _run(self) -> None:
        while True:
            await self.sync()
            await asyncio.sleep(self._interval)

    def _adopt(self, provider: str, reply: list[Any]) -> bool:
        """Replace the local copy with the state Redis replied; return whether the script admitted."""
        state = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        numbers = [int(value) for value in reply[2:]]
        self._local.breakers[provider] = Breaker(state, *numbers)
        return int(reply[0]) == 1

    async def _script(self, provider: str, mode: str, now: int, outcomes: Sequence[tuple[bool, int]]) -> list[Any]:
        rules = self._local.rules(provider)
        args: list[str | int] = [mode, now, rules.failures, repr(rules.error_rate), rules.window_ms]
        args += (rules.min_requests, rules.cooldown_ms, rules.lease_ms)
        for ok, at in outcomes:
            args += ("1" if ok else "0", at)
        return await self._evalsha(self._prefix + provider, *args)

    async def _evalsha(self, key: str, *args: str | int) -> list[Any]:
        """Run the script by its hash, loading it first, and again if Redis lost it (restart, SCRIPT FLUSH)."""
        if self._sha is None:
            self._sha = await self._client.script_load(SCRIPT)
        try:
            reply = await self._client.evalsha(self._sha, 1, key, *args)
        except NoScriptError:
            self._sha = await self._client.script_load(SCRIPT)
            reply = await self._client.evalsha(self._sha, 1, key, *args)
        return list(reply)

    def _lost(self, exc: RedisError) -> None:
        if self.shared:
            log.warning(
                "circuit breakers cannot reach Redis (%s); this replica uses its own breaker state until it can",
                type(exc).__name__,
            )
        self.shared = False

    def _reached(self) -> None:
        if not self.shared:
            log.warning("circuit breakers reach Redis again; breaker state is shared across replicas")
        self.shared = True

    def _now(self) -> int:
        return int(self._clock() * 1000)
