"""Retries inside the eligible set: which failures deserve another attempt, and how long to wait first.

Pure: the request path's loop asks one :class:`Attempts` per request after each failure::

    attempts = policy.start()
    for route in plan.routes:                  # (a loop may also try one route again)
        ...                                    # send, with a timeout of at most attempts.remaining()
        wait = attempts.pause(exc, same_endpoint=False)
        if wait is None: raise exc             # not retryable, out of attempts or out of budget
        await asyncio.sleep(wait)

Waits are full-jitter exponential backoff (uniform in [0, min(backoff_max, backoff * 2^n)]); an
upstream's ``Retry-After`` is honoured when the next attempt goes to the same endpoint, and a wait
that would not leave time for another attempt within the budget ends the retries instead.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from bastion.errors import BastionError, UpstreamError, UpstreamRejected

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.config import RoutingConfig

# The upstream 4xx worth another attempt: a timeout, a conflict, a rate limit (as the OpenAI SDK retries them).
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def retryable(exc: BaseException) -> bool:
    """Whether another attempt, here or at another eligible endpoint, may succeed where this one failed.

    Yes for every :class:`UpstreamError` but a refusal: connection failures, timeouts, the upstream's
    5xx, and its refusal of Bastion's credentials (another endpoint has its own). Of the upstream's 4xx
    (:class:`UpstreamRejected`, which carries ``.status``) only 408, 409 and 429. Nothing else.
    """
    if isinstance(exc, UpstreamRejected):
        return exc.status in RETRYABLE_STATUSES
    return isinstance(exc, UpstreamError)


def endpoint_failed(exc: BaseException) -> bool:
    """Whether a failure counts against the endpoint's circuit breaker (``record(ok=False)``).

    An upstream 4xx, 429 included, is an answer from a working endpoint: it is retried or relayed but
    does not open the circuit (record it as ok). A rate-limited endpoint is busy, not broken.
    """
    return isinstance(exc, UpstreamError) and not isinstance(exc, UpstreamRejected)


def retry_after(exc: BaseException, now: datetime) -> float | None:
    """Seconds the upstream asked to wait, from the headers relayed with ``exc``; None if it named none.

    ``retry-after-ms`` (OpenAI's, in milliseconds) wins over ``retry-after`` (seconds or an HTTP date).
    """
    headers = dict(exc.headers) if isinstance(exc, BastionError) else {}
    if b"retry-after-ms" in headers:
        milliseconds = _number(headers[b"retry-after-ms"])
        if milliseconds is not None:
            return milliseconds / 1000
    value = headers.get(b"retry-after")
    if value is None:
        return None
    seconds = _number(value)
    return seconds if seconds is not None else _until(value, now)


def _number(value: bytes) -> float | None:
    try:
        number = float(value.decode("latin-1").strip())
    except ValueError:
        return None
    return number if 0 <= number < float("inf") else None


def _until(value: bytes, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(value.decode("latin-1").strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``routing`` from the config: at most ``attempts`` per request within ``budget`` seconds."""

    attempts: int = 3
    budget: float = 30.0
    backoff: float = 0.1
    backoff_max: float = 2.0

    @classmethod
    def of(cls, config: RoutingConfig) -> RetryPolicy:
        return cls(config.attempts, config.budget, config.backoff, config.backoff_max)

    def start(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> Attempts:
        """One request's attempts, from now; ``clock`` measures the budget, ``wall`` reads HTTP dates."""
        return Attempts(self, clock, rng, wall)


class Attempts:
    """One request's retries: how many are left, its deadline, and how long to wait before the next."""

    def __init__(
        self, policy: RetryPolicy, clock: Callable[[], float], rng: Callable[[], float], wall: Callable[[], datetime]
    ) -> None:
        self.policy = policy
        self.deadline = clock() + policy.budget
        self.failed = 0
        self._clock = clock
        self._rng = rng
        self._wall = wall

    def remaining(self) -> float:
        """Seconds left in the budget: the most the next attempt may take."""
        return max(0.0, self.deadline - self._clock())

    def pause(self, exc: BaseException, *, same_endpoint: bool) -> float | None:
        """After a failed attempt: seconds to wait before the next one, or None to give up and raise ``exc``.

        Gives up when ``exc`` is not :func:`retryable`, when ``attempts`` were made, or when the wait
        would leave no time in the budget (the client then gets the upstream's answer, Retry-After
        included, at once). ``same_endpoint``: the next attempt goes where this one failed, so its
        ``Retry-After`` applies; another endpoint is tried after the jittered backoff alone.
        """
        self.failed += 1
        if not retryable(exc) or self.failed >= self.policy.attempts:
            return None
        wait = self._rng() * min(self.policy.backoff_max, self.policy.backoff * 2 ** (self.failed - 1))
        asked = retry_after(exc, self._wall()) if same_endpoint else None
        if asked is not None:
            wait = max(wait, asked)
        return wait if wait < self.remaining() else None
