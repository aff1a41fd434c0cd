"""Faults the fake upstream injects at run time (``POST /_fault``), and the counters that show their effect.

A fault overrides the behaviour that model names pick, for every request until it is changed or cleared.
Everything in it is deterministic: failures are spread evenly over the requests, and random cut points
come from a generator seeded with the request itself, so a test can compute what a client will receive.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SPLITS = ("chars", "random")
MAX_RANDOM_CUTS = 8


@dataclass(frozen=True)
class Fault:
    """What goes wrong; see :func:`parse` for the JSON that sets it."""

    error_rate: float = 0.0  # fraction of requests answered with ``status`` (spread evenly, the first one fails)
    status: int = 500
    retry_after: int = 1  # seconds, sent with a 429 or 503
    down: bool = False  # reset every connection, as a dead endpoint
    latency: float = 0.0  # seconds before the headers
    stall_before: bool = False  # hang before the headers
    stall_after_headers: bool = False  # a stream: send the headers, then hang before the first event
    stall_during: bool = False  # send a few events (or half a JSON body), then hang
    trickle: float = 0.0  # seconds between two SSE events
    split: str | None = None  # write each SSE event in adversarial pieces: "chars" or "random"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


_TYPES: dict[str, tuple[type, ...]] = {
    "error_rate": (int, float),
    "status": (int,),
    "retry_after": (int,),
    "down": (bool,),
    "latency": (int, float),
    "stall_before": (bool,),
    "stall_after_headers": (bool,),
    "stall_during": (bool,),
    "trickle": (int, float),
    "split": (str, type(None)),
}


def parse(data: object) -> Fault:
    """A :class:`Fault` from ``POST /_fault``'s JSON; ``ValueError`` names the key that is wrong."""
    if not isinstance(data, dict):
        raise ValueError('a fault is a JSON object, e.g. {"error_rate": 0.5, "status": 500}')
    known = {f.name for f in fields(Fault)}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"unknown fault '{key}'; use one of {', '.join(sorted(known))}")
        # bool is an int in Python, so numbers must be told apart from switches explicitly.
        if not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and bool not in _TYPES[key]):
            raise ValueError(f"'{key}' cannot be {value!r}")
    fault = Fault(**data)
    _check(fault, data)
    return fault


def _check(fault: Fault, data: dict[str, Any]) -> None:
    if not 0 <= fault.error_rate <= 1:
        raise ValueError("'error_rate' is a fraction from 0 to 1")
    if "status" in data and "error_rate" not in data:
        raise ValueError("'status' needs 'error_rate': the fraction of requests that get it")
    if not 400 <= fault.status <= 599:
        raise ValueError("'status' is an HTTP error status, 400 to 599")
    if min(fault.latency, fault.trickle, fault.retry_after) < 0:
        raise ValueError("'latency', 'trickle' and 'retry_after' cannot be negative")
    if fault.split not in (None, *SPLITS):
        raise ValueError(f"'split' is one of {', '.join(SPLITS)}")


@dataclass
class Faults:
    """The fault in force, and how many requests it has seen (which decides who fails)."""

    fault: Fault | None = None
    seen: int = 0

    def set(self, fault: Fault | None) -> None:
        self.fault = fault
        self.seen = 0

    def fails(self, fault: Fault) -> bool:
        """Whether the next request fails: after ``n`` requests, exactly ``ceil(n * error_rate)`` have."""
        self.seen += 1
        before, now = (math.ceil(round(n * fault.error_rate, 9)) for n in (self.seen - 1, self.seen))
        return now > before


@dataclass
class Stats:
    """``GET /_stats``: requests to the API routes, those that failed, and answers by status.

    A request fails when it is answered with a status of 400 or more or never finishes (a reset, a cut,
    a stall its client gave up on); those that never finish count under ``aborted``.
    """

    name: str | None = None
    requests: int = 0
    failed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def finished(self, status: int | None) -> None:
        key = "aborted" if status is None else str(status)
        self.by_status[key] = self.by_status.get(key, 0) + 1
        self.failed += status is None or status >= 400

    def clear(self) -> None:
        self.requests, self.failed, self.by_status = 0, 0, {}

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "requests": self.requests, "failed": self.failed, "by_status": self.by_status}


def rng_for(path: str, body: bytes) -> random.Random:
    """The generator of a request's random cut points: the same request is always cut the same way."""
    return random.Random(hashlib.sha256(path.encode() + b"\n" + body).digest())


def pieces(raw: bytes, split: str | None, rng: random.Random) -> list[bytes]:
    """``raw`` in the pieces that go out as separate writes.

    No split: two halves, as the fake always did. ``chars``: one byte a write (so a multi-byte
    character is cut too). ``random``: up to eight cuts at random offsets.
    """
    if split == "chars":
        return [raw[i : i + 1] for i in range(len(raw))]
    if split == "random":
        count = rng.randint(1, min(MAX_RANDOM_CUTS, len(raw) - 1))
        cuts = sorted(rng.sample(range(1, len(raw)), count))
        return [raw[start:end] for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    return [raw[: len(raw) // 2], raw[len(raw) // 2 :]]
