"""Processes for the benchmarks: free loopback ports, CPU pinning with ``taskset``, start, wait, stop."""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Pinning:
    """Which cores the gateway under test gets, and which the upstream and load generator share."""

    gateway: list[str]
    clients: list[str]
    note: str

    def cores(self) -> tuple[str, str]:
        """The gateway's core and the clients' core as /proc/stat names them ("" when not pinned)."""
        return (self.gateway[-1] if self.gateway else "", self.clients[-1] if self.clients else "")

    def describe(self) -> str:
        return f"gateway/proxy: {' '.join(self.gateway) or 'unpinned'}; upstream + load generator: " + (
            f"{' '.join(self.clients) or 'unpinned'} ({self.note})"
        )


def pinning() -> Pinning:
    """Gateway alone on the last core, everything else on the first; unpinned if that is not possible."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or shutil.which("taskset") is None:
        return Pinning([], [], "fewer than 2 cores or no taskset: nothing pinned, numbers are not comparable")
    gateway, clients = str(cores[-1]), str(cores[0])
    return Pinning(["taskset", "-c", gateway], ["taskset", "-c", clients], f"cores {clients} and {gateway}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Return once something accepts connections on ``port``; fail if the process died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {HOST}:{port} within {timeout:g}s")


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request with the standard library, to check a target answers as expected before loading it."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def running(
    command: list[str], port: int, *, env: dict[str, str] | None = None, log: IO[bytes] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command``, wait until it listens on ``port``, and always stop it (and wait for it) afterwards."""
    output = log if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    try:
        wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def core_times() -> dict[str, tuple[int, int]]:
    """Busy and total jiffies per core (``cpu0``, ``cpu1``, ...) from /proc/stat; empty where there is none."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return {}
    found: dict[str, tuple[int, int]] = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            values = [int(value) for value in fields]
            idle = values[3] + values[4]  # idle + iowait
            found[name.removeprefix("cpu")] = (sum(values) - idle, sum(values))
    return found


def busy_percent(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], core: str) -> float | None:
    """How busy ``core`` was between two :func:`core_times` samples, or None if unknown."""
    if core not in before or core not in after:
        return None
    busy = after[core][0] - before[core][0]
    total = after[core][1] - before[core][1]
    return 100.0 * busy / total if total else None


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its direct children (granian runs a worker)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def background_busy(cores: tuple[str, str], seconds: float = 1.0) -> list[float | None]:
    """How busy each core is before we start anything: other people's work makes every number worse."""
    before = core_times()
    time.sleep(seconds)
    after = core_times()
    return [busy_percent(before, after, core) for core in cores]


def children_cpu() -> float:
    """CPU seconds used by the children this process has waited for (each wrk run, once it ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def others_percent(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], ours: float) -> float | None:
    """CPU used on all cores by anything but the benchmark's own processes, in percent of one core.

    Other people's work on the machine shows up here (and some kernel network time that no process
    is charged for, a few percent); a run with a high value is not a clean measurement.
    """
    if not before or before.keys() != after.keys():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sum(after[core][0] - before[core][0] for core in after) / ticks
    elapsed = (after["0"][1] - before["0"][1]) / ticks if "0" in after else 0.0
    return 100.0 * (busy - ours) / elapsed if elapsed else None


REFERENCE_LOOP = "import time\nt = time.perf_counter()\nfor i in range(5_000_000): pass\nprint(time.perf_counter() - t)"


def reference_seconds(pin: list[str]) -> float:
    """How long a fixed pure-Python loop takes on a core: the same host can be a third slower at busy times."""
    out = subprocess.run([*pin, sys.executable, "-c", REFERENCE_LOOP], capture_output=True, text=True, check=True)
    return float(out.stdout)
