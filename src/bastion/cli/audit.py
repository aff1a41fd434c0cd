"""``bastion audit``: verify the log (from the store or an export), export it, prove an entry, sign a checkpoint.

A thin skin over ``audit/``: the same functions serve ``/audit/v1``. Exit codes: 0 when all is well, 1 when the
log does not verify, 2 for a usage or configuration error.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from bastion.audit.checkpoint import CheckpointError, Verifier, verify_note
from bastion.audit.checkpoints import Checkpoints, Prover, audit_signer, verify_store
from bastion.audit.export import FORMATS, export, stored_entries
from bastion.audit.merkle import ProofError, leaf_hash, verify_inclusion
from bastion.audit.verify import Note, Report, verify_export
from bastion.cli.common import ConfigOption, count, fail, open_store, settings_or_exit
from bastion.errors import AuditCorrupt, BastionError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Engine

    from bastion.audit.checkpoint import Signer
    from bastion.config import Settings

app = typer.Typer(
    help="The tamper-evident audit log: verify it, export it, prove an entry, sign a checkpoint.",
    no_args_is_help=True,
)

ExportOption = Annotated[
    Path | None, typer.Option("--export", help="A JSONL export to verify instead of the store.", dir_okay=False)
]
CheckpointOption = Annotated[
    list[Path] | None,
    typer.Option("--checkpoint", help="A saved signed checkpoint (repeat for several).", dir_okay=False),
]
VkeyOption = Annotated[str | None, typer.Option("--vkey", help="The verifier key text (name+id+key).")]
VkeyFileOption = Annotated[Path | None, typer.Option("--vkey-file", help="A file holding the verifier key.")]


def verifier_of(settings: Settings, vkey: str | None, vkey_file: Path | None) -> Verifier:
    """The key checkpoints must be signed with: given, or this installation's own."""
    try:
        if vkey_file is not None:
            return Verifier.from_vkey(vkey_file.read_text(encoding="utf-8"))
        if vkey is not None:
            return Verifier.from_vkey(vkey)
        return audit_signer(settings, create=False).verifier
    except (CheckpointError, OSError) as exc:
        raise fail(f"the verifier key cannot be used: {exc}") from exc
    except BastionError as exc:
        raise fail(exc.message) from exc


def notes_of(paths: list[Path]) -> list[Note]:
    """Saved checkpoint files, named in findings by their path."""
    try:
        return [Note(str(path), path.read_text(encoding="utf-8")) for path in paths]
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read a checkpoint file: {exc}") from exc


@contextmanager
def store(config: Path | None) -> Iterator[tuple[Settings, Engine]]:
    """The settings and the store; the config file is not applied (reading the log changes nothing)."""
    settings = settings_or_exit(config)
    with open_store(settings, ensure_file=False) as opened:
        try:
            yield settings, opened.engine
        except AuditCorrupt as exc:
            raise fail(exc.message, code=1) from exc


def show(report: Report) -> None:
    """Findings one a line, then the summary; exit 1 when the log does not verify."""
    for finding in report.findings:
        typer.echo(f"FAIL {finding}")
    if report.omitted:
        typer.echo(f"… and {count(report.omitted, 'more finding')}")
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def verify(
    export_file: ExportOption = None,
    checkpoint: CheckpointOption = None,
    vkey: VkeyOption = None,
    vkey_file: VkeyFileOption = None,
    config: ConfigOption = None,
) -> None:
    """Recompute the tree from the store (or an export) and check it against the signed checkpoints.

    Detects modified, deleted, inserted, reordered and truncated entries and forked histories, and names the entry.
    """
    settings = settings_or_exit(config)
    verifier = verifier_of(settings, vkey, vkey_file)
    notes = notes_of(checkpoint or [])
    if export_file is None:
        with open_store(settings, ensure_file=False) as opened:
            show(verify_store(opened.engine, notes, [verifier], settings.audit_origin))
        return
    if not notes:
        raise fail("--export needs at least one --checkpoint FILE (save one: 'bastion audit checkpoint > cp.txt')")
    try:
        with export_file.open("rb") as lines:
            report = verify_export(lines, notes, [verifier])
    except OSError as exc:
        raise fail(f"cannot read {export_file}: {exc.strerror}") from exc
    show(report)


@app.command("export")
def export_entries(
    form: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}.")] = "jsonl",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    start: Annotated[int, typer.Option("--from", min=0, help="The first seq to export.")] = 0,
    config: ConfigOption = None,
) -> None:
    """Write the entries: JSONL (the exact bytes the tree hashes; 'verify --export' reads it) or CEF for SIEMs."""
    if form not in FORMATS:
        raise fail(f"--format: '{form}' is not one of {', '.join(FORMATS)}")
    with store(config) as (_settings, engine):
        written = _write(export(stored_entries(engine, start), form), out)
    typer.echo(f"exported {written:,} entr{'y' if written == 1 else 'ies'}", err=True)


def _write(lines: Iterator[bytes], out: Path | None) -> int:
    target: BinaryIO = out.open("wb") if out is not None else sys.stdout.buffer
    written = 0
    try:
        for line in lines:
            target.write(line)
            written += 1
    finally:
        if out is not None:
            target.close()
        else:
            target.flush()
    return written


@app.command()
def prove(
    index: Annotated[int, typer.Argument(min=0, help="The seq of the entry.")],
    size: Annotated[int | None, typer.Option("--size", min=1, help="Tree size (default: newest checkpoint's).")] = None,
    config: ConfigOption = None,
) -> None:
    """Print the inclusion proof of entry INDEX as JSON and check it against the signed checkpoint of that size."""
    with store(config) as (settings, engine):
        prover = Prover(engine)
        size = _proof_size(engine, prover, index, size)
        proof = prover.inclusion(index, size)
        stored = next(iter(Checkpoints.stored(engine, size=size, limit=1)), None)
        typer.echo(json.dumps(proof.to_json(stored.note if stored else None), indent=2))
        root, against = proof.root, f"the root recomputed from the store (no checkpoint of size {size})"
        if stored is not None:
            verifier = verifier_of(settings, None, None)
            root = _signed_root(stored.note, verifier)
            against = f"checkpoint {stored.label} (size {size}), signed by {verifier.name}"
    try:
        # The leaf is hashed from the entry's text, not taken from the store: a modified text fails here.
        verify_inclusion(index, size, leaf_hash(proof.text.encode()), proof.proof, root)
    except ProofError as exc:
        raise fail(f"the proof does NOT verify: {exc}", code=1) from exc
    typer.echo(f"the proof of entry {index} verifies against {against}", err=True)


def _proof_size(engine: Engine, prover: Prover, index: int, size: int | None) -> int:
    """The tree size to prove in: given, else the newest checkpoint's, else the head's."""
    held = prover.head()[0]
    if size is None:
        latest = Checkpoints.stored(engine, limit=1)
        size = latest[0].size if latest else held
    if not index < size <= held:
        raise fail(f"entry {index} is not in a tree of size {size} (the log holds {held} entries)")
    return size


def _signed_root(note: str, verifier: Verifier) -> bytes:
    try:
        return verify_note(note, [verifier]).root
    except CheckpointError as exc:
        raise fail(f"the stored checkpoint does not verify: {exc}", code=1) from exc


@app.command("checkpoint")
def checkpoint_now(
    vkey: Annotated[bool, typer.Option("--vkey", help="Print the verifier key instead of signing.")] = False,
    config: ConfigOption = None,
) -> None:
    """Sign a checkpoint of the log now (if it grew since the newest one) and print the signed note."""
    if vkey:
        typer.echo(_signer(settings_or_exit(config)).verifier.vkey)
        return
    with store(config) as (settings, engine):
        signer = _signer(settings)
        note = Checkpoints(engine, signer, Prover(engine)).ensure().note
    typer.echo(note, nl=False)


def _signer(settings: Settings) -> Signer:
    try:
        return audit_signer(settings)
    except BastionError as exc:
        raise fail(exc.message) from exc
