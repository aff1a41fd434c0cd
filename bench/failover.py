"""Failover under sustained load: three fake upstreams behind one Bastion; one fails half its requests, then goes down.

Run ``.venv/bin/python bench/failover.py`` (= ``make bench-failover``; about 2 minutes). Three named fake
upstreams (``tests/fakes/upstream.py``, each in its own process) serve one model at the same priority. Clients keep
``--concurrency`` keep-alive connections busy through one ``bastion serve`` process, pinned alone to a core as in
``bench/overhead.py``, through three phases: baseline (no fault), failing (``flaky`` answers every other request
with HTTP 500) and down (``flaky`` resets every connection). The breakers are Bastion's defaults unless
``--breaker`` says otherwise.

Reported per phase: client requests, client-visible errors (any answer but 200, or a broken connection), p50 and
p99 latency and their ratio to the baseline's, and the requests that reached ``flaky``. And how long the breaker
took to isolate ``flaky`` after each fault: from the fault to the last request ``flaky`` received (its ``/_stats``
polled every 25 ms, so rounded up to the poll that saw it), and to the first ``/readyz`` (polled every 100 ms) that
showed its circuit open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import uvloop

import harness
import load
import procs

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = harness.HERE.parent
FLAKY = "flaky"
NAMES = ("steady-a", "steady-b", FLAKY)
STATS_POLL = 0.025
READY_POLL = 0.1
QUIET = 2.0  # a phase whose last seconds bring flaky no request has isolated it
WARMUP = "warm-up"
FAULTS: dict[str, dict[str, Any] | None] = {
    WARMUP: None,  # connections opened, caches filled; not reported
    "baseline": None,
    "failing": {"error_rate": 0.5, "status": 500},
    "down": {"down": True},
}
PROVIDER = """  - name: {name}
    kind: openai
    base_url: http://127.0.0.1:{port}/v1
    models: {{{model}: fake-ok}}
    breaker: {breaker}
"""
PROJECT = "projects:\n  - name: bench\n"


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    end: float
    cpu: tuple[float | None, float | None, float | None]  # gateway core busy, clients' core busy, other load (%)


@dataclass(frozen=True)
class Meter:
    """CPU use of the two cores and of everything but the benchmark's processes, to tell a slow gateway from a
    busy machine (see ``procs.others_percent``)."""

    cores: tuple[str, str]
    pids: list[int]  # the gateway and the fakes; this process counts itself

    def sample(self) -> tuple[dict[str, tuple[int, int]], float]:
        own = os.times()
        return procs.core_times(), own.user + own.system + sum(procs.process_cpu(pid) for pid in self.pids)

    def since(
        self, before: tuple[dict[str, tuple[int, int]], float]
    ) -> tuple[float | None, float | None, float | None]:
        (cores, ours), (cores_now, ours_now) = before, self.sample()
        gateway, clients = (procs.busy_percent(cores, cores_now, core) for core in self.cores)
        return gateway, clients, procs.others_percent(cores, cores_now, ours_now - ours)


@dataclass
class Timeline:
    """What the run saw: each client request, and flaky's counters and circuit as polled."""

    requests: list[tuple[float, float, bool]] = field(default_factory=list)  # (sent at, seconds, answered 200)
    stats: list[tuple[float, int, int]] = field(default_factory=list)  # (at, requests flaky received, failed)
    circuit: list[tuple[float, str]] = field(default_factory=list)  # (at, flaky's circuit in /readyz)


# Processes ---------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def fakes(pin: procs.Pinning, folder: Path) -> Iterator[tuple[dict[str, int], list[int]]]:
    """The three named fake upstreams on the clients' core; their ports by name, and their process ids."""
    ports = {name: procs.free_port() for name in NAMES}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pids = []
    with contextlib.ExitStack() as stack:
        for name, port in ports.items():
            command = [*pin.clients, sys.executable, "-m", "tests.fakes.upstream", "--port", str(port), "--name", name]
            log = stack.enter_context((folder / f"{name}.log").open("wb"))
            pids.append(stack.enter_context(procs.running(command, port, env=env, log=log)).pid)
        yield ports, pids


def config(ports: dict[str, int], breaker: str) -> str:
    providers = "".join(
        PROVIDER.format(name=name, port=port, model=load.MODEL, breaker=breaker) for name, port in ports.items()
    )
    return f"organization: bench\nproviders:\n{providers}{PROJECT}"


@contextlib.contextmanager
def bastion(pin: procs.Pinning, folder: Path, text: str) -> Iterator[tuple[int, str, int]]:
    """``bastion serve`` alone on the gateway core with ``text`` as its config: its port, a key, its process id."""
    path = folder / "bastion.yaml"
    path.write_text(text)
    env = {name: value for name, value in os.environ.items() if not name.startswith("BASTION_")}
    env |= {"BASTION_HOME": str(folder / "home"), "BASTION_DATABASE_URL": f"sqlite:///{folder / 'bastion.db'}"}
    create = [str(harness.BIN / "bastion"), "keys", "create", "--project", "bench", "--config", str(path)]
    key = subprocess.run(create, env=env, capture_output=True, text=True, check=True, timeout=60).stdout.split()[0]
    port = procs.free_port()
    serve = [*pin.gateway, str(harness.BIN / "bastion"), "serve", "--config", str(path), "--port", str(port)]
    env["BASTION_LOG_LEVEL"] = "WARNING"
    with (folder / "bastion.log").open("wb") as log, procs.running(serve, port, env=env, log=log) as process:
        yield port, key, process.pid


# Load and polling --------------------------------------------------------------------------------------------------


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one response with a Content-Length body (every answer Bastion gives here has one); its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    marker = head.lower().find(b"\r\ncontent-length:")
    await reader.readexactly(int(head[marker + 17 : head.find(b"\r\n", marker + 2)]))
    return int(head[9:12])


async def client(port: int, key: str, stop: asyncio.Event, timeline: Timeline) -> None:
    """One keep-alive connection sending the benchmark request back to back; a broken one is opened again."""
    head = f"POST {harness.PATH} HTTP/1.1\r\nHost: {procs.HOST}:{port}\r\nContent-Type: application/json\r\n"
    request = f"{head}Authorization: Bearer {key}\r\nContent-Length: {len(load.REQUEST)}\r\n\r\n".encode()
    request += load.REQUEST
    while not stop.is_set():
        reader, writer = await asyncio.open_connection(procs.HOST, port)
        try:
            while not stop.is_set():
                sent = time.perf_counter()
                writer.write(request)
                status = await _answer(reader)
                timeline.requests.append((sent, time.perf_counter() - sent, status == 200))
        except (ConnectionError, asyncio.IncompleteReadError):
            timeline.requests.append((sent, time.perf_counter() - sent, False))
        finally:
            writer.close()


async def watch(http: httpx.AsyncClient, flaky: int, gateway: int, stop: asyncio.Event, timeline: Timeline) -> None:
    """Poll flaky's counters every STATS_POLL seconds and the gateway's /readyz every READY_POLL seconds."""
    next_ready = 0.0
    while not stop.is_set():
        stats = (await http.get(f"http://{procs.HOST}:{flaky}/_stats")).json()
        timeline.stats.append((time.perf_counter(), stats["requests"], stats["failed"]))
        if time.perf_counter() >= next_ready:
            ready = (await http.get(f"http://{procs.HOST}:{gateway}/readyz")).json()
            timeline.circuit.append((time.perf_counter(), ready["checks"]["circuits"].get(FLAKY, "closed")))
            next_ready = time.perf_counter() + READY_POLL
        await asyncio.sleep(STATS_POLL)


async def run(
    ports: dict[str, int], gateway: tuple[int, str], plan: dict[str, float], concurrency: int, meter: Meter
) -> tuple[Timeline, list[Phase]]:
    """Keep the clients busy through the phases, putting each phase's fault in force on flaky as it starts."""
    timeline, stop, phases = Timeline(), asyncio.Event(), []
    async with httpx.AsyncClient(timeout=5.0) as http:
        tasks = [asyncio.create_task(client(*gateway, stop, timeline)) for _ in range(concurrency)]
        tasks.append(asyncio.create_task(watch(http, ports[FLAKY], gateway[0], stop, timeline)))
        for name, seconds in plan.items():
            # flaky's counters just before the fault, which is timed from before it is sent (never late)
            stats = (await http.get(f"http://{procs.HOST}:{ports[FLAKY]}/_stats")).json()
            start, cpu = time.perf_counter(), meter.sample()
            timeline.stats.append((start, stats["requests"], stats["failed"]))
            fault = FAULTS[name]
            if fault is not None:
                (await http.post(f"http://{procs.HOST}:{ports[FLAKY]}/_fault", json=fault)).raise_for_status()
            print(f"  {name}: {seconds:g} s", flush=True)
            await asyncio.sleep(seconds)
            phases.append(Phase(name, start, time.perf_counter(), meter.since(cpu)))
        stop.set()
        await asyncio.gather(*tasks)
    return timeline, [phase for phase in phases if phase.name != WARMUP]


# Results -----------------------------------------------------------------------------------------------------------


def up(value: float, places: int = 3) -> str:
    """Rounded up: a latency, an error rate or a slowdown is never reported better than measured."""
    scale = 10**places
    return f"{math.ceil(value * scale - 1e-9) / scale:.{places}f}"


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    if len(latencies) < 2:
        return (latencies[0] * 1000, latencies[0] * 1000) if latencies else (math.nan, math.nan)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def flaky_between(timeline: Timeline, start: float, end: float) -> tuple[int, int]:
    """Requests flaky received, and of them failed, between two instants (as the polls saw them)."""
    before = [s for s in timeline.stats if s[0] <= start] or timeline.stats[:1]
    after = [s for s in timeline.stats if s[0] <= end] or before
    return after[-1][1] - before[-1][1], after[-1][2] - before[-1][2]


def phase_row(timeline: Timeline, phase: Phase, baseline: tuple[float, float]) -> list[str]:
    sent = [r for r in timeline.requests if phase.start <= r[0] < phase.end]
    errors = sum(not ok for _, _, ok in sent)
    p50, p99 = percentiles([seconds for _, seconds, _ in sent])
    received, failed = flaky_between(timeline, phase.start, phase.end)
    seconds = phase.end - phase.start
    return [
        phase.name,
        f"{seconds:.1f}",
        f"{len(sent):,}",
        harness.rps(len(sent) / seconds),
        f"{errors:,}",
        f"{up(100 * errors / len(sent), 2)} %" if sent else "-",
        up(p50),
        up(p99),
        up(p50 / baseline[0]),
        up(p99 / baseline[1]),
        f"{received:,}",
        f"{failed:,}",
        *(harness.cpu(value) for value in phase.cpu),
    ]


def increases(timeline: Timeline, start: float, end: float) -> list[tuple[float, int]]:
    """Each poll between two instants that saw flaky's request count grow, with the count it saw."""
    # Two polls in flight at once may land out of order: a count only counts once it is the highest seen.
    highest = itertools.accumulate((count for _, count, _ in timeline.stats), max)
    polls = [(t, count) for (t, _, _), count in zip(timeline.stats, highest, strict=True) if t < end]
    return [(t, count) for (_, before), (t, count) in itertools.pairwise(polls) if t >= start and count > before]


def isolated_at(grown: list[tuple[float, int]], end: float) -> int | None:
    """The index of the increase after which flaky got no request for QUIET seconds: the breaker isolated it."""
    for index, (t, _) in enumerate(grown):
        following = grown[index + 1][0] if index + 1 < len(grown) else end
        if following - t >= QUIET:
            return index
    return None


def state_at(timeline: Timeline, instant: float) -> str:
    return next((state for t, state in reversed(timeline.circuit) if t <= instant), "closed")


def isolation(timeline: Timeline, phase: Phase, until: float) -> str:
    """When the breaker stopped sending flaky requests after this phase's fault, and what reached flaky later.

    Isolated means: no request for QUIET seconds after it, looking on to ``until`` (the end of the run), so that a
    circuit that opens near the end of a phase and stays open is seen as such.
    """
    if state_at(timeline, phase.start) != "closed":
        probes = ", ".join(f"+{up(t - phase.start)} s" for t, _ in increases(timeline, phase.start, phase.end))
        return f"{phase.name}: the circuit was already open when the fault began; later requests: {probes or 'none'}"
    grown = increases(timeline, phase.start, until)
    index = isolated_at(grown, until)
    opened = next((t for t, state in timeline.circuit if phase.start <= t < phase.end and state == "open"), None)
    shown = (
        f"/readyz first showed it open at +{up(opened - phase.start)} s" if opened else "/readyz never showed it open"
    )
    if index is None or grown[index][0] >= phase.end:
        return f"{phase.name}: NOT isolated while the fault lasted; {shown}"
    isolated = grown[index][0]
    before, _ = flaky_between(timeline, phase.start, isolated)
    _, p99 = percentiles([seconds for sent, seconds, _ in timeline.requests if phase.start <= sent < isolated])
    later = ", ".join(f"+{up(t - phase.start)} s" for t, _ in grown[index + 1 :] if t < phase.end) or "none"
    return (
        f"{phase.name}: isolated +{up(isolated - phase.start)} s after the fault (the poll that saw flaky's last "
        f"request before {QUIET:g} s without any; {before:,} requests reached it until then, client p99 until then "
        f"{up(p99)} ms); {shown}; requests that reached it later in the phase (half-open probes): {later}"
    )


HEAD = ["phase", "s", "client requests", "req/s", "client errors", "error rate", "p50 ms", "p99 ms"]
HEAD += ["p50 vs baseline", "p99 vs baseline", "requests to flaky", "flaky failed"]
HEAD += ["gateway core busy", "clients' core busy", "other load"]


def report(timeline: Timeline, phases: list[Phase]) -> list[str]:
    baseline = percentiles([s for sent, s, _ in timeline.requests if phases[0].start <= sent < phases[0].end])
    lines = harness.markdown(HEAD, [phase_row(timeline, phase, baseline) for phase in phases])
    lines += ["", "Time for the breaker to isolate flaky:"]
    lines += [f"- {isolation(timeline, phase, phases[-1].end)}" for phase in phases[1:]]
    errors = sum(not ok for sent, _, ok in timeline.requests if phases[1].start <= sent)
    verdict = "met" if errors == 0 else "NOT met"
    lines += ["", f"Client-visible errors while two healthy endpoints remained: {errors:,} (target 0): {verdict}"]
    return lines


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no", "src")
    return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes in src/)" if changed else "")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def describe(args: argparse.Namespace, pin: procs.Pinning) -> list[str]:
    return [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; commit {_commit()}",
        f"machine: {os.cpu_count()} CPUs, {_cpu_model()}; Python {platform.python_version()}",
        f"command: {' '.join([Path(sys.executable).name, *sys.argv])}",
        f"pinning: {pin.describe()}; load generator: this process (asyncio/uvloop), on the clients' core",
        f"load: {args.concurrency} keep-alive connections, closed loop, POST {harness.PATH}, {len(load.REQUEST)} bytes",
        f"breaker: {args.breaker}; routing: Bastion's defaults (3 attempts, 30 s budget)",
    ]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16, help="client connections (default 16)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before the baseline (default 3)")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds without a fault (default 10)")
    parser.add_argument(
        "--failing", type=float, default=75.0, help="seconds of flaky failing half (default 75; 0 skips the phase)"
    )
    parser.add_argument("--down", type=float, default=15.0, help="seconds of flaky down (default 15)")
    parser.add_argument(
        "--breaker", default="{}", help="the providers' breaker, a YAML mapping (default: {} = defaults)"
    )
    return parser.parse_args()


def main() -> None:
    args = arguments()
    pin = procs.pinning()
    if pin.clients:
        os.sched_setaffinity(0, {int(pin.clients[-1])})
    print("\n".join(describe(args, pin)), flush=True)
    busy = procs.background_busy(pin.cores())
    print(f"background load before starting: {', '.join(harness.cpu(b) for b in busy)} busy (gateway, clients core)")
    with tempfile.TemporaryDirectory(prefix="bastion-failover-") as name:
        folder = Path(name)
        with fakes(pin, folder) as (ports, pids), bastion(pin, folder, config(ports, args.breaker)) as gateway:
            port, key, pid = gateway
            status, _ = procs.post(port, harness.PATH, load.REQUEST, {"Authorization": f"Bearer {key}"})
            if status != 200:
                raise SystemExit(f"Bastion answered HTTP {status} before the run; not benchmarking a broken setup")
            plan = {WARMUP: args.warmup, "baseline": args.baseline, "failing": args.failing, "down": args.down}
            plan = {name: seconds for name, seconds in plan.items() if seconds > 0}
            meter = Meter(pin.cores(), [pid, *pids])
            timeline, phases = uvloop.run(run(ports, (port, key), plan, args.concurrency, meter))
    print()
    print("\n".join(report(timeline, phases)))


if __name__ == "__main__":
    main()
