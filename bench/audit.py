"""Audit log speed: appends through ``AuditLog`` (group commit) on SQLite and PostgreSQL with 1, 8 and 64 concurrent
writers; proofs served from the store and checked at 10**6 entries; export and ``bastion audit verify`` of them.

Run ``.venv/bin/python bench/audit.py``; ``--entries`` changes the default 10**6, ``--seconds`` the length of each
append run, ``--dir`` where the SQLite files go; ``--postgres URL`` or ``--no-postgres``. PostgreSQL defaults to
``BASTION_TEST_POSTGRES_URL``; a scratch database is created there and dropped afterwards. Targets: >= 20,000
appends/s on SQLite, >= 5,000/s on PostgreSQL, ``verify`` of 10**6 entries in < 10 s. Prints Markdown tables;
takes a few minutes at 10**6 entries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from bastion.audit.checkpoint import Signer
from bastion.audit.checkpoints import Checkpoints, ConsistencyProof, InclusionProof, Prover, verify_store
from bastion.audit.export import export, stored_entries
from bastion.audit.log import AuditLog, Record, append_in
from bastion.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from bastion.audit.verify import Note, verify_export
from bastion.store.engine import make_engine, migrate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy import Engine

WRITERS = (1, 8, 64)
POSTGRES = os.environ.get("BASTION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BASTION = Path(sys.executable).with_name("bastion")
FIELDS = {
    "endpoint": "chat.completions",
    "key": "bst_live_ab12",
    "environment": "production",
    "model": "gpt-4.1",
    "provider": "azure-eu",
    "stream": False,
    "client_ip": "10.0.1.7",
    "latency_ms": 123.456,
    "response_hash": "5f" * 32,
    "tokens": {"prompt_tokens": 812, "completion_tokens": 95, "total_tokens": 907},
}


def record(n: int) -> Record:
    """A typical ``request.completed`` entry (about 500 bytes once canonical)."""
    return Record("request.completed", "service_account:chatbot-prod", "support-bot", 200, f"req_{n:024x}", FIELDS)


@dataclass(frozen=True)
class Timing:
    """How long ``count`` runs of one operation took in all."""

    label: str
    count: int
    seconds: float

    def cells(self) -> list[str]:
        per = self.seconds / self.count
        return [self.label, f"{self.count:,}", f"{self.seconds:.3f}", f"{per * 1e6:,.1f}", f"{1 / per:,.0f}"]


def timed(label: str, count: int, work: Callable[[], object]) -> Timing:
    start = time.perf_counter()
    work()
    return Timing(label, count, time.perf_counter() - start)


def table(title: str, timings: list[Timing]) -> None:
    head = ["operation", "ops", "total s", "µs/op", "ops/s"]
    print(f"\n{title}\n")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    print("\n".join("| " + " | ".join(t.cells()) + " |" for t in timings), flush=True)


def fresh_engine(url: str) -> Engine:
    engine = make_engine(url)
    migrate(engine)
    return engine


@contextlib.contextmanager
def postgres_database(base: str) -> Iterator[str]:
    """A scratch PostgreSQL database next to ``base``, dropped afterwards."""
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"bastion_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{base.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def append_for(engine: Engine, writers: int, seconds: float) -> int:
    """``writers`` tasks appending one entry at a time, each awaiting its commit, for ``seconds``."""
    log = AuditLog(engine)
    log.start()
    deadline = time.perf_counter() + seconds
    done = [0]

    async def writer() -> None:
        while time.perf_counter() < deadline:
            await log.append(record(done[0]))
            done[0] += 1

    await asyncio.gather(*(writer() for _ in range(writers)))
    await log.stop()
    return done[0]


def append_rates(label: str, url: Callable[[], contextlib.AbstractContextManager[str]], seconds: float) -> list[Timing]:
    timings = []
    for writers in WRITERS:
        with url() as database:
            engine = fresh_engine(database)
            start = time.perf_counter()
            count = asyncio.run(append_for(engine, writers, seconds))
            timings.append(Timing(f"{label}: AuditLog.append, {writers} writers", count, time.perf_counter() - start))
            engine.dispose()
    return timings


def fill(engine: Engine, checkpoints: Checkpoints, count: int) -> list[Timing]:
    """``count`` entries in transactions of 10,000, with checkpoints at a quarter, a half and the end."""
    marks = {count // 4, count // 2, count}
    batch = 10_000

    def work() -> None:
        for start in range(0, count, batch):
            with engine.begin() as connection:
                append_in(connection, [record(n) for n in range(start, min(start + batch, count))])
            if any(start < mark <= start + batch for mark in marks):
                checkpoints.ensure()

    return [timed("bulk append (10,000 per transaction)", count, work)]


def proofs(engine: Engine, size: int, rng: random.Random, samples: int) -> list[Timing]:
    """Inclusion and consistency proofs from the store at the full size: cold, warm, and their checks."""
    prover = Prover(engine)  # a new one: nothing remembered yet
    cold = timed("inclusion proof, cold (reads every leaf once)", 1, lambda: prover.inclusion(size // 3, size))
    tree_root = prover.root(size)
    timings = inclusions(prover, size, tree_root, [rng.randrange(size) for _ in range(samples)])
    return [cold, *timings, *consistencies(prover, size, tree_root, [rng.randrange(1, size) for _ in range(samples)])]


def inclusions(prover: Prover, size: int, tree_root: bytes, indices: list[int]) -> list[Timing]:
    found: list[InclusionProof] = []

    def check() -> None:
        for proof in found:
            verify_inclusion(proof.index, size, leaf_hash(proof.text.encode()), proof.proof, tree_root)

    return [
        timed(
            "inclusion proof (memoised)", len(indices), lambda: found.extend(prover.inclusion(i, size) for i in indices)
        ),
        timed("inclusion proof verify", len(indices), check),
    ]


def consistencies(prover: Prover, size: int, tree_root: bytes, olds: list[int]) -> list[Timing]:
    made: list[ConsistencyProof] = []

    def check() -> None:
        for proof in made:
            verify_consistency(proof.old_size, size, proof.old_root, tree_root, proof.proof)

    return [
        timed(
            "consistency proof (memoised)", len(olds), lambda: made.extend(prover.consistency(o, size) for o in olds)
        ),
        timed("consistency proof verify", len(olds), check),
    ]


def saved_checkpoints(checkpoints: Checkpoints, folder: Path) -> tuple[list[Note], list[str]]:
    """The stored checkpoints as notes, and as files an auditor kept (``--checkpoint FILE`` arguments)."""
    notes = [Note(f"#{c.id}", c.note) for c in checkpoints.all()]
    args: list[str] = []
    for note in notes:
        path = folder / f"checkpoint-{note.label[1:]}.txt"
        path.write_text(note.text)
        args += ["--checkpoint", str(path)]
    return notes, args


def verification(engine: Engine, checkpoints: Checkpoints, folder: Path, count: int) -> list[Timing]:
    """Export the store as JSONL, then verify it: in-process, with the CLI, and straight from the store."""
    exported, verifier = folder / "audit.jsonl", checkpoints.signer.verifier
    notes, args = saved_checkpoints(checkpoints, folder)
    command = [str(BASTION), "audit", "verify", "--export", str(exported), *args, "--vkey", verifier.vkey]
    said: list[str] = []

    def write() -> None:
        with exported.open("wb") as out:
            out.writelines(export(stored_entries(engine), "jsonl"))

    def offline() -> None:
        with exported.open("rb") as lines:
            said.append(verify_export(lines, notes, [verifier]).summary())

    timings = [
        timed("export JSONL from the store", count, write),
        timed("verify_export (in-process)", count, offline),
        timed(
            "bastion audit verify --export (CLI, whole process)",
            count,
            lambda: said.append(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()),
        ),
        timed(
            "bastion audit verify from the store (verify_store)",
            count,
            lambda: said.append(verify_store(engine, [], [verifier], checkpoints.origin).summary()),
        ),
    ]
    print("\n" + "\n".join(f"  {line}" for line in said))
    assert all(line.startswith("verified ") for line in said), said
    return timings


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10**6, help="log size for proofs and verify (default 1,000,000)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each append run (default 3)")
    parser.add_argument("--samples", type=int, default=2_000, help="random proofs of each kind (default 2,000)")
    parser.add_argument(
        "--postgres", default=POSTGRES, help="PostgreSQL server URL (default $BASTION_TEST_POSTGRES_URL)"
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL appends")
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go (default: a temp folder)")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    with tempfile.TemporaryDirectory(prefix="bastion-bench-audit-", dir=args.dir) as scratch:
        folder = Path(scratch)
        runs = [0]

        @contextlib.contextmanager
        def sqlite() -> Iterator[str]:
            runs[0] += 1
            yield f"sqlite:///{folder / f'appends-{runs[0]}.db'}"

        print(f"Audit log benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, SQLite in {folder}")
        rates = append_rates("SQLite", sqlite, args.seconds)
        if not args.no_postgres:
            rates += append_rates("PostgreSQL", lambda: postgres_database(args.postgres), args.seconds)
        table(f"Appends (each writer awaits its commit; {args.seconds:g} s a run)", rates)
        engine = fresh_engine(f"sqlite:///{folder / 'log.db'}")
        prover = Prover(engine)
        checkpoints = Checkpoints(engine, Signer.generate("bench.example/audit"), prover)
        timings = fill(engine, checkpoints, args.entries)
        timings += proofs(engine, args.entries, random.Random(6962), args.samples)
        table(f"Proofs from the store (SQLite) at {args.entries:,} entries", timings)
        table(f"Export and verify {args.entries:,} entries", verification(engine, checkpoints, folder, args.entries))
        engine.dispose()


if __name__ == "__main__":
    main()
