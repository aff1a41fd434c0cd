"""The test's side of the fake upstream: start it in its own process and drive its control API.

with running(tmp_path, name="east") as east:
    east.set_fault(error_rate=0.5, status=503)
    ...
    assert east.stats()["failed"] == 2
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from tests.processes import Server, clean_env, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

START_TIMEOUT = 30.0


@dataclass
class FakeUpstream:
    url: str
    name: str | None
    server: Server

    def set_fault(self, **fault: Any) -> dict[str, Any]:
        """Put a fault in force (``POST /_fault``); it returns the fault with every default filled in."""
        response = httpx.post(f"{self.url}/_fault", json=fault)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def reset(self) -> None:
        """No fault, nothing received, every counter at zero: as the fake started, for the next test."""
        for control in ("_fault", "_received", "_stats"):
            httpx.delete(f"{self.url}/{control}").raise_for_status()

    def received(self) -> list[dict[str, Any]]:
        """Every request since the last reset: method, path, query, headers, auth kind, deployment and body."""
        records: list[dict[str, Any]] = httpx.get(f"{self.url}/_received").json()
        return records

    def last(self) -> dict[str, Any]:
        records = self.received()
        assert records, "the fake upstream received nothing"
        return records[-1]

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/_stats").json()
        return result

    def clear(self) -> None:
        """Forget what was received (faults and counters stay)."""
        httpx.delete(f"{self.url}/_received").raise_for_status()

    def clear_fault(self) -> None:
        httpx.delete(f"{self.url}/_fault").raise_for_status()

    def cancelled(self, model: str) -> int:
        """How many requests for ``model`` the upstream saw their client abandon before it answered them."""
        count: int = httpx.get(f"{self.url}/_events").json()["cancelled_models"].get(model, 0)
        return count


@contextmanager
def running(log_dir: Path, name: str | None = None, fault: str | None = None) -> Iterator[FakeUpstream]:
    """A fake upstream on a free loopback port, stopped when the block ends; its log goes to ``log_dir``."""
    port = free_port()
    args = [sys.executable, "-m", "tests.fakes.upstream", "--port", str(port)]
    args += ["--name", name] if name else []
    args += ["--fault", fault] if fault else []
    server = Server.start(args, log_dir / f"upstream-{name or port}.log", clean_env())
    fake = FakeUpstream(f"http://127.0.0.1:{port}", name, server)
    try:
        wait_until(lambda: server.answers(f"{fake.url}/_stats"), START_TIMEOUT, "the fake upstream")
        yield fake
    finally:
        server.stop()
