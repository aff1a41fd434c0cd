"""Breakers shared through a real Redis: replicas see one another's circuits, exactly one takes a probe,
the script decides as the in-process breaker does, and a replica carries on alone when Redis is gone."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import REDIS_URL, scratch_redis

from bastion.policy.redis_limits import connect
from bastion.routing.breaker import Thresholds
from bastion.routing.health import MemoryHealth
from bastion.routing.redis_health import KEY_TTL_MS, RedisHealth

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from redis.asyncio import Redis

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0
RULES = Thresholds(failures=3, error_rate=0.5, window_ms=10_000, min_requests=6, cooldown_ms=5_000, lease_ms=20_000)
PROPERTY = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    client: Redis
    prefix: str
    clock: Clock

    def replica(self, client: Any = None, **rules: Thresholds) -> RedisHealth:
        """One gateway replica's health; replicas of one test share the breakers under the test's prefix."""
        return RedisHealth(client or self.client, rules or {"a": RULES}, prefix=self.prefix, clock=self.clock)


@pytest.fixture
async def redis() -> AsyncIterator[Server]:
    async with scratch_redis("breaker:") as (client, prefix):
        yield Server(client, prefix, Clock())


async def trip(replica: RedisHealth, name: str = "a") -> None:
    for _ in range(RULES.failures):
        replica.record(name, False, 0.2)
    await replica.sync()


async def test_replicas_see_one_another_open_circuit_and_exactly_one_takes_the_probe(redis: Server) -> None:
    other = connect(REDIS_URL)
    try:
        first, second = redis.replica(), redis.replica(other)
        assert await second.admit("a")
        await trip(first)
        assert not await first.admit("a")
        await second.sync()
        assert not await second.admit("a")
        assert second.snapshot()["a"]["state"] == "open"

        redis.clock.now += 5
        views = await asyncio.gather(first.views(["a"]), second.views(["a"]))
        assert all(view["a"].ready for view in views)  # both think a probe is due; only Redis decides
        admitted = await asyncio.gather(*[replica.admit("a") for replica in (first, second) * 10])
        assert sum(admitted) == 1

        winner = first if admitted.index(True) % 2 == 0 else second
        loser = second if winner is first else first
        winner.record("a", True, 0.1)
        await winner.sync()
        await loser.sync()
        assert await loser.admit("a")
        assert loser.snapshot()["a"]["state"] == "closed"
    finally:
        await other.aclose()


async def test_failures_from_several_replicas_add_up(redis: Server) -> None:
    first, second = redis.replica(), redis.replica()
    first.record("a", False, 0.1)
    second.record("a", False, 0.1)
    await first.sync()
    await second.sync()
    assert second.snapshot()["a"]["failures"] == 2
    first.record("a", False, 0.1)
    await first.sync()
    await second.sync()
    assert not await second.admit("a")


async def test_a_closed_circuit_costs_no_round_trip(redis: Server) -> None:
    counting = Counting(redis.client)
    replica = redis.replica(counting)
    for _ in range(100):
        assert await replica.admit("a")
        replica.record("a", True, 0.05)
    assert counting.calls == 0
    await replica.sync()
    assert counting.calls == 1  # one batch for a hundred outcomes
    stored = await redis.client.hgetall(redis.prefix + "a")
    assert stored[b"state"] == b"closed"
    assert stored[b"requests"] == b"100"
    assert KEY_TTL_MS - 5_000 < await redis.client.pttl(redis.prefix + "a") <= KEY_TTL_MS


async def test_an_open_circuit_cooling_down_is_refused_without_asking_redis(redis: Server) -> None:
    counting = Counting(redis.client)
    replica = redis.replica(counting)
    await trip(replica)
    calls = counting.calls
    assert not any([await replica.admit("a") for _ in range(50)])
    assert counting.calls == calls


class Counting:
    """A Redis client that counts script runs, to show which calls stay local."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self.calls = 0

    async def script_load(self, script: str) -> Any:
        return await self._client.script_load(script)

    async def evalsha(self, sha: str, numkeys: int, *args: Any) -> Any:
        self.calls += 1
        return await self._client.evalsha(sha, numkeys, *args)


async def test_the_background_task_pushes_outcomes_and_stop_pushes_the_last(redis: Server) -> None:
    replica = redis.replica()
    await replica.start()
    replica.record("a", False, 0.1)
    await replica.stop()
    assert await redis.client.hget(redis.prefix + "a", "failures") == b"1"


async def test_views_sync_at_most_once_an_interval_without_the_background_task(redis: Server) -> None:
    first, second = redis.replica(), redis.replica()
    await second.views(["a"])
    await trip(first)
    assert (await second.views(["a"]))["a"].state == "closed"  # the copy is under half a second old
    redis.clock.now += 0.5
    assert (await second.views(["a"]))["a"].state == "open"


async def test_the_script_is_loaded_again_when_redis_forgets_it(redis: Server) -> None:
    replica = redis.replica()
    await trip(replica)
    await redis.client.script_flush()
    redis.clock.now += 5
    assert await replica.admit("a")
    assert await redis.client.hget(redis.prefix + "a", "state") == b"half_open"


async def test_an_unreachable_redis_leaves_each_replica_its_own_breakers(caplog: pytest.LogCaptureFixture) -> None:
    client = connect("redis://127.0.0.1:1/0", timeout=0.2)
    clock = Clock()
    replica = RedisHealth(client, {"a": RULES}, clock=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="bastion.routing.redis_health"):
            assert await replica.admit("a")
            await trip(replica)
            await replica.sync()
            assert not replica.shared
            assert not await replica.admit("a")
            clock.now += 5
            assert await replica.admit("a")  # the probe, decided locally
            assert not await replica.admit("a")
    finally:
        await client.aclose()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "circuit breakers cannot reach Redis (ConnectionError); this replica uses its own breaker state until it can"
    ]


async def test_a_replica_shares_again_once_redis_answers(redis: Server, caplog: pytest.LogCaptureFixture) -> None:
    replica = redis.replica()
    replica.shared = False  # as after an outage
    with caplog.at_level(logging.WARNING, logger="bastion.routing.redis_health"):
        await replica.sync()
    assert replica.shared
    assert "reach Redis again" in caplog.text


GAPS = st.sampled_from([0, 1, 5_000, 10_000, 20_000]) | st.integers(min_value=0, max_value=25_000)
OPERATION = st.tuples(st.sampled_from(["admit", "ok", "fail", "fail"]), GAPS)


@given(operations=st.lists(OPERATION, min_size=1, max_size=40))
@PROPERTY
async def test_the_script_decides_as_the_in_process_breaker_does(
    redis: Server, operations: list[tuple[str, int]]
) -> None:
    name = secrets.token_hex(4)
    memory = MemoryHealth({name: RULES}, clock=redis.clock)
    shared = redis.replica(**{name: RULES})
    for operation, gap in operations:
        redis.clock.now += gap / 1000
        if operation == "admit":
            assert await shared.admit(name) == await memory.admit(name)
        else:
            memory.record(name, operation == "ok", 0.1)
            shared.record(name, operation == "ok", 0.1)
            await shared.sync()
        assert shared.snapshot()[name] == memory.snapshot()[name]
