"""Load generation for the benchmarks: ``wrk`` with a Lua script for the POST, or a labelled Python fallback.

Both keep ``concurrency`` connections busy for a fixed time (closed loop: each connection sends its next
request when the previous answer is in) and report requests/s and p50/p99 latency. The fallback runs as
``python bench/load.py URL --concurrency C --duration D [--header 'Name: value']`` and prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson
import uvloop

if TYPE_CHECKING:
    from pathlib import Path

MODEL = "gpt-4.1-mini"
_POLICY = (
    "You are the accounts-payable assistant of Acme GmbH. Answer in one sentence, in the language of the "
    "question, and never invent an amount: if the document does not state it, say so. "
)
_QUESTION = (
    "Invoice INV-2026-0412 from Nordlicht Logistics lists three positions: freight Hamburg to Rotterdam, "
    "customs handling, and a fuel surcharge of 4.5 percent on the freight. The freight is 1,100 EUR, "
    "customs handling is 90.50 EUR. What is the invoice total, rounded to whole euros? "
)
REQUEST = orjson.dumps(
    {
        "model": MODEL,
        "messages": [{"role": "system", "content": _POLICY * 2}, {"role": "user", "content": _QUESTION * 2}],
        "temperature": 0,
        "max_tokens": 64,
        "user": "bench",
    }
)
WRK_INSTALL = "apt-get update && apt-get install -y wrk"


@dataclass(frozen=True)
class Result:
    """One run: how many answers per second, latency percentiles in milliseconds, and failures."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    failures: int


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


_LUA = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "failures": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def wrk_script(folder: Path, headers: dict[str, str]) -> Path:
    """Write the Lua script that sends REQUEST with ``headers`` and prints a parseable summary."""
    lines = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items())
    path = folder / "post.lua"
    path.write_text(_LUA.format(body=REQUEST.decode(), headers=lines))
    return path


def run_wrk(prefix: list[str], url: str, concurrency: int, seconds: float, script: Path) -> Result:
    """One wrk run on one thread (the core it shares with the upstream has no room for more)."""
    command = [*prefix, "wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    data = json.loads(line.removeprefix("BENCH "))
    return Result(
        requests=data["requests"],
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        failures=data["failures"],
    )


def run_python(prefix: list[str], url: str, concurrency: int, seconds: float, headers: dict[str, str]) -> Result:
    """The fallback: this module as its own (pinned) process."""
    flags = [item for name, value in headers.items() for item in ("--header", f"{name}: {value}")]
    command = [*prefix, sys.executable, __file__, url, f"--concurrency={concurrency}", f"--duration={seconds}", *flags]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    return Result(**json.loads(out.strip().splitlines()[-1]))


def _request_bytes(url: str, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {len(REQUEST)}")
    return parts.hostname or "127.0.0.1", parts.port or 80, ("\r\n".join(head) + "\r\n\r\n").encode() + REQUEST


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response with a Content-Length body; return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    marker = head.lower().find(b"\r\ncontent-length:")
    length = int(head[marker + 17 : head.find(b"\r\n", marker + 2)])
    await reader.readexactly(length)
    return status


async def _connection(target: tuple[str, int, bytes], until: float, latencies: list[int]) -> int:
    """Send requests back to back on one keep-alive connection until ``until``; return the failures."""
    host, port, request = target
    reader, writer = await asyncio.open_connection(host, port)
    failures = 0
    while time.perf_counter() < until:
        started = time.perf_counter_ns()
        writer.write(request)
        status = await _read_response(reader)
        latencies.append(time.perf_counter_ns() - started)
        failures += status >= 300
    writer.close()
    return failures


async def _generate(url: str, concurrency: int, seconds: float, headers: dict[str, str]) -> Result:
    target = _request_bytes(url, headers)
    latencies: list[int] = []
    started = time.perf_counter()
    until = started + seconds
    failures = await asyncio.gather(*(_connection(target, until, latencies) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(len(latencies), len(latencies) / elapsed, cuts[49] / 1e6, cuts[98] / 1e6, sum(failures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    headers = dict(item.split(": ", 1) for item in args.header)
    result = uvloop.run(_generate(args.url, args.concurrency, args.duration, headers))
    print(json.dumps(result.__dict__))


if __name__ == "__main__":
    main()
