from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.config import BreakerConfig, ProviderConfig, Timeouts
from bastion.errors import UpstreamTimeout
from bastion.routing.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, Thresholds
from bastion.routing.health import MemoryHealth, View, thresholds_from
from bastion.routing.probes import Prober, probes_for
from bastion.routing.providers.echo import EchoProvider

RULES = Thresholds(failures=3, error_rate=0.5, window_ms=10_000, min_requests=10, cooldown_ms=5_000, lease_ms=20_000)
RATE_ONLY = Thresholds(failures=100, error_rate=0.5, window_ms=10_000, min_requests=4, cooldown_ms=5_000)
T0 = 1_800_000_000_000  # ms, on a window edge


def run(breaker: Breaker, rules: Thresholds, outcomes: str, at: int = T0) -> Breaker:
    """Record ``outcomes`` ('s' success, 'f' failure) one millisecond apart from ``at``."""
    for offset, outcome in enumerate(outcomes):
        breaker.record(rules, outcome == "s", at + offset)
    return breaker


@pytest.mark.parametrize(
    ("rules", "outcomes", "state"),
    [
        (RULES, "ff", CLOSED),
        (RULES, "fff", OPEN),  # failures in a row
        (RULES, "ffsff", CLOSED),  # a success resets the count
        (RATE_ONLY, "sfsf", OPEN),  # 2 of 4: the error rate is reached with min_requests seen
        (RATE_ONLY, "sff", CLOSED),  # 2 of 3: too few requests to judge
        (RATE_ONLY, "sssf", CLOSED),  # 1 of 4
        (RATE_ONLY, "sfss", CLOSED),  # reached on a success: only a failure trips
        (RATE_ONLY, "sfssf", CLOSED),  # 2 of 5
    ],
)
def test_a_circuit_opens_on_failures_in_a_row_or_on_the_error_rate(
    rules: Thresholds, outcomes: str, state: str
) -> None:
    breaker = run(Breaker(), rules, outcomes)
    assert breaker.state == state
    assert breaker.admit(rules, T0 + 10) is (state == CLOSED)


@pytest.mark.parametrize(
    ("offset", "state"),
    [
        (10_000, OPEN),  # the previous window still counts in full: 3 of 5 failed
        (15_000, CLOSED),  # half of it: 1 + 2 = 3 requests, below min_requests
        (19_999, CLOSED),
        (20_000, CLOSED),  # the previous window is gone
    ],
)
def test_the_error_rate_slides_over_two_windows(offset: int, state: str) -> None:
    breaker = run(Breaker(), RATE_ONLY, "sfsf", at=T0 + 9_000)
    breaker.state, breaker.failures = CLOSED, 0  # as if the rule had let it pass
    breaker.record(RATE_ONLY, False, T0 + offset)
    assert breaker.state == state


def test_the_error_rate_is_reported_over_the_sliding_window() -> None:
    breaker = run(Breaker(), RATE_ONLY, "sfss", at=T0 + 5_000)
    assert breaker.error_rate(RATE_ONLY, T0 + 9_000) == 0.25
    assert breaker.error_rate(RATE_ONLY, T0 + 15_000) == 0.25  # half of the previous window, all of it
    assert breaker.error_rate(RATE_ONLY, T0 + 25_000) == 0.0
    assert Breaker().error_rate(RATE_ONLY, T0) == 0.0


def test_open_cools_down_then_admits_one_probe_whose_success_closes() -> None:
    breaker = run(Breaker(), RULES, "fff")
    opened = breaker.opened_at
    assert not breaker.admit(RULES, opened + 4_999)
    assert not breaker.ready(RULES, opened + 4_999)
    assert breaker.ready(RULES, opened + 5_000)
    assert breaker.admit(RULES, opened + 5_000)
    assert breaker.state == HALF_OPEN
    assert not breaker.admit(RULES, opened + 5_001)
    assert not breaker.ready(RULES, opened + 5_001)
    breaker.record(RULES, True, opened + 6_000)
    assert (breaker.state, breaker.failures, breaker.requests) == (CLOSED, 0, 0)
    assert breaker.admit(RULES, opened + 6_001)


def test_a_failed_probe_reopens_and_the_cool_down_starts_again() -> None:
    breaker = run(Breaker(), RULES, "fff")
    assert breaker.admit(RULES, T0 + 10_000)
    breaker.record(RULES, False, T0 + 11_000)
    assert (breaker.state, breaker.opened_at, breaker.failures) == (OPEN, T0 + 11_000, 4)
    assert not breaker.admit(RULES, T0 + 15_999)
    assert breaker.admit(RULES, T0 + 16_000)


def test_a_probe_that_never_answers_frees_its_slot_after_the_lease() -> None:
    breaker = run(Breaker(), RULES, "fff")
    assert breaker.admit(RULES, T0 + 5_002)
    assert not breaker.admit(RULES, T0 + 25_001)
    assert breaker.admit(RULES, T0 + 25_002)


def test_the_late_answer_of_a_request_sent_before_the_circuit_opened_changes_nothing() -> None:
    breaker = run(Breaker(), RULES, "fff")
    breaker.record(RULES, True, T0 + 100)
    assert (breaker.state, breaker.opened_at) == (OPEN, T0 + 2)


def test_thresholds_come_from_the_provider_breaker_and_total_timeout() -> None:
    config = ProviderConfig(
        name="p",
        kind="echo",
        models=["m"],
        timeouts=Timeouts(total=120),
        breaker=BreakerConfig(failures=2, error_rate=0.25, window=timedelta(minutes=1), cooldown=timedelta(seconds=9)),
    )
    assert thresholds_from([config]) == {
        "p": Thresholds(
            failures=2, error_rate=0.25, window_ms=60_000, min_requests=10, cooldown_ms=9_000, lease_ms=120_000
        )
    }


# Gaps near the cool-down and the lease, so that short runs reach every state.
GAPS = st.sampled_from([0, 1, 4_999, 5_000, 19_999, 20_000]) | st.integers(min_value=0, max_value=30_000)
OPERATIONS = st.lists(st.tuples(st.sampled_from(["admit", "admit", "ok", "fail"]), GAPS), max_size=80)


@given(operations=OPERATIONS)
def test_a_breaker_never_lets_two_probes_out_at_once(operations: list[tuple[str, int]]) -> None:
    """A probe is out from the admit that took it until an outcome is recorded or its lease ends."""
    rules = Thresholds(failures=1, cooldown_ms=5_000, lease_ms=20_000)
    breaker, now, probe_out_until = Breaker(), T0, None
    for operation, gap in operations:
        now += gap
        if operation != "admit":
            breaker.record(rules, operation == "ok", now)
            probe_out_until = None
            continue
        state = breaker.state
        admitted = breaker.admit(rules, now)
        if admitted and state != CLOSED:
            assert probe_out_until is None or now >= probe_out_until
            probe_out_until = now + rules.lease_ms
        assert admitted or state != CLOSED  # a closed circuit always admits
        assert breaker.state in (CLOSED, OPEN, HALF_OPEN)


def clock_at(start: float = T0 / 1000) -> list[float]:
    return [start]


@pytest.mark.anyio
async def test_memory_health_follows_the_breaker_and_averages_latency() -> None:
    now = clock_at()
    health = MemoryHealth({"a": RULES}, clock=lambda: now[0])
    for latency in (0.100, 0.200):
        assert await health.admit("a")
        health.record("a", True, latency)
    for _ in range(3):
        health.record("a", False, 0.001)  # a fast error does not make a fast endpoint
    assert await health.views(["a"]) == {"a": View(OPEN, False, 3, pytest.approx(120.0))}
    assert not await health.admit("a")
    snapshot = health.snapshot()
    assert snapshot == {
        "a": {
            "state": "open",
            "failures": 3,
            "error_rate": 0.6,
            "ewma_ms": 120.0,
            "opened_at": "2027-01-15T08:00:00Z",
        }
    }
    now[0] += 5
    assert (await health.views(["a"]))["a"].ready
    assert await health.admit("a")
    assert not await health.admit("a")
    health.record("a", True, 0.1)
    assert health.snapshot()["a"] | {"ewma_ms": None} == {
        "state": "closed",
        "failures": 0,
        "error_rate": 0.0,
        "ewma_ms": None,
        "opened_at": None,
    }


@pytest.mark.anyio
async def test_a_provider_without_thresholds_gets_the_default_breaker() -> None:
    health = MemoryHealth({}, clock=lambda: T0 / 1000)
    for _ in range(Thresholds().failures):
        assert await health.admit("unknown")
        health.record("unknown", False, 0.1)
    assert not await health.admit("unknown")
    assert list(health.snapshot()) == ["unknown"]
    await health.start()
    await health.stop()
    assert not await health.admit("unknown")


def opened(now: list[float], probes: dict[str, object]) -> MemoryHealth:
    health = MemoryHealth(dict.fromkeys(probes, RULES), clock=lambda: now[0])
    for name in probes:
        for _ in range(3):
            health.record(name, False, 0.1)
    return health


@pytest.mark.anyio
async def test_an_active_probe_runs_only_when_due_and_its_outcome_decides() -> None:
    now, calls = clock_at(), []

    async def healthy() -> None:
        calls.append("up")

    async def broken() -> None:
        calls.append("down")
        raise UpstreamTimeout("The upstream provider 'down' did not answer in time.")

    health = opened(now, {"up": healthy, "down": broken})
    prober = Prober(health, {"up": (1.0, healthy), "down": (1.0, broken)})
    assert await prober.round("up") is None  # cooling down
    now[0] += 5
    assert await prober.round("up") is True
    assert await prober.round("down") is False
    assert calls == ["up", "down"]
    assert health.snapshot()["up"]["state"] == "closed"
    assert health.snapshot()["down"]["state"] == "open"
    assert await prober.round("up") is None  # closed: real traffic decides
    assert calls == ["up", "down"]


@pytest.mark.anyio
async def test_probes_run_in_the_background_until_stopped() -> None:
    now, waits, probed = clock_at(), [], asyncio.Event()

    async def probe() -> None:
        probed.set()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) > 1:
            await asyncio.Event().wait()  # park the loop until it is cancelled

    health = opened(now, {"a": probe})
    now[0] += 5
    prober = Prober(health, {"a": (7.5, probe)}, sleep=sleep)
    prober.start()
    await asyncio.wait_for(probed.wait(), 5)
    await prober.stop()
    assert waits == [7.5, 7.5]
    assert health.snapshot()["a"]["state"] == "closed"


def test_probes_are_built_for_providers_with_a_probe_interval() -> None:
    every = BreakerConfig(probe_interval=timedelta(seconds=15))
    providers = [
        EchoProvider(ProviderConfig(name="probed", kind="echo", models=["m"], breaker=every)),
        EchoProvider(ProviderConfig(name="passive", kind="echo", models=["m"])),
    ]
    probes = probes_for(providers)
    assert list(probes) == ["probed"]
    assert probes["probed"][0] == 15.0


@pytest.mark.anyio
async def test_a_probe_failing_with_a_connection_error_counts_as_down() -> None:
    now = clock_at()

    async def refused() -> None:
        raise ConnectionRefusedError

    health = opened(now, {"a": refused})
    now[0] += 5
    assert await Prober(health, {"a": (1.0, refused)}).round("a") is False
    assert not await health.admit("a")
