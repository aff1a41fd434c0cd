"""What the benchmarks share: targets to load, timed runs with CPU accounting, the fake upstream and Bastion."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import load
import procs
import upstream

if TYPE_CHECKING:
    from collections.abc import Iterator

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
PATH = "/v1/chat/completions"
CONCURRENCIES = (1, 32)
CONFIG = """\
organization: bench
providers:
  - name: upstream
    kind: openai
    base_url: http://127.0.0.1:{port}/v1
    models: [{model}]
projects:
  - name: bench
    models: [{model}]
"""

# The same, governed: the key belongs to a service account with an IP allowlist and endpoint
# permissions, and all four limit scopes (key, principal, project, source address) are on, with
# limits far above what the bench sends so that every request is checked and none refused.
GOVERNED = (
    CONFIG
    + """    limits: {{rpm: 100000000, tpm: 1000000000, daily_tokens: 10000000000000}}
    keys: {{limits: {{rpm: 100000000, tpm: 1000000000}}}}
server:
  ip_limits: {{rpm: 100000000, tpm: 1000000000}}
service_accounts:
  - name: bench-bot
    project: bench
    permissions: [chat.completions]
    ip_allowlist: [127.0.0.0/8, "::1/128"]
    limits: {{rpm: 100000000, tpm: 1000000000}}
"""
)


@dataclass(frozen=True)
class Target:
    """Something to load: a port, the headers every request carries, and its label in the tables."""

    label: str
    port: int
    headers: dict[str, str]
    pid: int | None = None  # the process whose CPU time per request is reported


@dataclass(frozen=True)
class Measured:
    """One timed run, with how busy the gateway's core and the clients' core were during it."""

    target: str
    concurrency: int
    result: load.Result
    gateway_cpu: float | None
    clients_cpu: float | None
    cpu_us: float | None  # CPU time the target's process spent per request, in microseconds
    others: float | None  # CPU used by other processes meanwhile, in percent of one core


class Bench:
    """Runs the load generator against targets with the chosen pinning and durations."""

    def __init__(self, pin: procs.Pinning, seconds: float, warmup: float, folder: Path, python_load: bool) -> None:
        self.pin = pin
        self.seconds = seconds
        self.warmup = warmup
        self.folder = folder
        self.use_wrk = not python_load and load.have_wrk()
        self.upstream_pid: int | None = None

    def describe(self) -> list[str]:
        """What the run is made of, to print before the numbers."""
        generator = "wrk (1 thread, closed loop, keep-alive connections)"
        if not self.use_wrk:
            generator = "PYTHON FALLBACK (asyncio/uvloop; slower than wrk, may itself be the bottleneck)"
        return [
            f"pinning: {self.pin.describe()}",
            f"load generator: {generator}",
            f"request: POST {PATH}, {len(load.REQUEST)} bytes of JSON; answer: {len(upstream.COMPLETION)} bytes",
            f"runs: {self.warmup:g}s warm-up per target, then {self.seconds:g}s at each concurrency of {CONCURRENCIES}",
        ]

    def _ours(self, target: Target) -> tuple[float, float]:
        """CPU seconds so far of the target, and of all the benchmark's processes together."""
        spent = procs.process_cpu(target.pid) if target.pid else 0.0
        upstream = procs.process_cpu(self.upstream_pid) if self.upstream_pid not in (None, target.pid) else 0.0
        return spent, spent + upstream + procs.children_cpu()

    def _script(self, headers: dict[str, str]) -> Path:
        """The wrk script that sends the request (with ``headers``)."""
        return load.wrk_script(self.folder, headers)

    def run(self, target: Target, concurrency: int, seconds: float) -> Measured:
        url = f"http://{procs.HOST}:{target.port}{PATH}"
        before, (spent, ours) = procs.core_times(), self._ours(target)
        if self.use_wrk:
            result = load.run_wrk(self.pin.clients, url, concurrency, seconds, self._script(target.headers))
        else:
            result = load.run_python(self.pin.clients, url, concurrency, seconds, target.headers)
        after, (spent_after, ours_after) = procs.core_times(), self._ours(target)
        gateway, clients = (procs.busy_percent(before, after, core) for core in self.pin.cores())
        cpu_us = (spent_after - spent) / result.requests * 1e6 if target.pid and result.requests else None
        others = procs.others_percent(before, after, ours_after - ours)
        return Measured(target.label, concurrency, result, gateway, clients, cpu_us, others)

    def measure(self, target: Target) -> list[Measured]:
        """Check the answer, warm up (connections, caches), then one timed run per concurrency."""
        check_answer(target, upstream.COMPLETION)
        print(f"  measuring {target.label}", flush=True)
        self.run(target, max(CONCURRENCIES), self.warmup)
        return [self.run(target, concurrency, self.seconds) for concurrency in CONCURRENCIES]

    @contextlib.contextmanager
    def upstream(self, server: str = "raw", *, alone: bool = False) -> Iterator[Target]:
        """The fake upstream; it shares the clients' core unless ``alone`` (then it gets the gateway core)."""
        port = procs.free_port()
        pin = self.pin.gateway if alone else self.pin.clients
        command = [*pin, sys.executable, str(HERE / "upstream.py"), "--port", str(port), "--server", server]
        with procs.running(command, port) as process:
            self.upstream_pid = process.pid
            try:
                yield Target(f"upstream ({server})", port, {"Authorization": "Bearer sk-bench"}, process.pid)
            finally:
                self.upstream_pid = None


def check_answer(target: Target, expected: bytes) -> None:
    """Before loading a target, make sure it answers the benchmark request with the upstream's exact body."""
    status, body = procs.post(target.port, PATH, load.REQUEST, target.headers)
    if status != 200 or body != expected:
        raise SystemExit(f"{target.label} answered HTTP {status} with {body[:200]!r}; not benchmarking a broken setup")


class Bastion:
    """A Bastion home in the bench folder: a config pointing at the upstream, and a real key for project bench."""

    def __init__(self, bench: Bench, upstream_port: int, *, governed: bool = False, name: str = "home") -> None:
        self._bench = bench
        self.config = bench.folder / f"{name}.yaml"
        self.config.write_text((GOVERNED if governed else CONFIG).format(port=upstream_port, model=load.MODEL))
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("BASTION_")}
        self.env["BASTION_HOME"] = str(bench.folder / name)
        self.env["BASTION_DATABASE_URL"] = f"sqlite:///{bench.folder / name / 'bastion.db'}"
        owner = ["--service-account", "bench-bot"] if governed else []
        command = [str(BIN / "bastion"), "keys", "create", "--project", "bench", *owner, "--config", str(self.config)]
        out = subprocess.run(command, env=self.env, capture_output=True, text=True, check=True, timeout=60).stdout
        self.key = out.strip().splitlines()[0]

    @contextlib.contextmanager
    def serve(self, level: str, label: str, extra_env: dict[str, str] | None = None) -> Iterator[Target]:
        """``bastion serve`` alone on the gateway core at ``level``; its log goes to a file, as a deployment's."""
        port = procs.free_port()
        env = {**self.env, "BASTION_LOG_LEVEL": level, **(extra_env or {})}
        serve = [str(BIN / "bastion"), "serve", "--config", str(self.config), "--port", str(port)]
        log_path = self._bench.folder / f"bastion-{label.replace(' ', '-').replace(',', '')}.log"
        command = [*self._bench.pin.gateway, *serve]
        with log_path.open("wb") as log, procs.running(command, port, env=env, log=log) as process:
            status, _ = procs.post(port, PATH, load.REQUEST, {"Authorization": "Bearer bst_not_a_key"})
            if status != 401:
                raise SystemExit(f"Bastion answered HTTP {status} to a wrong key; keys are not being checked")
            yield Target(label, port, {"Authorization": f"Bearer {self.key}"}, process.pid)
        lines = sum(1 for _ in log_path.open("rb"))
        print(f"    ({label}: {lines:,} log lines written)")


def ms(value: float) -> str:
    """Milliseconds, rounded up to the microsecond so a reported latency is never better than measured."""
    return f"{math.ceil(value * 1000 - 1e-9) / 1000:.3f}"


def rps(value: float) -> str:
    """Requests per second, rounded down."""
    return f"{math.floor(value):,}"


def ratio(value: float) -> str:
    """A ratio, rounded down to three decimals."""
    return f"{math.floor(value * 1000) / 1000:.3f}"


def cpu(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}%"


def cpu_us(value: float | None) -> str:
    """Microseconds of CPU per request, rounded up (jiffies make it accurate to a few percent only)."""
    return "" if value is None else f"{math.ceil(value)}"


def markdown(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
