"""The stack experiment: which server and which upstream client make the fastest pass-through proxy?

Run ``.venv/bin/python bench/stack.py``. It measures, pinned as bench/overhead.py pins Bastion:
1. the fake upstream's two servers alone on a core (raw asyncio/uvloop protocol vs uvicorn + httptools);
2. the thinnest pass-through proxy (bench/proxy.py: read body, POST it on, return the answer) under
   uvicorn (uvloop + httptools) and granian (ASGI, and its native RSGI), with aiohttp and httpx as client;
3. Bastion itself (access log off), so the table shows what Bastion adds on top of its stack.
Granian is optional: ``.venv/bin/pip install granian`` for the experiment (it is not a dependency).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import harness
import procs
from harness import BIN, HERE, Bench, Measured, Target

if TYPE_CHECKING:
    from collections.abc import Iterator

PROXIES = [
    ("uvicorn", "aiohttp"),
    ("uvicorn", "httpx"),
    ("granian-asgi", "aiohttp"),
    ("granian-asgi", "httpx"),
    ("granian-rsgi", "aiohttp"),
]
HEAD = ["what", "c=1 req/s", "c=1 p50 ms", "c=1 p99 ms", "c=32 req/s", "c=32 p50 ms", "c=32 p99 ms", "errors"]
HEAD += ["CPU us/req c=1 / c=32", "core busy c=1 / c=32", "other load c=1 / c=32"]


def have_granian() -> bool:
    return (BIN / "granian").exists() or shutil.which("granian") is not None


def proxy_command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [sys.executable, str(HERE / "proxy.py"), "--port", str(port)]
    interface = server.removeprefix("granian-")
    granian = str(BIN / "granian") if (BIN / "granian").exists() else "granian"
    flags = ["--interface", interface, "--host", procs.HOST, "--port", str(port), "--workers", "1"]
    flags += ["--runtime-threads", "1", "--loop", "uvloop", "--http", "1", "--no-ws", "--log-level", "warning"]
    return [granian, *flags, "--no-access-log", "--factory", "--working-dir", str(HERE), "proxy:app_from_env"]


@contextlib.contextmanager
def proxy(bench: Bench, server: str, client: str, upstream_port: int) -> Iterator[Target]:
    """The pass-through proxy alone on the gateway core."""
    port = procs.free_port()
    env = {**os.environ, "BENCH_CLIENT": client}
    env["BENCH_UPSTREAM"] = f"http://{procs.HOST}:{upstream_port}{harness.PATH}"
    with procs.running([*bench.pin.gateway, *proxy_command(server, port)], port, env=env) as process:
        yield Target(f"thin proxy: {server} + {client}", port, {}, process.pid)


def servers(bench: Bench) -> list[Measured]:
    """The upstream's candidate servers, each alone on the gateway core, loaded from the clients' core."""
    measured: list[Measured] = []
    for server in ("raw", "uvicorn"):
        with bench.upstream(server, alone=True) as up:
            measured += bench.measure(Target(f"upstream alone: {up.label}", up.port, up.headers, up.pid))
    return measured


def proxies(bench: Bench) -> list[Measured]:
    measured: list[Measured] = []
    with bench.upstream() as up:
        measured += bench.measure(Target("direct to upstream (shares the clients' core)", up.port, up.headers))
        for server, client in PROXIES:
            if server.startswith("granian") and not have_granian():
                print(f"  skipped {server} + {client}: granian is not installed (.venv/bin/pip install granian)")
                continue
            with proxy(bench, server, client, up.port) as target:
                measured += bench.measure(target)
        with harness.Bastion(bench, up.port).serve("WARNING", "Bastion (access log off)") as target:
            measured += bench.measure(target)
    return measured


def table(measured: list[Measured]) -> list[str]:
    rows = []
    for label in dict.fromkeys(m.target for m in measured):
        one, many = (next(m for m in measured if m.target == label and m.concurrency == c) for c in (1, 32))
        cells = [label]
        for m in (one, many):
            cells += [harness.rps(m.result.rps), harness.ms(m.result.p50_ms), harness.ms(m.result.p99_ms)]
        spent = f"{harness.cpu_us(one.cpu_us)} / {harness.cpu_us(many.cpu_us)}"
        busy = f"{harness.cpu(one.gateway_cpu)} / {harness.cpu(many.gateway_cpu)}"
        others = f"{harness.cpu(one.others)} / {harness.cpu(many.others)}"
        rows.append([*cells, str(one.result.failures + many.result.failures), spent, busy, others])
    return harness.markdown(HEAD, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per timed run (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per target (default 1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-stack-") as folder:
        bench = Bench(procs.pinning(), args.duration, args.warmup, Path(folder), python_load=False)
        if not bench.use_wrk:
            raise SystemExit("the stack experiment needs wrk: apt-get update && apt-get install -y wrk")
        print("\n".join(bench.describe()), flush=True)
        measured = servers(bench) + proxies(bench)
    print("\n".join(table(measured)))


if __name__ == "__main__":
    main()
