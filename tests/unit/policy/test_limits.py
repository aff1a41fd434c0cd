"""The limiter's pure parts and its in-process store; ``tests/integration/test_limits_redis.py`` runs the
behaviour suite against both stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bastion.errors import BastionError, RateLimiterUnavailable
from bastion.policy.limits import (
    Decision,
    Limiter,
    Limits,
    MemoryBuckets,
    Meter,
    Quota,
    Refusal,
    Scope,
    format_reset,
    memory_limiter,
    plan,
)

T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC).timestamp()
DAY = int(T0 // 86_400)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (1, "1ms"),
        (20, "20ms"),
        (999, "999ms"),
        (1000, "1s"),
        (1500, "1.5s"),
        (17_220, "17.22s"),
        (59_999, "59.999s"),
        (60_000, "1m0s"),
        (360_000, "6m0s"),
        (90_500, "1m30.5s"),
        (3_600_000, "1h0m0s"),
        (3_723_004, "1h2m3.004s"),
        (86_400_000, "24h0m0s"),
    ],
)
def test_resets_are_written_as_openai_writes_them(ms: int, text: str) -> None:
    assert format_reset(ms) == text


@pytest.mark.parametrize(
    "fields",
    [{"rpm": 0}, {"rpm": -1}, {"tpm": 10**9 + 1}, {"rpm": True}, {"tpm": 1.5}, {"daily_tokens": 10**13 + 1}],
)
def test_limits_must_be_positive_whole_numbers_in_range(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(fields))):
        Limits(**fields)  # type: ignore[arg-type]


def test_limits_accept_their_bounds() -> None:
    assert Limits(rpm=1, tpm=10**9, daily_tokens=10**13).tpm == 10**9


@pytest.mark.parametrize(("kind", "name"), [("", "x"), ("pro:ject", "x"), ("project", "")])
def test_scopes_need_a_plain_kind_and_a_name(kind: str, name: str) -> None:
    with pytest.raises(ValueError, match="scope needs"):
        Scope(kind, name, Limits(rpm=1))


def test_plan_names_one_bucket_per_limit_and_dates_the_daily_one() -> None:
    scopes = [Scope("ip", "2001:db8::1", Limits(rpm=5)), Scope("project", "p", Limits(tpm=9, daily_tokens=99))]
    buckets = list(plan(scopes, 1, 7, DAY))
    assert [(b.key, b.meter, b.limit, b.cost) for b in buckets] == [
        ("ip:2001:db8::1:rpm", Meter.REQUESTS, 5, 1),
        ("project:p:tpm", Meter.TOKENS, 9, 7),
        ("project:p:day:2026-06-15", Meter.DAILY, 99, 7),
    ]
    assert buckets[2].expires_ms == datetime(2026, 6, 16, 1, 0, tzinfo=UTC).timestamp() * 1000


def test_a_scope_named_twice_is_refused() -> None:
    scope = Scope("project", "p", Limits(rpm=5))
    with pytest.raises(ValueError, match="appears twice"):
        list(plan([scope, Scope("project", "p", Limits(rpm=6))], 1, 0, DAY))


@pytest.mark.anyio
@pytest.mark.parametrize(("requests", "tokens"), [(-1, 0), (0, -1)])
async def test_negative_costs_are_refused(requests: int, tokens: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        await memory_limiter().acquire([Scope("key", "k", Limits(rpm=1))], requests=requests, tokens=tokens, now=T0)


@pytest.mark.anyio
async def test_no_limits_means_allowed_without_headers() -> None:
    decision = await memory_limiter().acquire([Scope("key", "k", Limits())], tokens=10**6, now=T0)
    assert decision == Decision(allowed=True, day=DAY)
    assert decision.headers() == []
    assert decision.message() == ""


def test_headers_render_both_quotas_and_retry_after() -> None:
    refusal = Refusal(Scope("project", "p", Limits(rpm=600)), Meter.REQUESTS, 600, 1, too_large=False)
    decision = Decision(False, DAY, 3, refusal, Quota(600, 0, 3_000), Quota(200_000, 1234, 360_000))
    assert decision.headers() == [
        (b"x-ratelimit-limit-requests", b"600"),
        (b"x-ratelimit-remaining-requests", b"0"),
        (b"x-ratelimit-reset-requests", b"3s"),
        (b"x-ratelimit-limit-tokens", b"200000"),
        (b"x-ratelimit-remaining-tokens", b"1234"),
        (b"x-ratelimit-reset-tokens", b"6m0s"),
        (b"retry-after", b"3"),
    ]


@pytest.mark.parametrize(
    ("kind", "meter", "limit", "cost", "too_large", "retry", "message"),
    [
        (
            "project",
            Meter.REQUESTS,
            600,
            1,
            False,
            3,
            "Project 'x' is over its 600 requests per minute; retry after 3s.",
        ),
        (
            "ip",
            Meter.TOKENS,
            1000,
            10,
            False,
            75,
            "Source IP 'x' is over its 1000 tokens per minute; retry after 1m15s.",
        ),
        (
            "service_account",
            Meter.DAILY,
            9,
            1,
            False,
            3600,
            "Service account 'x' is over its 9 tokens a day; retry after 1h0m0s.",
        ),
        (
            "key",
            Meter.TOKENS,
            100,
            101,
            True,
            0,
            "This request's estimated token count of 101 is more than key 'x' allows at all (100 tokens per minute), "
            "so it can never pass; shorten the prompt or lower max_tokens.",
        ),
        (
            "principal",
            Meter.REQUESTS,
            2,
            3,
            True,
            0,
            "This request's request count of 3 is more than principal 'x' allows at all (2 requests per minute), "
            "so it can never pass; send fewer requests at once.",
        ),
    ],
)
def test_refusals_say_who_which_limit_and_what_to_do(
    kind: str, meter: Meter, limit: int, cost: int, too_large: bool, retry: int, message: str
) -> None:
    refusal = Refusal(Scope(kind, "x", Limits(rpm=1)), meter, limit, cost, too_large)
    assert Decision(False, DAY, retry, refusal).message() == message


def test_unavailable_is_a_503_the_gateway_renders() -> None:
    error = RateLimiterUnavailable("down")
    assert isinstance(error, BastionError)
    assert (error.status, error.type, error.code) == (503, "server_error", "rate_limiter_unavailable")


@pytest.mark.anyio
async def test_the_injected_clock_is_the_time_when_none_is_passed() -> None:
    now = [T0]
    limiter = memory_limiter(clock=lambda: now[0])
    scopes = [Scope("key", "k", Limits(rpm=1))]
    assert (await limiter.acquire(scopes)).allowed
    assert (await limiter.acquire(scopes)).retry_after == 60
    now[0] += 60
    assert (await limiter.acquire(scopes)).allowed


@pytest.mark.anyio
async def test_the_memory_store_forgets_buckets_once_they_are_full_again() -> None:
    store = MemoryBuckets()
    limiter = Limiter(store)
    for n in range(50):
        await limiter.acquire([Scope("ip", f"10.0.0.{n}", Limits(rpm=60, daily_tokens=100))], tokens=5, now=T0)
    assert len(store) == 100
    await limiter.acquire([Scope("ip", "10.0.0.1", Limits(rpm=60))], now=T0 + 120)
    assert len(store) == 51  # every rate bucket but the one just charged has gone; daily counters stay
    later = await limiter.acquire([Scope("ip", "10.0.0.1", Limits(daily_tokens=100))], tokens=0, now=T0 + 120)
    assert later.tokens == Quota(100, 95, 12 * 3_600_000 - 120_000)
    await limiter.acquire([], now=T0 + 13 * 3600)
    assert len(store) == 51  # the sweep only runs when a bucket is touched
    await limiter.acquire([Scope("ip", "10.0.0.1", Limits(rpm=60))], now=T0 + 14 * 3600)
    assert len(store) == 1  # the day's counters are over, with the grace hour
