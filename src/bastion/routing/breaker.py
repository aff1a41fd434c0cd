"""One endpoint's circuit breaker as a pure state machine: closed → open → half-open → closed.

Time is an integer of milliseconds passed in by the caller, so the in-process store and the Redis
script (``redis_health.py``, which repeats these steps line for line) reach the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bastion.config import BreakerConfig

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A provider's ``breaker`` settings in milliseconds, plus how long a half-open probe may hold its slot.

    ``lease_ms`` is the provider's total request timeout: by then the probe has answered or its replica
    died, and another request may probe instead.
    """

    failures: int = 5
    error_rate: float = 0.5
    window_ms: int = 30_000
    min_requests: int = 10
    cooldown_ms: int = 30_000
    lease_ms: int = 600_000

    @classmethod
    def of(cls, config: BreakerConfig, lease_s: float) -> Thresholds:
        return cls(
            failures=config.failures,
            error_rate=config.error_rate,
            window_ms=max(1, round(config.window.total_seconds() * 1000)),
            min_requests=config.min_requests,
            cooldown_ms=round(config.cooldown.total_seconds() * 1000),
            lease_ms=max(1, round(lease_s * 1000)),
        )


@dataclass(slots=True)
class Breaker:
    """The state of one endpoint's circuit.

    The error rate is a sliding-window estimate over two fixed windows aligned on ``window_ms`` (so
    replicas agree on their edges): the current window's counts plus the previous window's, weighted by
    how much of it still overlaps the last ``window_ms``.
    """

    state: str = CLOSED
    failures: int = 0  # in a row
    window_start: int = 0
    requests: int = 0
    errors: int = 0
    previous_requests: int = 0
    previous_errors: int = 0
    opened_at: int = 0
    probe_until: int = 0  # a half-open probe slot is taken until then

    def admit(self, rules: Thresholds, now: int) -> bool:
        """Whether a request may go: always when closed, never while cooling down, and once per probe lease
        when half-open (taking the slot)."""
        if self.state == OPEN and now >= self.opened_at + rules.cooldown_ms:
            self.state, self.probe_until = HALF_OPEN, 0
        if self.state == HALF_OPEN and now >= self.probe_until:
            self.probe_until = now + rules.lease_ms
            return True
        return self.state == CLOSED

    def ready(self, rules: Thresholds, now: int) -> bool:
        """What :meth:`admit` would answer now, without taking a probe slot."""
        if self.state == OPEN:
            return now >= self.opened_at + rules.cooldown_ms
        return self.state == CLOSED or now >= self.probe_until

    def record(self, rules: Thresholds, ok: bool, now: int) -> None:
        """Count one outcome. Half-open, it decides: success closes, failure reopens. Open, it is the late
        answer of a request sent before the circuit opened and changes nothing. Only a failure can trip."""
        if self.state == HALF_OPEN:
            if ok:
                self._close()
            else:
                self.failures += 1
                self._open(now)
            return
        if self.state == OPEN:
            return
        self._count(rules, ok, now)
        if not ok and self._tripped(rules, now):
            self._open(now)

    def error_rate(self, rules: Thresholds, now: int) -> float:
        seen, failed = self._scaled(rules, now)
        return failed / seen if seen else 0.0

    def _tripped(self, rules: Thresholds, now: int) -> bool:
        if self.failures >= rules.failures:
            return True
        seen, failed = self._scaled(rules, now)
        return seen >= rules.min_requests * rules.window_ms and failed >= rules.error_rate * seen

    def _scaled(self, rules: Thresholds, now: int) -> tuple[int, int]:
        """Requests and errors in the sliding window, both multiplied by ``window_ms`` to stay integers."""
        width = rules.window_ms
        start = now - now % width
        if start > self.window_start + width:
            return 0, 0
        if start == self.window_start + width:
            current, previous, elapsed = (0, 0), (self.requests, self.errors), now - start
        else:
            current, previous = (self.requests, self.errors), (self.previous_requests, self.previous_errors)
            elapsed = min(max(now - self.window_start, 0), width)
        weight = width - elapsed
        return current[0] * width + previous[0] * weight, current[1] * width + previous[1] * weight

    def _count(self, rules: Thresholds, ok: bool, now: int) -> None:
        width = rules.window_ms
        start = now - now % width
        if start > self.window_start:
            adjacent = start - self.window_start == width
            self.previous_requests = self.requests if adjacent else 0
            self.previous_errors = self.errors if adjacent else 0
            self.requests, self.errors, self.window_start = 0, 0, start
        self.requests += 1
        self.errors += 0 if ok else 1
        self.failures = 0 if ok else self.failures + 1

    def _open(self, now: int) -> None:
        self.state, self.opened_at, self.probe_until = OPEN, now, 0

    def _close(self) -> None:
        self.state, self.failures, self.opened_at, self.probe_until = CLOSED, 0, 0, 0
        self.requests = self.errors = self.previous_requests = self.previous_errors = 0
