"""Bastion's overhead: the same load direct to a fast fake upstream and through one pinned Bastion worker.

Run ``.venv/bin/python bench/overhead.py`` (or ``make bench``). It starts the fake upstream (bench/upstream.py),
loads it directly at concurrency 1 and 32 with wrk, then starts ``bastion serve`` alone on its own core with an
``openai`` provider pointing at that upstream and a real key (so keys are checked), once with the access log
off (``BASTION_LOG_LEVEL=WARNING``) and once with the default INFO access log; then governed (a service
account's key with an IP allowlist, endpoint permission and model allowlist checked, and all four limit scopes
charged), with the limiter in-process and in Redis (``BASTION_REDIS_URL``, default redis://127.0.0.1:6379/0),
and prints one table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import harness
import load
import procs
from harness import Bench, Measured

REDIS = "redis://127.0.0.1:6379/0"
TARGET_ADDED_P50_MS = 0.5
TARGET_RPS = 4000
QUIET_PERCENT = 5.0
NOISY_PERCENT = 10.0
DIRECT = "direct to upstream"
LEVELS = {"WARNING": "Bastion, access log off", "INFO": "Bastion, INFO access log"}
GOVERNED = {
    "in-process": ("Bastion, governed, limits in-process", {}),
    "redis": ("Bastion, governed, limits in Redis", {"BASTION_REDIS_URL": os.environ.get("BASTION_REDIS_URL", REDIS)}),
}
HEAD = ["conc.", "target", "req/s", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms", "req/s vs direct"]
HEAD += ["errors", "Bastion CPU us/req", "gateway core busy", "client core busy", "other load"]


def run_all(bench: Bench) -> list[Measured]:
    """Direct first, then through Bastion at each log level; the upstream stays up throughout."""
    measured: list[Measured] = []
    with bench.upstream() as up:
        measured += bench.measure(harness.Target(DIRECT, up.port, up.headers))
        bastion = harness.Bastion(bench, up.port)
        for level, label in LEVELS.items():
            with bastion.serve(level, label) as target:
                measured += bench.measure(target)
        for name, (label, env) in GOVERNED.items():
            governed = harness.Bastion(bench, up.port, governed=True, name=f"governed-{name}")
            with governed.serve("WARNING", label, env) as target:
                measured += bench.measure(target)
    return measured


def row(m: Measured, base: load.Result) -> list[str]:
    r = m.result
    cells = [str(m.concurrency), m.target, harness.rps(r.rps), harness.ms(r.p50_ms), harness.ms(r.p99_ms)]
    if m.target == DIRECT:
        cells += ["", "", ""]
    else:
        cells += [
            harness.ms(r.p50_ms - base.p50_ms),
            harness.ms(r.p99_ms - base.p99_ms),
            harness.ratio(r.rps / base.rps),
        ]
    busy = [harness.cpu(m.gateway_cpu), harness.cpu(m.clients_cpu), harness.cpu(m.others)]
    return [*cells, str(r.failures), harness.cpu_us(m.cpu_us), *busy]


def table(measured: list[Measured]) -> list[str]:
    """One Markdown table: each Bastion row next to the direct row of the same concurrency."""
    base = {m.concurrency: m.result for m in measured if m.target == DIRECT}
    rows = [row(m, base[m.concurrency]) for c in harness.CONCURRENCIES for m in measured if m.concurrency == c]
    return harness.markdown(HEAD, rows)


def verdicts(measured: list[Measured]) -> list[str]:
    """The issue's targets, judged on the unrounded numbers, for both log levels."""
    by = {(m.target, m.concurrency): m for m in measured}
    lines = []
    for label in LEVELS.values():
        one, many = by[(label, 1)], by[(label, 32)]
        added, rps = one.result.p50_ms - by[(DIRECT, 1)].result.p50_ms, many.result.rps
        met = ("met" if added <= TARGET_ADDED_P50_MS else "NOT met", "met" if rps >= TARGET_RPS else "NOT met")
        lines.append(
            f"- {label}: added p50 at concurrency 1 = {harness.ms(added)} ms (target <= 0.5): {met[0]}{_noisy(one)}"
        )
        lines.append(
            f"- {label}: req/s at concurrency 32 = {harness.rps(rps)} (target >= 4,000): {met[1]}{_noisy(many)}"
        )
    return lines + governed_verdicts(by)


TARGET_GOVERNED_MS = 0.1


def governed_verdicts(by: dict[tuple[str, int], Measured]) -> list[str]:
    """Identity checks and four limit scopes should add < 0.1 ms p50 over the core run (access log off)."""
    core = by[(LEVELS["WARNING"], 1)].result.p50_ms
    lines = []
    for label, _ in GOVERNED.values():
        extra = by[(label, 1)].result.p50_ms - core
        verdict = "met" if extra < TARGET_GOVERNED_MS else "NOT met"
        lines.append(f"- {label}: p50 over the core run = {harness.ms(extra)} ms (target < 0.1): {verdict}")
    return lines


def _noisy(m: Measured) -> str:
    if m.others is None or m.others <= NOISY_PERCENT:
        return ""
    return f" (disturbed: other processes used {m.others:.0f}% of a core meanwhile; rerun on a quiet machine)"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per target (default 2)")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk exists")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    with tempfile.TemporaryDirectory(prefix="bastion-bench-") as folder:
        bench = Bench(procs.pinning(), args.duration, args.warmup, Path(folder), args.python_load)
        if not bench.use_wrk and not args.python_load:
            print(f"wrk was not found; install it with '{load.WRK_INSTALL}'. Using the Python load generator.")
        print("\n".join(bench.describe()))
        reference = procs.reference_seconds(bench.pin.gateway)
        print(f"CPU speed: a 5M-iteration Python loop takes {reference:.3f} s on the gateway core")
        busy = procs.background_busy(bench.pin.cores())
        print(f"background load before starting: {', '.join(harness.cpu(b) for b in busy)} busy (gateway, clients)")
        if any(b is not None and b > QUIET_PERCENT for b in busy):
            print("WARNING: other processes are using these cores; expect lower throughput and longer tails.")
        measured = run_all(bench)
    print()
    print("\n".join(table(measured)))
    print("\nTargets (one Bastion worker process on one core, keys checked):")
    print("\n".join(verdicts(measured)))
    if any(m.result.failures for m in measured):
        raise SystemExit("some requests failed (see the errors column): these numbers are not valid")


if __name__ == "__main__":
    main()
