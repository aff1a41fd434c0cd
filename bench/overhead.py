"""Bastion's overhead: the same load direct to a fast fake upstream and through one pinned Bastion worker.

Run ``.venv/bin/python bench/overhead.py`` (or ``make bench``). It starts the fake upstream (bench/upstream.py),
loads it directly at concurrency 1 and 32 with wrk, then starts ``bastion serve`` alone on its own core with an
``openai`` provider pointing at that upstream and a real key (so keys are checked), once with the access log
off (``BASTION_LOG_LEVEL=WARNING``) and once with the default INFO access log; then governed (a service
account's key with an IP allowlist, endpoint permission and model allowlist checked, and all four limit scopes
charged), with the limiter in-process and in Redis (``BASTION_REDIS_URL``, default redis://127.0.0.1:6379/0),
and prints one table. Right after the core run, the same Bastion process is loaded with a request that carries
ten sensitive values of five types (``sensitive_request``), which the default data policy tokenises: what data
protection adds is that run's p50 over the core run's. ``--protection-only`` measures just those two and the
direct run.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import math
import os
import tempfile
from pathlib import Path

import orjson

import harness
import load
import procs
import upstream
from bastion.policy.data import DataPolicy
from bastion.protect.detect import Detector
from harness import Bench, Measured, Target

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
PROTECTED = "Bastion, default policy, 10 sensitive values"
TARGET_PROTECTED_MS = 1.0
# Ten values of five types, none of which the default policy blocks: three e-mail addresses, three phone numbers,
# two IBANs, an IP address and a US SSN, in place of the second half of the benchmark's question.
_CONTACTS = (
    "Contacts on this invoice: the dispatcher anna.schmidt@nordlicht-logistics.de (call +49 30 901820), "
    "our accounts payable ap@acme-gmbh.de (call +44 20 7946 0958), and the carrier's US office "
    "ops@nordlicht.example.com (call +1 212 555 0147). Their IBAN: DE89 3704 0044 0532 0130 00; "
    "ours: GB82 WEST 1234 5698 7654 32. The upload came from IP 203.0.113.54; the broker's SSN is 536-22-1234."
)
SENSITIVE_VALUES = 10


def sensitive_request() -> bytes:
    """``load.REQUEST`` with the second half of its question replaced by ``_CONTACTS`` (the same model, system
    message and parameters), checked to hold exactly ten values that the default policy tokenises."""
    request = orjson.loads(load.REQUEST)
    question = request["messages"][1]["content"]
    request["messages"][1]["content"] = question[: len(question) // 2] + _CONTACTS
    policy, detector = DataPolicy(), Detector()
    texts = [message["content"] for message in request["messages"]]
    found = [f for part in detector.scan_many(texts) for f in part if policy.counts(f)]
    if len(found) != SENSITIVE_VALUES or any(policy.action(f.type) != "tokenize" for f in found):
        raise SystemExit(f"the sensitive request should hold {SENSITIVE_VALUES} tokenised values, not {found}")
    return orjson.dumps(request)


class Carrying(Bench):
    """The same timed runs, sending ``body`` instead of ``load.REQUEST`` (wrk only: the Python fallback cannot)."""

    def __init__(self, bench: Bench, body: bytes) -> None:
        folder = bench.folder / "carrying"
        folder.mkdir(exist_ok=True)
        super().__init__(bench.pin, bench.seconds, bench.warmup, folder, python_load=not bench.use_wrk)
        self._bench = bench
        self.body = body

    def _script(self, headers: dict[str, str]) -> Path:
        script = load.wrk_script(self.folder, headers)
        text = script.read_text()
        if text.count(load.REQUEST.decode()) != 1:
            raise SystemExit("load.wrk_script no longer writes load.REQUEST verbatim; update Carrying")
        script.write_text(text.replace(load.REQUEST.decode(), self.body.decode()))
        return script

    def run(self, target: Target, concurrency: int, seconds: float) -> Measured:
        """``Bench.run`` with this body: the upstream is the one the wrapped bench started."""
        if not self.use_wrk:
            raise SystemExit(f"the '{PROTECTED}' run needs wrk; install it with '{load.WRK_INSTALL}'")
        self.upstream_pid = self._bench.upstream_pid
        return super().run(target, concurrency, seconds)

    def measure(self, target: Target) -> list[Measured]:
        check_protected(target, self.body)
        return super().measure(target)


def check_protected(target: Target, body: bytes) -> None:
    """Bastion answers the sensitive request with the upstream's body and classifies it regulated (IBANs, SSN)."""
    connection = http.client.HTTPConnection(procs.HOST, target.port, timeout=10)
    try:
        connection.request(
            "POST", harness.PATH, body=body, headers={"Content-Type": "application/json", **target.headers}
        )
        response = connection.getresponse()
        status, answer, data_class = response.status, response.read(), response.getheader("x-bastion-data-class")
    finally:
        connection.close()
    if (status, answer, data_class) != (200, upstream.COMPLETION, "regulated"):
        raise SystemExit(f"{target.label} answered HTTP {status} ({data_class}) with {answer[:200]!r}; not measuring")


HEAD = ["conc.", "target", "req/s", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms", "req/s vs direct"]
HEAD += ["errors", "Bastion CPU us/req", "gateway core busy", "client core busy", "other load"]


def run_all(bench: Bench, sensitive: bytes, *, protection_only: bool = False) -> list[Measured]:
    """Direct first, then through Bastion at each log level (the core run followed, in the same process, by the
    ``sensitive`` request), then governed; the upstream stays up throughout."""
    measured: list[Measured] = []
    carrying = Carrying(bench, sensitive)
    with bench.upstream() as up:
        measured += bench.measure(harness.Target(DIRECT, up.port, up.headers))
        bastion = harness.Bastion(bench, up.port)
        for level, label in LEVELS.items():
            with bastion.serve(level, label) as target:
                measured += bench.measure(target)
                if level == "WARNING":
                    measured += carrying.measure(dataclasses.replace(target, label=PROTECTED))
            if protection_only:
                return measured
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


def protection_table(measured: list[Measured]) -> list[str]:
    """The sensitive request against the core run, per concurrency: latency and CPU added, and their ratios."""
    by = {(m.target, m.concurrency): m for m in measured}
    head = ["conc.", "core p50 ms", "protected p50 ms", "added p50 ms", "p50 ratio", "core p99 ms", "protected p99 ms"]
    head += ["added p99 ms", "req/s ratio", "CPU us/req core / protected", "other load core / protected"]
    rows = [_protection_row(by[(LEVELS["WARNING"], c)], by[(PROTECTED, c)]) for c in harness.CONCURRENCIES]
    return harness.markdown(head, rows)


def _protection_row(core: Measured, protected: Measured) -> list[str]:
    a, b = core.result, protected.result
    return [
        str(core.concurrency),
        harness.ms(a.p50_ms),
        harness.ms(b.p50_ms),
        harness.ms(b.p50_ms - a.p50_ms),
        _ratio_up(b.p50_ms / a.p50_ms),
        harness.ms(a.p99_ms),
        harness.ms(b.p99_ms),
        harness.ms(b.p99_ms - a.p99_ms),
        harness.ratio(b.rps / a.rps),
        f"{harness.cpu_us(core.cpu_us)} / {harness.cpu_us(protected.cpu_us)}",
        f"{harness.cpu(core.others)} / {harness.cpu(protected.others)}",
    ]


def _ratio_up(value: float) -> str:
    """A latency ratio, rounded up to three decimals (never in Bastion's favour)."""
    return f"{math.ceil(value * 1000 - 1e-9) / 1000:.3f}"


def protection_verdict(by: dict[tuple[str, int], Measured]) -> str:
    """Ten sensitive values under the default policy should add <= 1 ms p50 over the core run (concurrency 1)."""
    core, protected = by[(LEVELS["WARNING"], 1)], by[(PROTECTED, 1)]
    added = protected.result.p50_ms - core.result.p50_ms
    verdict = "met" if added <= TARGET_PROTECTED_MS else "NOT met"
    noisy = _noisy(core) or _noisy(protected)
    return f"- {PROTECTED}: p50 over the core run = {harness.ms(added)} ms (target <= 1): {verdict}{noisy}"


def verdicts(measured: list[Measured]) -> list[str]:
    """The issue's targets, judged on the unrounded numbers, for both log levels."""
    by = {(m.target, m.concurrency): m for m in measured}
    lines = []
    for label in LEVELS.values():
        if (label, 1) not in by:  # --protection-only
            continue
        one, many = by[(label, 1)], by[(label, 32)]
        added, rps = one.result.p50_ms - by[(DIRECT, 1)].result.p50_ms, many.result.rps
        met = ("met" if added <= TARGET_ADDED_P50_MS else "NOT met", "met" if rps >= TARGET_RPS else "NOT met")
        lines.append(
            f"- {label}: added p50 at concurrency 1 = {harness.ms(added)} ms (target <= 0.5): {met[0]}{_noisy(one)}"
        )
        lines.append(
            f"- {label}: req/s at concurrency 32 = {harness.rps(rps)} (target >= 4,000): {met[1]}{_noisy(many)}"
        )
    lines.append(protection_verdict(by))
    if (GOVERNED["in-process"][0], 1) in by:
        lines += governed_verdicts(by)
    return lines


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
    parser.add_argument(
        "--protection-only", action="store_true", help="only the direct run, the core run and the sensitive request"
    )
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
        sensitive = sensitive_request()
        print(
            f"sensitive request: {len(sensitive)} bytes of JSON, {SENSITIVE_VALUES} values the default policy tokenises"
        )
        measured = run_all(bench, sensitive, protection_only=args.protection_only)
    print()
    print("\n".join(table(measured)))
    print(f"\n{PROTECTED} over the core run (the same Bastion process, access log off):")
    print("\n".join(protection_table(measured)))
    print("\nTargets (one Bastion worker process on one core, keys checked):")
    print("\n".join(verdicts(measured)))
    if any(m.result.failures for m in measured):
        raise SystemExit("some requests failed (see the errors column): these numbers are not valid")


if __name__ == "__main__":
    main()
