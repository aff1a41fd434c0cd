"""One behaviour suite for both limiter stores (in-process and Redis), then what only Redis has to prove:
agreement with the in-process store decision for decision, atomicity under concurrent clients, key
expiry, script reloading, and failing closed when Redis is gone."""

from __future__ import annotations

import asyncio
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.exceptions import RedisError
from tests.conftest import REDIS_URL, scratch_redis

from bastion.errors import RateLimiterUnavailable
from bastion.policy.limits import Limiter, Limits, MemoryBuckets, Meter, Quota, Scope
from bastion.policy.redis_limits import RedisBuckets, connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from redis.asyncio import Redis

    from bastion.policy.limits import BucketStore

pytestmark = pytest.mark.anyio

NOON = datetime(2026, 6, 15, 12, 0, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2026, 6, 16, tzinfo=UTC).timestamp()
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class RedisServer:
    client: Redis
    prefix: str

    def store(self, name: str = "", client: Redis | None = None) -> RedisBuckets:
        """A store under this test's prefix; stores with the same ``name`` share buckets."""
        return RedisBuckets(client or self.client, prefix=f"{self.prefix}{name or secrets.token_hex(4)}:")


@asynccontextmanager
async def redis_server() -> AsyncIterator[RedisServer]:
    async with scratch_redis() as (client, prefix):
        yield RedisServer(client, prefix)


@pytest.fixture
async def redis() -> AsyncIterator[RedisServer]:
    async with redis_server() as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], BucketStore]]:
    """Each behaviour test runs once per store; every call gives a fresh, empty store."""
    if request.param == "memory":
        yield MemoryBuckets
        return
    async with redis_server() as server:
        yield server.store


def key(name: str = "k", /, **limits: int) -> Scope:
    return Scope("key", name, Limits(**limits))


def project(name: str = "p", /, **limits: int) -> Scope:
    return Scope("project", name, Limits(**limits))


# (offset from noon in seconds, tokens, allowed, retry_after)
Step = tuple[float, int, bool, int]
STEPS: dict[str, tuple[list[Scope], list[Step]]] = {
    "rpm: a full bucket, then one request every 60/rpm seconds": (
        [key(rpm=3)],
        [(0, 0, True, 0), (0, 0, True, 0), (0, 0, True, 0), (0, 0, False, 20), (19.999, 0, False, 1), (20, 0, True, 0)],
    ),
    "tpm: refills continuously at tpm/60 a second": (
        [key(tpm=600)],
        [
            (0, 600, True, 0),
            (0, 10, False, 1),
            (1, 10, True, 0),
            (1, 25, False, 3),
            (30, 300, False, 1),
            (31, 300, True, 0),
        ],
    ),
    "daily: a fixed window per UTC day": (
        [project(daily_tokens=1000)],
        [(43_140, 600, True, 0), (43_140, 500, False, 60), (43_199.5, 400, True, 0), (43_200, 500, True, 0)],
    ),
    "one refusing scope refuses the request": (
        [key(rpm=100), project(rpm=100, tpm=100)],
        [(0, 90, True, 0), (0, 20, False, 6), (6, 20, True, 0)],
    ),
}


@pytest.mark.parametrize("case", STEPS, ids=list(STEPS))
async def test_steps(make_store: Callable[[], BucketStore], case: str) -> None:
    scopes, steps = STEPS[case]
    limiter = Limiter(make_store())
    for offset, tokens, allowed, retry_after in steps:
        decision = await limiter.acquire(scopes, tokens=tokens, now=NOON + offset)
        assert (decision.allowed, decision.retry_after) == (allowed, retry_after), (offset, tokens)


async def test_a_refusal_charges_no_scope_and_names_the_one_that_refused(
    make_store: Callable[[], BucketStore],
) -> None:
    limiter = Limiter(make_store())
    shared = project(rpm=2)
    for name in ("a", "b"):
        assert (await limiter.acquire([key(name, rpm=10), shared], now=NOON)).allowed
    refused = await limiter.acquire([key("c", rpm=10), shared], now=NOON)
    assert refused.message() == "Project 'p' is over its 2 requests per minute; retry after 30s."
    assert refused.refusal is not None and refused.refusal.meter is Meter.REQUESTS
    alone = await limiter.acquire([key("c", rpm=10)], now=NOON)
    assert alone.requests == Quota(10, 9, 6_000)  # the refused request took nothing from key c


async def test_headers_show_the_most_constraining_scope(make_store: Callable[[], BucketStore]) -> None:
    limiter = Limiter(make_store())
    scopes = [key(rpm=100, tpm=1000), project(rpm=5, daily_tokens=300), Scope("ip", "10.1.2.3", Limits(rpm=50))]
    decision = await limiter.acquire(scopes, tokens=200, now=NOON)
    assert decision.headers() == [
        (b"x-ratelimit-limit-requests", b"5"),
        (b"x-ratelimit-remaining-requests", b"4"),
        (b"x-ratelimit-reset-requests", b"12s"),
        (b"x-ratelimit-limit-tokens", b"300"),
        (b"x-ratelimit-remaining-tokens", b"100"),
        (b"x-ratelimit-reset-tokens", b"12h0m0s"),
    ]


async def test_the_longest_wait_is_the_one_reported(make_store: Callable[[], BucketStore]) -> None:
    limiter = Limiter(make_store())
    scopes = [key(rpm=2), project(tpm=60)]
    for _ in range(2):
        assert (await limiter.acquire(scopes, tokens=30, now=NOON)).allowed
    for tokens, retry_after, kind in [(50, 40, "project"), (15, 20, "key")]:
        refused = await limiter.acquire(scopes, tokens=tokens, now=NOON + 10)
        assert refused.refusal is not None
        assert (refused.retry_after, refused.refusal.scope.kind) == (retry_after, kind)


@pytest.mark.parametrize(
    ("limits", "requests", "tokens", "meter"),
    [
        ({"rpm": 2}, 3, 0, Meter.REQUESTS),
        ({"tpm": 100}, 1, 101, Meter.TOKENS),
        ({"daily_tokens": 50}, 1, 51, Meter.DAILY),
    ],
)
async def test_a_request_larger_than_a_whole_limit_is_refused_for_good(
    make_store: Callable[[], BucketStore], limits: dict[str, int], requests: int, tokens: int, meter: Meter
) -> None:
    limiter = Limiter(make_store())
    scopes = [key(rpm=10, tpm=1000), project(**limits)]
    refused = await limiter.acquire(scopes, requests=requests, tokens=tokens, now=NOON)
    assert (refused.allowed, refused.too_large, refused.retry_after) == (False, True, 0)
    assert refused.refusal is not None and (refused.refusal.meter, refused.refusal.cost) == (
        meter,
        max(requests, tokens),
    )
    assert b"retry-after" not in dict(refused.headers())
    assert (await limiter.acquire([key(rpm=10, tpm=1000)], tokens=0, now=NOON)).requests == Quota(10, 9, 6_000)


async def test_a_refund_returns_tokens(make_store: Callable[[], BucketStore]) -> None:
    limiter, scopes = Limiter(make_store()), [key(tpm=100)]
    assert (await limiter.acquire(scopes, tokens=80, now=NOON)).allowed
    assert not (await limiter.acquire(scopes, tokens=70, now=NOON)).allowed
    await limiter.reconcile(scopes, -60, now=NOON)
    assert (await limiter.acquire(scopes, tokens=70, now=NOON)).tokens == Quota(100, 10, 54_000)
    await limiter.reconcile(scopes, -500, now=NOON)  # a refund never fills a bucket past full
    assert (await limiter.acquire(scopes, tokens=0, now=NOON)).tokens == Quota(100, 100, 0)


async def test_debt_makes_later_requests_wait_at_most_an_hour(make_store: Callable[[], BucketStore]) -> None:
    limiter, scopes = Limiter(make_store()), [key(tpm=60)]
    assert (await limiter.acquire(scopes, tokens=10, now=NOON)).allowed
    await limiter.reconcile(scopes, 110, now=NOON)
    refused = await limiter.acquire(scopes, tokens=0, now=NOON)
    assert (refused.allowed, refused.retry_after, refused.tokens) == (False, 60, Quota(60, 0, 120_000))
    assert (await limiter.acquire(scopes, tokens=0, now=NOON + 60)).allowed
    await limiter.reconcile(scopes, 10**9, now=NOON + 60)
    assert (await limiter.acquire(scopes, tokens=0, now=NOON + 60)).retry_after == 3600
    assert not (await limiter.acquire(scopes, tokens=0, now=NOON + 3659.999)).allowed
    assert (await limiter.acquire(scopes, tokens=0, now=NOON + 3660)).allowed


async def test_daily_usage_settles_against_the_day_it_was_charged_to(make_store: Callable[[], BucketStore]) -> None:
    limiter, scopes = Limiter(make_store()), [project(daily_tokens=1000)]
    charged = await limiter.acquire(scopes, tokens=100, now=MIDNIGHT - 1)
    await limiter.reconcile(scopes, 800, day=charged.day, now=MIDNIGHT + 1)
    assert (await limiter.acquire(scopes, tokens=0, now=MIDNIGHT + 2)).tokens == Quota(1000, 1000, 0)
    assert (await limiter.acquire(scopes, tokens=101, now=MIDNIGHT - 0.5)).retry_after == 1
    await limiter.reconcile(scopes, -5000, day=charged.day, now=MIDNIGHT + 3)
    yesterday = await limiter.acquire(scopes, tokens=0, now=MIDNIGHT - 0.25)
    assert yesterday.tokens == Quota(1000, 1000, 0)  # refunds never take a day below zero used


async def test_time_running_backwards_refills_nothing(make_store: Callable[[], BucketStore]) -> None:
    limiter, scopes = Limiter(make_store()), [key(rpm=1)]
    assert (await limiter.acquire(scopes, now=NOON + 100)).allowed
    assert (await limiter.acquire(scopes, now=NOON + 40)).retry_after == 60  # another replica's slower clock
    assert not (await limiter.acquire(scopes, now=NOON + 159.999)).allowed
    assert (await limiter.acquire(scopes, now=NOON + 160)).allowed


@given(
    limit=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.one_of(st.just(0), st.integers(min_value=0, max_value=20_000)), min_size=1, max_size=60),
)
@PROPERTY
async def test_no_window_admits_more_than_a_full_bucket_plus_its_refill(
    make_store: Callable[[], BucketStore], limit: int, gaps: list[int]
) -> None:
    """Over any window of d ms at most rpm + rpm * d / 60 000 pass: in 60 s, twice the per-minute limit."""
    limiter, scopes = Limiter(make_store()), [key(rpm=limit)]
    admitted, at = [], 0
    for gap in gaps:
        at += gap
        if (await limiter.acquire(scopes, now=(NOON * 1000 + at) / 1000)).allowed:
            admitted.append(at)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= limit + limit * (admitted[j] - start) // 60_000


OPERATION = st.tuples(
    st.integers(min_value=-2_000, max_value=30_000),  # ms since the last one; replicas' clocks differ a little
    st.sampled_from(["acquire", "reconcile"]),
    st.integers(min_value=0, max_value=2),  # requests
    st.integers(min_value=-150, max_value=250),  # tokens: acquire uses the absolute value, reconcile the delta
)


@given(operations=st.lists(OPERATION, min_size=1, max_size=40))
@PROPERTY
async def test_both_stores_agree_decision_for_decision(
    redis: RedisServer, operations: list[tuple[int, str, int, int]]
) -> None:
    scopes = [key(rpm=3, tpm=300), project(rpm=5, daily_tokens=700), Scope("ip", "::1", Limits(rpm=4))]
    memory, shared = Limiter(MemoryBuckets()), Limiter(redis.store())
    at = MIDNIGHT * 1000 - 90_000
    for gap, operation, requests, tokens in operations:
        at += gap
        if operation == "reconcile":
            await memory.reconcile(scopes, tokens, now=at / 1000)
            await shared.reconcile(scopes, tokens, now=at / 1000)
            continue
        expected = await memory.acquire(scopes, requests=requests, tokens=abs(tokens), now=at / 1000)
        assert await shared.acquire(scopes, requests=requests, tokens=abs(tokens), now=at / 1000) == expected


@pytest.mark.parametrize(
    ("limits", "tokens", "admitted"), [({"rpm": 50}, 0, 50), ({"tpm": 1000}, 30, 33), ({"daily_tokens": 1000}, 30, 33)]
)
async def test_concurrent_replicas_together_admit_exactly_the_limit(
    redis: RedisServer, limits: dict[str, int], tokens: int, admitted: int
) -> None:
    other = connect(REDIS_URL)
    try:
        replicas = [Limiter(redis.store("shared")), Limiter(redis.store("shared", client=other))]
        calls = [
            replicas[n % 2].acquire([key(f"k{n % 7}", rpm=1000), project(**limits)], tokens=tokens, now=NOON)
            for n in range(200)
        ]
        decisions = await asyncio.gather(*calls)
    finally:
        await other.aclose()
    assert sum(decision.allowed for decision in decisions) == admitted


async def test_keys_carry_the_prefix_and_expire_when_the_bucket_would_be_full(redis: RedisServer) -> None:
    limiter = Limiter(redis.store("ttl"))
    await limiter.acquire([key(rpm=60, tpm=6000), project(daily_tokens=10**6)], tokens=600, now=NOON)
    found = sorted([name.decode() async for name in redis.client.scan_iter(match=redis.prefix + "*")])
    assert found == [f"{redis.prefix}ttl:{name}" for name in ("key:k:rpm", "key:k:tpm", "project:p:day:2026-06-15")]
    ttls = [await redis.client.pttl(name) for name in found]
    assert 1_000 < ttls[0] <= 2_000  # one request refills in 1 s, plus a second's margin
    assert 6_000 < ttls[1] <= 7_000  # 600 of 6000 tokens per minute refill in 6 s
    assert 12 * 3_600_000 < ttls[2] <= 13 * 3_600_000  # midnight, plus the grace hour


async def test_the_script_is_loaded_again_when_redis_forgets_it(redis: RedisServer) -> None:
    limiter, scopes = Limiter(redis.store()), [key(rpm=5)]
    assert (await limiter.acquire(scopes, now=NOON)).requests == Quota(5, 4, 12_000)
    await redis.client.script_flush()
    assert (await limiter.acquire(scopes, now=NOON)).requests == Quota(5, 3, 24_000)


async def test_an_unreachable_redis_fails_closed() -> None:
    client = connect("redis://127.0.0.1:1/0", timeout=0.2)
    try:
        with pytest.raises(RateLimiterUnavailable, match="cannot use Redis") as caught:
            await Limiter(RedisBuckets(client)).acquire([key(rpm=5)], now=NOON)
    finally:
        await client.aclose()
    assert isinstance(caught.value.__cause__, RedisError)
    assert caught.value.status == 503


async def test_stores_under_different_prefixes_share_nothing(redis: RedisServer) -> None:
    first, second = Limiter(redis.store("one")), Limiter(redis.store("two"))
    assert (await first.acquire([key(rpm=1)], now=NOON)).allowed
    assert (await second.acquire([key(rpm=1)], now=NOON)).allowed
    assert not (await first.acquire([key(rpm=1)], now=NOON)).allowed
