"""Rate limits and daily token budgets: check-and-charge a request against several scopes at once.

Each scope (a key, principal, project, source IP ...) may carry an RPM and a TPM token bucket and a
daily token budget. A check is all-or-nothing: if any bucket refuses, none is charged. Tokens are
charged from an estimate before the upstream call and reconciled with the real usage after it.

Token buckets, not GCRA (they are equivalent; a level is easier to report as "remaining"): capacity
is the per-minute limit, refilled continuously at limit/60 per second. Arithmetic is exact integers
in token-milliseconds (a bucket of ``rpm`` holds ``rpm * 60_000`` units and gains ``rpm`` units a
millisecond), so the in-process store here and the Redis store (``redis_limits.py``, the same steps
in Lua) reach the same decision bit for bit. Reconciled debt may push a bucket below zero, at most
one hour of refill deep. Daily budgets are fixed windows per UTC day. A bucket that has refilled is
the same as one that was never used, so stores forget idle buckets once they are full again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000
DEBT_MINUTES = 60  # how far below empty reconciled usage may push a bucket, in minutes of refill
FULL_MS = (DEBT_MINUTES + 1) * MS_PER_MINUTE  # from the deepest debt to full
EXPIRY_MARGIN_MS = 1_000  # a store keeps a bucket this long after it would be full again
DAY_GRACE_MS = 3_600_000  # a day's counter outlives the day, for requests that finish after midnight
MAX_PER_MINUTE = 10**9  # keeps every intermediate value below 2**53, exact in Lua's doubles
MAX_PER_DAY = 10**13


class Meter(StrEnum):
    """What a bucket counts; the value is the last part of the bucket's storage key."""

    REQUESTS = "rpm"
    TOKENS = "tpm"
    DAILY = "day"


@dataclass(frozen=True, slots=True)
class Limits:
    """A scope's limits; None leaves that dimension unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None

    def __post_init__(self) -> None:
        for field, value, ceiling in (
            ("rpm", self.rpm, MAX_PER_MINUTE),
            ("tpm", self.tpm, MAX_PER_MINUTE),
            ("daily_tokens", self.daily_tokens, MAX_PER_DAY),
        ):
            if value is not None and (type(value) is not int or not 1 <= value <= ceiling):
                raise ValueError(f"{field} must be a whole number from 1 to {ceiling}, not {value!r}")


@dataclass(frozen=True, slots=True)
class Scope:
    """One thing a request counts against, e.g. ``Scope("project", "support-bot", Limits(rpm=600))``.

    ``name`` appears in refusal messages and storage keys, so pass a key's prefix, never the key.
    """

    kind: str
    name: str
    limits: Limits

    def __post_init__(self) -> None:
        if not self.kind.isidentifier() or not self.name:
            raise ValueError(
                f"a scope needs a kind like 'project' and a non-empty name, not {self.kind!r}/{self.name!r}"
            )


class Bucket(NamedTuple):
    """One bucket a call touches: what a store needs to check, charge or settle it.

    Immutable like the dataclasses here, but a tuple: a request builds several, and a frozen
    dataclass costs four times as much to build.
    """

    key: str  # storage key without the store's prefix
    scope: Scope
    meter: Meter
    limit: int
    cost: int  # requests or tokens; negative when reconciling a refund
    rate: int  # units gained per millisecond; 0 marks a daily counter
    capacity: int  # units when full
    amount: int  # cost in units
    expires_ms: int  # daily counters: when the store may drop it; rate buckets: 0 (derived from the level)


@dataclass(frozen=True, slots=True)
class Quota:
    """The state of the most constraining bucket of a kind, as OpenAI's ``x-ratelimit-*`` headers show it."""

    limit: int
    remaining: int
    reset_ms: int  # until the bucket is back to its initial state


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which scope and limit refused a request, and whether it could ever pass."""

    scope: Scope
    meter: Meter
    limit: int
    cost: int
    too_large: bool

    def message(self, retry_after: int) -> str:
        label = _LABELS.get(self.scope.kind, self.scope.kind.replace("_", " "))
        who = f"{label} '{self.scope.name}'"
        unit = _UNITS[self.meter]
        if self.too_large:
            what = "request" if self.meter is Meter.REQUESTS else "estimated token"
            return (
                f"This request's {what} count of {self.cost} is more than {who} allows at all "
                f"({self.limit} {unit}), so it can never pass; {_FIXES[self.meter]}."
            )
        text = f"{who} is over its {self.limit} {unit}; retry after {format_reset(retry_after * 1000)}."
        return text[0].upper() + text[1:]


_LABELS = {"ip": "source IP", "service_account": "service account"}
_UNITS = {Meter.REQUESTS: "requests per minute", Meter.TOKENS: "tokens per minute", Meter.DAILY: "tokens a day"}
_FIXES = dict.fromkeys(Meter, "shorten the prompt or lower max_tokens") | {
    Meter.REQUESTS: "send fewer requests at once"
}


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one check: allowed or not, when to retry, and what the headers should say."""

    allowed: bool
    day: int  # the UTC day (days since 1970-01-01) the tokens were charged to; pass it to reconcile()
    retry_after: int = 0  # whole seconds, >= 1 when refused and retrying can help, else 0
    refusal: Refusal | None = None
    requests: Quota | None = None
    tokens: Quota | None = None

    @property
    def too_large(self) -> bool:
        """Refused for good: the request asks for more than a scope's whole capacity."""
        return self.refusal is not None and self.refusal.too_large

    def message(self) -> str:
        """The refusal as a sentence for the error body, e.g. "Project 'x' is over its 600 requests per minute; ..."."""
        return "" if self.refusal is None else self.refusal.message(self.retry_after)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """OpenAI's ``x-ratelimit-*`` headers for the most constraining scopes, and ``retry-after`` when useful."""
        pairs: list[tuple[bytes, bytes]] = []
        for kind, quota in ((b"requests", self.requests), (b"tokens", self.tokens)):
            if quota is not None:
                pairs.append((b"x-ratelimit-limit-" + kind, str(quota.limit).encode()))
                pairs.append((b"x-ratelimit-remaining-" + kind, str(quota.remaining).encode()))
                pairs.append((b"x-ratelimit-reset-" + kind, format_reset(quota.reset_ms).encode()))
        if self.retry_after:
            pairs.append((b"retry-after", str(self.retry_after).encode()))
        return pairs


def format_reset(ms: int) -> str:
    """A duration as OpenAI writes resets (Go's notation): ``20ms``, ``1s``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, MS_PER_MINUTE)
    seconds, fraction = divmod(rest, 1000)
    text = (f"{seconds}.{fraction:03d}".rstrip("0") if fraction else str(seconds)) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    return f"{hours}h{text}" if hours else text


def refill(level: int, since_ms: int, now_ms: int, bucket: Bucket) -> int:
    """A rate bucket's level at ``now_ms``: continuous refill, capped at capacity; time never runs backwards."""
    elapsed = min(max(now_ms - since_ms, 0), FULL_MS)
    return min(bucket.capacity, level + elapsed * bucket.rate)


def settled(available: int, bucket: Bucket) -> int:
    """The level after charging ``bucket.amount`` (negative: a refund), kept between the debt floor and full."""
    return max(min(available - bucket.amount, bucket.capacity), -DEBT_MINUTES * bucket.capacity)


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


class BucketStore(Protocol):
    """Where bucket levels live. Both methods act on all the buckets atomically."""

    async def take(self, buckets: Sequence[Bucket], now_ms: int) -> tuple[bool, tuple[int, ...]]:
        """Charge every bucket if each has ``amount`` available, else none; return whether and the levels before."""

    async def settle(self, buckets: Sequence[Bucket], now_ms: int) -> None:
        """Charge (or refund) every bucket unconditionally."""


class MemoryBuckets:
    """The in-process store: one dict under one lock. For a single gateway process."""

    SWEEP_EVERY_MS = MS_PER_MINUTE

    def __init__(self) -> None:
        # storage key -> (level, or tokens used for a daily counter; last refill in ms; expiry in ms)
        self._entries: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def take(self, buckets: Sequence[Bucket], now_ms: int) -> tuple[bool, tuple[int, ...]]:
        with self._lock:
            self._sweep(now_ms)
            states = [self._state(bucket, now_ms) for bucket in buckets]
            levels = tuple(level for level, _ in states)
            if any(bucket.amount > level for bucket, level in zip(buckets, levels, strict=True)):
                return False, levels
            for bucket, (level, since) in zip(buckets, states, strict=True):
                self._write(bucket, level - bucket.amount, since, now_ms)  # 0 <= costs <= levels: no clamping
            return True, levels

    async def settle(self, buckets: Sequence[Bucket], now_ms: int) -> None:
        with self._lock:
            for bucket in buckets:
                level, since = self._state(bucket, now_ms)
                self._write(bucket, settled(level, bucket), since, now_ms)

    def _state(self, bucket: Bucket, now_ms: int) -> tuple[int, int]:
        entry = self._entries.get(bucket.key)
        if entry is None:
            return bucket.capacity, now_ms
        if bucket.rate == 0:
            # A day's counter is gone once its day (and grace) is over, as its Redis key is.
            return (bucket.capacity, now_ms) if entry[2] <= now_ms else (bucket.capacity - entry[0], now_ms)
        # A rate bucket reads from its level and time, as Redis does while the key exists: its expiry
        # only says when it is certainly full again, and a clock that stepped back must not refill it.
        return refill(entry[0], entry[1], now_ms, bucket), max(entry[1], now_ms)

    def _write(self, bucket: Bucket, level: int, since: int, now_ms: int) -> None:
        if bucket.rate == 0:
            self._entries[bucket.key] = (bucket.capacity - level, 0, max(bucket.expires_ms, now_ms + 1000))
        else:
            # Full again ``(capacity - level) / rate`` after its time, which a stepped-back clock puts ahead of now.
            expires = since + ceil_div(bucket.capacity - level, bucket.rate) + EXPIRY_MARGIN_MS
            self._entries[bucket.key] = (level, since, expires)

    def _sweep(self, now_ms: int) -> None:
        """Forget buckets that are full again (or past their day); they read the same as absent ones."""
        if now_ms < self._next_sweep:
            return
        self._next_sweep = now_ms + self.SWEEP_EVERY_MS
        for key in [key for key, (_, _, expires) in self._entries.items() if expires <= now_ms]:
            del self._entries[key]


class Limiter:
    """Checks requests against scopes; the store decides where levels live (this process, or Redis)."""

    def __init__(self, store: BucketStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def acquire(
        self, scopes: Sequence[Scope], *, requests: int = 1, tokens: int = 0, now: float | None = None
    ) -> Decision:
        """Charge ``requests`` and an estimate of ``tokens`` to every scope, or to none if any refuses."""
        if requests < 0 or tokens < 0:
            raise ValueError(f"requests and tokens must not be negative, not {requests} and {tokens}")
        now_ms = self._now_ms(now)
        day = now_ms // MS_PER_DAY
        buckets = list(plan(scopes, requests, tokens, day))
        if not buckets:
            return Decision(allowed=True, day=day)
        allowed, levels = await self._store.take(buckets, now_ms)
        return decide(buckets, allowed, levels, now_ms, day)

    async def reconcile(
        self, scopes: Sequence[Scope], delta_tokens: int, *, day: int | None = None, now: float | None = None
    ) -> None:
        """Settle the real usage: ``delta_tokens`` = used - estimated (negative refunds, positive is debt).

        Pass the acquiring decision's ``day`` so that a request finishing after midnight settles
        against the day it was charged to.
        """
        if delta_tokens == 0:
            return
        now_ms = self._now_ms(now)
        charged = now_ms // MS_PER_DAY if day is None else day
        buckets = [b for b in plan(scopes, 0, delta_tokens, charged) if b.meter is not Meter.REQUESTS]
        if buckets:
            await self._store.settle(buckets, now_ms)

    def _now_ms(self, now: float | None) -> int:
        return round((self._clock() if now is None else now) * 1000)


def plan(scopes: Sequence[Scope], requests: int, tokens: int, day: int) -> Iterator[Bucket]:
    """The buckets a call touches, in scope order; one scope named twice is a mistake in the caller."""
    seen: set[str] = set()
    for scope in scopes:
        prefix = f"{scope.kind}:{scope.name}:"
        if prefix in seen:
            raise ValueError(f"scope {scope.kind} '{scope.name}' appears twice in one check")
        seen.add(prefix)
        limits = scope.limits
        if limits.rpm is not None:
            yield _per_minute(prefix + Meter.REQUESTS, scope, Meter.REQUESTS, limits.rpm, requests)
        if limits.tpm is not None:
            yield _per_minute(prefix + Meter.TOKENS, scope, Meter.TOKENS, limits.tpm, tokens)
        if limits.daily_tokens is not None:
            key, expires = f"{prefix}{Meter.DAILY}:{_date(day)}", (day + 1) * MS_PER_DAY + DAY_GRACE_MS
            yield Bucket(key, scope, Meter.DAILY, limits.daily_tokens, tokens, 0, limits.daily_tokens, tokens, expires)


def _per_minute(key: str, scope: Scope, meter: Meter, limit: int, cost: int) -> Bucket:
    return Bucket(key, scope, meter, limit, cost, limit, limit * MS_PER_MINUTE, cost * MS_PER_MINUTE, 0)


def decide(buckets: Sequence[Bucket], allowed: bool, levels: Sequence[int], now_ms: int, day: int) -> Decision:
    """Turn a store's answer (and the levels before any charge) into a decision with its headers."""
    after = [level - b.amount for b, level in zip(buckets, levels, strict=True)] if allowed else levels
    requests, tokens = _quotas(buckets, after, now_ms)
    if allowed:
        return Decision(allowed=True, day=day, requests=requests, tokens=tokens)
    refusal, wait_ms = _refusal(buckets, levels, now_ms)
    retry_after = 0 if refusal.too_large else max(1, ceil_div(wait_ms, 1000))
    return Decision(allowed=False, day=day, retry_after=retry_after, refusal=refusal, requests=requests, tokens=tokens)


def _refusal(buckets: Sequence[Bucket], levels: Sequence[int], now_ms: int) -> tuple[Refusal, int]:
    """The refusal to report: one that can never pass if any, else the one that takes longest to clear."""
    worst: tuple[int, Bucket] | None = None
    for bucket, level in zip(buckets, levels, strict=True):
        if bucket.amount > bucket.capacity:
            return Refusal(bucket.scope, bucket.meter, bucket.limit, bucket.cost, too_large=True), 0
        if bucket.amount > level:
            wait = _until_midnight(now_ms) if bucket.rate == 0 else ceil_div(bucket.amount - level, bucket.rate)
            if worst is None or wait > worst[0]:
                worst = (wait, bucket)
    if worst is None:
        raise RuntimeError("the store refused a check that every bucket could pay for")
    wait, bucket = worst
    return Refusal(bucket.scope, bucket.meter, bucket.limit, bucket.cost, too_large=False), wait


def _quotas(buckets: Sequence[Bucket], after: Sequence[int], now_ms: int) -> tuple[Quota | None, Quota | None]:
    """The request and the token quota with the least remaining (then the longest reset) of their buckets."""
    best: dict[bool, tuple[int, int, int]] = {}  # is a request bucket -> (remaining, -reset, limit)
    for bucket, level in zip(buckets, after, strict=True):
        if bucket.rate == 0:
            quota = (max(level, 0), 0 if level >= bucket.capacity else -_until_midnight(now_ms), bucket.limit)
        else:
            quota = (max(level, 0) // MS_PER_MINUTE, -ceil_div(bucket.capacity - level, bucket.rate), bucket.limit)
        held = best.get(family := bucket.meter is Meter.REQUESTS)
        if held is None or quota[:2] < held[:2]:
            best[family] = quota
    return _quota(best.get(True)), _quota(best.get(False))


def _quota(best: tuple[int, int, int] | None) -> Quota | None:
    return None if best is None else Quota(limit=best[2], remaining=best[0], reset_ms=-best[1])


def _until_midnight(now_ms: int) -> int:
    return MS_PER_DAY - now_ms % MS_PER_DAY


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()


def memory_limiter(*, clock: Callable[[], float] = time.time) -> Limiter:
    """A limiter for one gateway process; limits do not hold across processes."""
    return Limiter(MemoryBuckets(), clock=clock)
