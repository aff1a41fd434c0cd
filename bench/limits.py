"""What the rate limiter costs a request: ``acquire()`` (and ``reconcile()``) per call, in-process and on Redis.

Run ``.venv/bin/python bench/limits.py [--redis-url URL] [-n N]``. Every call checks the four scopes of a
request (key, principal, project with a daily budget, source IP from a pool of 1,000): eight buckets, all
admitted, so each call also writes. Sequential calls give the latency one request sees; 64 calls in flight
at once give the Redis store's throughput from one process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from bastion.policy.limits import Limiter, Limits, MemoryBuckets, Scope
from bastion.policy.redis_limits import RedisBuckets, connect

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

HIGH = Limits(rpm=10**9, tpm=10**9)
SCOPES = [Scope("key", "bst_live_ab12", HIGH), Scope("principal", "chatbot-prod", HIGH)]
SCOPES.append(Scope("project", "support-bot", Limits(rpm=10**9, tpm=10**9, daily_tokens=10**13)))
IPS = [Scope("ip", f"10.0.{n // 250}.{n % 250}", Limits(rpm=10**9)) for n in range(1000)]
CONCURRENCY = 64


def scopes_for(n: int) -> list[Scope]:
    return [*SCOPES, IPS[n % len(IPS)]]


async def acquire_only(limiter: Limiter, n: int) -> None:
    decision = await limiter.acquire(scopes_for(n), tokens=500)
    assert decision.allowed


async def acquire_and_reconcile(limiter: Limiter, n: int) -> None:
    decision = await limiter.acquire(scopes_for(n), tokens=500)
    await limiter.reconcile(scopes_for(n), -120, day=decision.day)


async def sequential(limiter: Limiter, call: Callable[[Limiter, int], Awaitable[None]], count: int) -> list[float]:
    """Microseconds per call, one call at a time."""
    for n in range(min(count, 500)):  # warm up: the script loaded, connections open, caches filled
        await call(limiter, n)
    timings = []
    for n in range(count):
        start = time.perf_counter_ns()
        await call(limiter, n)
        timings.append((time.perf_counter_ns() - start) / 1000)
    return timings


async def in_flight(limiter: Limiter, count: int) -> float:
    """Calls a second with CONCURRENCY of them outstanding at all times."""
    queue = iter(range(count))

    async def worker() -> None:
        for n in queue:
            await acquire_only(limiter, n)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - start)


def row(name: str, timings: list[float]) -> str:
    cuts = statistics.quantiles(timings, n=100)
    return f"{name:<44} {statistics.fmean(timings):>9.1f} {cuts[49]:>9.1f} {cuts[98]:>9.1f}"


async def measure(name: str, limiter: Limiter, count: int) -> list[str]:
    return [
        row(f"{name}: acquire", await sequential(limiter, acquire_only, count)),
        row(f"{name}: acquire + reconcile", await sequential(limiter, acquire_and_reconcile, count)),
    ]


async def main(redis_url: str, count: int) -> None:
    lines = [f"{'4 scopes, 8 buckets, us per call':<44} {'mean':>9} {'p50':>9} {'p99':>9}"]
    lines += await measure("in-process", Limiter(MemoryBuckets()), count)
    client = connect(redis_url)
    prefix = f"bastion-bench:{secrets.token_hex(4)}:"
    try:
        await client.ping()
        limiter = Limiter(RedisBuckets(client, prefix=prefix))
        lines += await measure("Redis", limiter, count // 4)
        rate = await in_flight(limiter, count)
        lines.append(f"Redis, {CONCURRENCY} in flight from one process: {rate:,.0f} acquires/s")
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    except RedisError as exc:
        lines.append(f"Redis at {redis_url} is not reachable ({type(exc).__name__}); its rows are missing")
    finally:
        await client.aclose()
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("BASTION_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("-n", type=int, default=20_000, help="calls per in-process row (Redis rows: a quarter)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.redis_url, arguments.n))
