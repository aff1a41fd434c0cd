"""Active probes: while an endpoint's circuit is not closed, check it without waiting for a client.

Only providers with ``breaker.probe_interval`` are probed. A probe takes the half-open slot like a
request would (so across replicas one probe runs at a time, and none during the cool-down) and its
outcome closes or reopens the circuit. Passive health from real traffic works without any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bastion.errors import UpstreamError
from bastion.routing.breaker import CLOSED

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from bastion.routing.health import Health
    from bastion.routing.providers.base import Provider

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[None]]


class Prober:
    """Runs ``probes[name]`` every ``intervals[name]`` seconds while ``name``'s circuit is open or half-open."""

    def __init__(
        self,
        health: Health,
        probes: Mapping[str, tuple[float, Probe]],
        *,
        timer: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._health = health
        self._probes = dict(probes)
        self._timer = timer
        self._sleep = sleep
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    async def round(self, provider: str) -> bool | None:
        """Probe once if the circuit allows it now; the outcome, or None when no probe was due."""
        view = (await self._health.views([provider]))[provider]
        if view.state == CLOSED or not view.ready or not await self._health.admit(provider):
            return None
        started = self._timer()
        try:
            await self._probes[provider][1]()
        except (UpstreamError, OSError) as exc:
            log.info("probe of %s failed: %s", provider, type(exc).__name__)
            self._health.record(provider, False, self._timer() - started)
            return False
        self._health.record(provider, True, self._timer() - started)
        return True

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._started = True
        self._tasks = [loop.create_task(self._run(name, interval)) for name, (interval, _) in self._probes.items()]

    async def replace(self, probes: Mapping[str, tuple[float, Probe]]) -> None:
        """Probe these endpoints from now on (providers were added, changed or removed)."""
        if dict(probes) == self._probes:
            return
        started = self._started
        await self.stop()
        self._probes = dict(probes)
        if started:
            self.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._started = False

    async def _run(self, provider: str, interval: float) -> None:
        while True:
            await self._sleep(interval)
            await self.round(provider)


def probes_for(providers: Iterable[Provider]) -> dict[str, tuple[float, Probe]]:
    """The providers configured with ``breaker.probe_interval``, with their interval in seconds and probe."""
    return {
        provider.name: (interval.total_seconds(), provider.probe)
        for provider in providers
        if (interval := provider.config.breaker.probe_interval) is not None
    }
