from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.config import RoutingConfig
from bastion.errors import BastionError, InvalidRequest, RateLimited, UpstreamError, UpstreamRejected, UpstreamTimeout
from bastion.routing.retry import Attempts, RetryPolicy, endpoint_failed, retry_after, retryable

NOW = datetime(2026, 10, 15, 9, 30, tzinfo=UTC)


def rejected(status: int, *headers: tuple[bytes, bytes]) -> UpstreamRejected:
    return UpstreamRejected(status, b'{"error": {}}', "application/json", list(headers))


@pytest.mark.parametrize(
    ("exc", "retry", "failed"),
    [
        (UpstreamError("The upstream provider 'a' answered HTTP 503; try again later."), True, True),
        (UpstreamTimeout("The upstream provider 'a' did not answer in time."), True, True),
        (rejected(429), True, False),  # busy, not broken: retried, but the circuit stays closed
        (rejected(408), True, False),
        (rejected(409), True, False),
        (rejected(400), False, False),
        (rejected(404), False, False),
        (rejected(422), False, False),
        (RateLimited("Bastion's own limit"), False, False),
        (InvalidRequest("bad"), False, False),
        (ValueError("not ours"), False, False),
    ],
)
def test_which_failures_are_retried_and_which_count_against_the_endpoint(
    exc: BaseException, retry: bool, failed: bool
) -> None:
    assert retryable(exc) is retry
    assert endpoint_failed(exc) is failed


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ([], None),
        ([(b"retry-after", b"7")], 7.0),
        ([(b"retry-after", b" 1.5 ")], 1.5),
        ([(b"retry-after-ms", b"250"), (b"retry-after", b"7")], 0.25),  # OpenAI's precise header wins
        ([(b"retry-after-ms", b"soon"), (b"retry-after", b"7")], 7.0),
        ([(b"retry-after", b"Thu, 15 Oct 2026 09:30:20 GMT")], 20.0),
        ([(b"retry-after", b"Thu, 15 Oct 2026 09:29:00 GMT")], 0.0),  # in the past: go now
        ([(b"retry-after", b"-3")], None),
        ([(b"retry-after", b"tomorrow-ish")], None),
        ([(b"retry-after", b"inf")], None),
        ([(b"x-request-id", b"req_1")], None),
    ],
)
def test_retry_after_reads_the_relayed_headers(headers: list[tuple[bytes, bytes]], seconds: float | None) -> None:
    assert retry_after(rejected(429, *headers), NOW) == seconds


def test_retry_after_of_an_exception_without_headers_is_none() -> None:
    assert retry_after(ValueError("x"), NOW) is None
    assert retry_after(UpstreamError("x", headers=[(b"retry-after", b"2")]), NOW) == 2.0


def test_the_policy_comes_from_the_routing_config() -> None:
    config = RoutingConfig(attempts=4, budget=12.5, backoff=0.2, backoff_max=1.0)
    assert RetryPolicy.of(config) == RetryPolicy(attempts=4, budget=12.5, backoff=0.2, backoff_max=1.0)


def attempts(policy: RetryPolicy, now: list[float], draw: float = 1.0) -> Attempts:
    """Attempts with a frozen clock and a random source that always draws ``draw`` (1.0: the cap itself)."""
    return policy.start(clock=lambda: now[0], rng=lambda: draw, wall=lambda: NOW)


def test_backoff_doubles_up_to_its_cap_with_full_jitter() -> None:
    now = [100.0]
    capped = attempts(RetryPolicy(attempts=6, budget=60, backoff=0.5, backoff_max=3.0), now)
    assert [capped.pause(UpstreamTimeout("t"), same_endpoint=True) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, None]
    jittered = attempts(RetryPolicy(attempts=3, budget=60, backoff=0.5, backoff_max=3.0), now, draw=0.25)
    assert [jittered.pause(UpstreamTimeout("t"), same_endpoint=True) for _ in range(3)] == [0.125, 0.25, None]


def test_attempts_include_the_first_one() -> None:
    only_one = attempts(RetryPolicy(attempts=1), [0.0])
    assert only_one.pause(UpstreamTimeout("t"), same_endpoint=False) is None
    assert only_one.failed == 1


def test_a_failure_that_is_not_retryable_ends_at_once() -> None:
    assert attempts(RetryPolicy(attempts=5), [0.0]).pause(rejected(400), same_endpoint=False) is None


def test_retry_after_applies_to_the_same_endpoint_only() -> None:
    busy = rejected(429, (b"retry-after", b"4"))
    policy = RetryPolicy(attempts=3, budget=30, backoff=0.1, backoff_max=2.0)
    assert attempts(policy, [0.0]).pause(busy, same_endpoint=True) == 4.0
    assert attempts(policy, [0.0]).pause(busy, same_endpoint=False) == 0.1
    quick = rejected(429, (b"retry-after-ms", b"10"))
    assert attempts(policy, [0.0]).pause(quick, same_endpoint=True) == 0.1  # never sooner than the backoff


def test_a_wait_that_leaves_no_time_in_the_budget_ends_the_retries() -> None:
    now = [0.0]
    request = attempts(RetryPolicy(attempts=5, budget=10, backoff=1.0, backoff_max=8.0), now)
    assert request.deadline == 10.0
    now[0] = 6.5
    assert request.remaining() == 3.5
    assert request.pause(rejected(429, (b"retry-after", b"3")), same_endpoint=True) == 3.0
    assert request.pause(rejected(429, (b"retry-after", b"4")), same_endpoint=True) is None  # the client gets the 429
    now[0] = 11.0
    assert request.remaining() == 0.0


@given(
    attempts_allowed=st.integers(min_value=1, max_value=10),
    budget=st.floats(min_value=0.1, max_value=60),
    backoff=st.floats(min_value=0, max_value=5),
    backoff_max=st.floats(min_value=0, max_value=10),
    draws=st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), min_size=12, max_size=12),
    elapsed=st.lists(st.floats(min_value=0, max_value=10), min_size=12, max_size=12),
    asked=st.none() | st.integers(min_value=0, max_value=120),
)
def test_waits_stay_within_the_backoff_cap_the_attempts_and_the_budget(
    attempts_allowed: int,
    budget: float,
    backoff: float,
    backoff_max: float,
    draws: list[float],
    elapsed: list[float],
    asked: int | None,
) -> None:
    now, values = [0.0], iter(draws)
    policy = RetryPolicy(attempts_allowed, budget, backoff, backoff_max)
    request = policy.start(clock=lambda: now[0], rng=lambda: next(values), wall=lambda: NOW)
    headers = [] if asked is None else [(b"retry-after", str(asked).encode())]
    retries = 0
    for step in elapsed[:11]:
        now[0] += step
        wait = request.pause(rejected(429, *headers), same_endpoint=True)
        if wait is None:
            continue
        retries += 1
        assert 0 <= wait < request.remaining()
        assert wait <= max(backoff_max, asked or 0)
        if asked is not None:
            assert wait >= asked
    assert retries <= attempts_allowed - 1


def test_a_bastion_error_without_headers_has_no_retry_after() -> None:
    assert retry_after(BastionError("x"), NOW) is None
