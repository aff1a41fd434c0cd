"""Endpoint health: each provider's circuit breaker and latency, fed by real traffic, read by the router.

Two stores behind one interface: :class:`MemoryHealth` keeps state in this process, ``RedisHealth``
(``redis_health.py``) shares it between replicas. Breakers are a health optimisation, not a safety
step: whether a provider *may* take a request (residency, attestations) never depends on them.

The request path uses it like this::

    if await health.admit(name):          # False while the circuit is open; one probe when half-open
        ...send...
        health.record(name, ok, seconds)  # ok=False only for what says the endpoint is unwell
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from bastion.routing.breaker import CLOSED, Breaker, Thresholds

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from bastion.config import ProviderConfig

# Weight of the newest latency in the moving average: about the last ten requests dominate.
EWMA_ALPHA = 0.2


@dataclass(frozen=True, slots=True)
class View:
    """What the router needs of an endpoint: its circuit, whether it would admit a request now, how it fares."""

    state: str
    ready: bool
    failures: int
    ewma_ms: float | None


class Health(Protocol):
    async def admit(self, provider: str) -> bool:
        """Whether to send a request to ``provider`` now; when half-open, True for exactly one probe."""

    def record(self, provider: str, ok: bool, latency_s: float) -> None:
        """Count an outcome of a request that :meth:`admit` let through."""

    async def views(self, providers: Sequence[str]) -> dict[str, View]:
        """The endpoints' state as this replica sees it (shared state at most a second old)."""

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every endpoint's state for /readyz and the admin API."""

    def configure(self, thresholds: Mapping[str, Thresholds]) -> None:
        """Use these breakers' thresholds from now on (providers were added, changed or removed)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def thresholds_from(providers: Iterable[ProviderConfig]) -> dict[str, Thresholds]:
    """Each provider's breaker; a half-open probe holds its slot for at most the provider's total timeout."""
    return {p.name: Thresholds.of(p.breaker, p.timeouts.total) for p in providers}


class Endpoints:
    """Every endpoint's breaker and latency average as this process knows them."""

    def __init__(self, thresholds: Mapping[str, Thresholds]) -> None:
        self._thresholds = dict(thresholds)
        self.breakers: dict[str, Breaker] = {}
        self._ewma: dict[str, float] = {}

    def configure(self, thresholds: Mapping[str, Thresholds]) -> None:
        self._thresholds = dict(thresholds)
        for gone in set(self.breakers) - set(thresholds):
            del self.breakers[gone]
            self._ewma.pop(gone, None)

    def rules(self, provider: str) -> Thresholds:
        """A provider's thresholds; one Bastion was not configured with gets the defaults."""
        return self._thresholds.get(provider) or Thresholds()

    def names(self) -> list[str]:
        return sorted(set(self._thresholds) | set(self.breakers))

    def breaker(self, provider: str) -> Breaker:
        return self.breakers.setdefault(provider, Breaker())

    def observe(self, provider: str, ok: bool, latency_s: float, now: int) -> None:
        """Count an outcome. Only successes move the latency average: a fast error is not a fast endpoint."""
        self.breaker(provider).record(self.rules(provider), ok, now)
        if ok:
            ms = latency_s * 1000
            last = self._ewma.get(provider)
            self._ewma[provider] = ms if last is None else last + EWMA_ALPHA * (ms - last)

    def view(self, provider: str, now: int) -> View:
        breaker = self.breaker(provider)
        ready = breaker.ready(self.rules(provider), now)
        return View(breaker.state, ready, breaker.failures, self._ewma.get(provider))

    def snapshot(self, now: int) -> dict[str, dict[str, Any]]:
        return {name: self._describe(name, now) for name in self.names()}

    def _describe(self, provider: str, now: int) -> dict[str, Any]:
        breaker = self.breaker(provider)
        ewma = self._ewma.get(provider)
        opened = None if breaker.state == CLOSED else datetime.fromtimestamp(breaker.opened_at / 1000, UTC)
        return {
            "state": breaker.state,
            "failures": breaker.failures,
            "error_rate": round(breaker.error_rate(self.rules(provider), now), 4),
            "ewma_ms": None if ewma is None else round(ewma, 1),
            "opened_at": None if opened is None else opened.isoformat().replace("+00:00", "Z"),
        }


class MemoryHealth:
    """Health kept in this process: right for one replica, and what ``RedisHealth`` falls back to."""

    def __init__(self, thresholds: Mapping[str, Thresholds], *, clock: Callable[[], float] = time.time) -> None:
        self._endpoints = Endpoints(thresholds)
        self._clock = clock

    async def admit(self, provider: str) -> bool:
        return self._endpoints.breaker(provider).admit(self._endpoints.rules(provider), self._now())

    def record(self, provider: str, ok: bool, latency_s: float) -> None:
        self._endpoints.observe(provider, ok, latency_s, self._now())

    async def views(self, providers: Sequence[str]) -> dict[str, View]:
        now = self._now()
        return {name: self._endpoints.view(name, now) for name in providers}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return self._endpoints.snapshot(self._now())

    def configure(self, thresholds: Mapping[str, Thresholds]) -> None:
        self._endpoints.configure(thresholds)

    async def start(self) -> None:
        """Nothing runs in the background: state changes only with requests."""

    async def stop(self) -> None:
        """Nothing to hand over: the state goes with the process."""

    def _now(self) -> int:
        return int(self._clock() * 1000)
