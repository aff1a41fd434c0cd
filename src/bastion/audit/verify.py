"""Offline verification of the audit log: recompute the Merkle tree from the entries, check it against signed
checkpoints and the checkpoints against each other, and say which entry is wrong and why.

Pure: it reads the lines and notes it is given (an export, or rows the CLI reads from the store) and returns
findings, sentences that name the entry and the cause. ``verify_export`` is the whole check of an export.
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING

import orjson

from bastion.audit.checkpoint import CheckpointError, verify_note
from bastion.audit.merkle import EMPTY_ROOT, Levels, ProofError, Tree, verify_consistency

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from bastion.audit.checkpoint import Verifier

MAX_FINDINGS = 200  # shown in full; beyond this only counted
MAX_SEQ = 2**63 - 1
_LEAF = b"\x00"
_sha256 = hashlib.sha256


@dataclass(frozen=True)
class Note:
    """A signed checkpoint to check, and how findings name it (``#3`` for a stored one, else its file)."""

    label: str
    text: str


@dataclass(frozen=True)
class Signed:
    """A checkpoint whose signature verified."""

    label: str
    size: int
    root: bytes

    def name(self) -> str:
        return f"checkpoint {self.label} (size {self.size:,}, root {short(self.root)})"


@dataclass
class Findings:
    """What went wrong, in order; past ``MAX_FINDINGS`` only counted."""

    messages: list[str] = field(default_factory=list)
    omitted: int = 0

    def add(self, message: str) -> None:
        if len(self.messages) < MAX_FINDINGS:
            self.messages.append(message)
        else:
            self.omitted += 1

    def __len__(self) -> int:
        return len(self.messages) + self.omitted


@dataclass(frozen=True)
class Report:
    """The outcome: how many entries were hashed, which checkpoints held, and the findings (none when all is well)."""

    entries: int
    verified: tuple[Signed, ...]
    findings: tuple[str, ...]
    omitted: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        """``verified 1,234 entries against 3 checkpoints`` and what the newest covers, or the count of findings."""
        if not self.ok:
            total = len(self.findings) + self.omitted
            return f"the audit log does NOT verify: {total:,} finding{'' if total == 1 else 's'}"
        count = len({(signed.size, signed.root) for signed in self.verified})
        text = f"verified {self.entries:,} entries against {count:,} checkpoint{'' if count == 1 else 's'}"
        newest = max((signed.size for signed in self.verified), default=0)
        if newest < self.entries:
            text += f"; entries {newest:,}..{self.entries - 1:,} are not yet covered by a checkpoint"
        return text


def short(hashed: bytes) -> str:
    """The first 16 hex digits of a hash, enough to tell two apart in a message."""
    return hashed.hex()[:16] + "…"


def open_notes(
    notes: Iterable[Note], verifiers: Sequence[Verifier], findings: Findings, origin: str | None = None
) -> list[Signed]:
    """The notes whose signature (and origin, if given) verifies; a finding for each that does not."""
    signed: list[Signed] = []
    for note in notes:
        try:
            checkpoint = verify_note(note.text, verifiers, origin=origin)
            signed.append(Signed(note.label, checkpoint.size, checkpoint.root))
        except CheckpointError as exc:
            findings.add(f"checkpoint {note.label}: {exc}")
    return signed


class Scan:
    """Entries in order: hashes every line and keeps only its leaf hash and its seq (40 bytes an entry)."""

    def __init__(self, findings: Findings) -> None:
        self.leaves: list[bytes] = []
        self.seqs = array("q")
        self.findings = findings
        self.misplaced = False  # some seq is not its position: explained in ``finish``

    @property
    def size(self) -> int:
        return len(self.leaves)

    def feed(self, lines: Iterable[bytes]) -> None:
        """Every line in order (a trailing newline is dropped): a few C calls a line, 10**6 lines in seconds.

        A line that is not canonical JSON with an integer seq takes the slow path, which says what is wrong.
        """
        loads, dumps, option, sha256 = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS, _sha256
        leaves, add_seq, add_leaf = self.leaves, self.seqs.append, self.leaves.append
        for line in lines:
            text = line[:-1] if line[-1:] == b"\n" else line
            position = len(leaves)
            try:
                entry = loads(text)
                seq = entry["seq"] if dumps(entry, option=option) == text else None
            except (orjson.JSONDecodeError, KeyError, TypeError):
                seq = None
            if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
                seq = self._seq(position, text)
            if seq != position:
                self.misplaced = True
            add_seq(seq)
            add_leaf(sha256(_LEAF + text).digest())

    def roots(self, sizes: Iterable[int], levels: Levels | None) -> dict[int, bytes]:
        """The recomputed root at each size (up to the entries held): from ``levels`` if built, else a ``Tree``."""
        roots = {0: EMPTY_ROOT}
        tree = Tree()
        for size in sorted({size for size in sizes if 0 < size <= self.size}):
            if levels is not None and size <= levels.size:
                roots[size] = levels.root(size)
            else:
                tree.extend(self.leaves[tree.size : size])
                roots[size] = tree.root()
        return roots

    def _seq(self, position: int, line: bytes) -> int:
        """The entry's seq, or -1 (with a finding) when the line is not an entry Bastion could have written."""
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            self.findings.add(f"entry {position}: it is not a JSON object ({exc}); the line was damaged or edited")
            return -1
        seq = entry.get("seq") if isinstance(entry, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
            self.findings.add(
                f"entry {position}: it has no 'seq' from 0 to 2**63 - 1; it is not an entry Bastion wrote"
            )
            return -1
        if orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) != line:
            self.findings.add(
                f"entry {position} (seq {seq}): its text is not in canonical form (sorted keys, no spaces, "
                "as Bastion writes it); it was edited after export"
            )
        return seq


class Verification:
    """One verification run: open the notes, feed every entry in order to ``scan``, then ``finish`` for the report."""

    def __init__(
        self,
        notes: Iterable[Note],
        verifiers: Sequence[Verifier],
        *,
        origin: str | None = None,
        head: tuple[int, bytes] | None = None,
        grown_to: int | None = None,
    ) -> None:
        self.findings = Findings()
        self.signed = open_notes(notes, verifiers, self.findings, origin)
        self._about_notes = len(self.findings)  # findings after these are about the entries
        self.head = head
        self.grown_to = grown_to  # the head's size read again after the entries: appends made meanwhile
        self.scan = Scan(self.findings)

    def add_stored(self, rows: Sequence[tuple[bytes, str]]) -> None:
        """Entries read from the store, each with its ``leaf`` column (hex): the two must agree."""
        scan, start = self.scan, self.scan.size
        scan.feed(text for text, _ in rows)
        for position, (_, stored) in enumerate(rows, start):
            leaf = scan.leaves[position]
            if leaf.hex() != stored:
                self.findings.add(
                    f"entry {position} (seq {scan.seqs[position]}): its stored leaf hash {stored[:16]}… is not "
                    f"the hash of its text ({short(leaf)}); the entry was modified after it was written"
                )

    def finish(self) -> Report:
        """Check what the entries imply against the head, the checkpoints and each other."""
        scan, findings = self.scan, self.findings
        if scan.misplaced:
            for message in sequence_findings(scan.seqs):
                findings.add(message)
        disordered = len(findings) > self._about_notes  # entries were named: they explain a root that differs
        levels = _levels(self.signed, scan)
        roots = scan.roots([signed.size for signed in self.signed] + ([self.head[0]] if self.head else []), levels)
        if self.head is not None:
            _check_head(self.head, self.grown_to or self.head[0], scan.size, roots, findings)
        matching = _check_roots(self.signed, scan.size, roots, findings, disordered)
        _check_forks(self.signed, findings)
        if levels is not None:
            _check_consistency(self.signed, matching, levels, findings)
        verified = tuple(signed for signed in self.signed if signed.label in matching)
        return Report(scan.size, verified, tuple(findings.messages), findings.omitted)


def verify_export(
    lines: Iterable[bytes], notes: Iterable[Note], verifiers: Sequence[Verifier], *, origin: str | None = None
) -> Report:
    """Verify a JSONL export (one canonical entry per line, newline-terminated) against signed checkpoints."""
    verification = Verification(notes, verifiers, origin=origin)
    verification.scan.feed(lines)
    return verification.finish()


def _levels(signed: list[Signed], scan: Scan) -> Levels | None:
    """Every perfect subtree of the entries, built only when two checkpoint sizes are to be proved consistent."""
    sizes = {checkpoint.size for checkpoint in signed if 0 < checkpoint.size <= scan.size}
    return Levels(scan.leaves[: max(sizes)]) if len(sizes) > 1 else None


def _check_head(head: tuple[int, bytes], grown_to: int, held: int, roots: dict[int, bytes], findings: Findings) -> None:
    """The store's tree head must describe the ``held`` entries (``grown_to``: appends made while reading)."""
    size, root = head
    if size > held:
        findings.add(
            f"the tree head says {size:,} entries but the log holds {held:,}: "
            "entries were removed behind Bastion's back (the head was not rewound)"
        )
    elif held > grown_to:
        findings.add(
            f"the log holds {held:,} entries but its tree head says {grown_to:,}: entries "
            f"{grown_to:,}..{held - 1:,} were added behind Bastion's back (not through the log)"
        )
    if size <= held and roots[size] != root:
        findings.add(
            f"the tree head's root {short(root)} is not the root of the first {size:,} entries "
            f"({short(roots[size])}); the entries or the head were altered"
        )


def _check_roots(
    signed: list[Signed], held: int, roots: dict[int, bytes], findings: Findings, disordered: bool
) -> set[str]:
    """Each checkpoint against the recomputed root at its size; the labels of those that match.

    A mismatch is narrowed to the entries after the largest smaller checkpoint that matches.
    """
    matching: set[str] = set()
    good = 0
    cause = "see the entries named above" if disordered else "an entry in that range was modified"
    for checkpoint in sorted(signed, key=lambda s: s.size):
        if checkpoint.size > held:
            why = "entries are missing" if disordered else "entries were removed from the tail (truncation)"
            findings.add(
                f"the log holds {held:,} entries but checkpoint {checkpoint.label} covers {checkpoint.size:,}: {why}"
            )
        elif roots[checkpoint.size] == checkpoint.root:
            matching.add(checkpoint.label)
            good = max(good, checkpoint.size)
        else:
            findings.add(
                f"entries {good:,}..{checkpoint.size - 1:,}: the tree at size {checkpoint.size:,} does not match "
                f"checkpoint {checkpoint.label} (root {short(checkpoint.root)}, recomputed "
                f"{short(roots[checkpoint.size])}); {cause}"
            )
    return matching


def _check_forks(signed: list[Signed], findings: Findings) -> None:
    """Two signed checkpoints of one size with different roots: the log showed two histories."""
    first: dict[int, Signed] = {}
    for checkpoint in signed:
        other = first.setdefault(checkpoint.size, checkpoint)
        if other.root != checkpoint.root:
            findings.add(
                f"checkpoints {other.label} and {checkpoint.label} both sign tree size {checkpoint.size:,} but with "
                f"different roots ({short(other.root)} and {short(checkpoint.root)}): the log has forked"
            )


def _check_consistency(signed: list[Signed], matching: set[str], levels: Levels, findings: Findings) -> None:
    """Each older checkpoint against the next newer one, with consistency proofs from the recomputed tree.

    Proofs need every perfect subtree: ``levels`` holds them for the entries up to the largest size.
    """
    # Where several checkpoints share a size, one that matches the entries stands for it.
    by_size = {s.size: s for s in sorted(signed, key=lambda s: s.label in matching) if 0 < s.size <= levels.size}
    sizes = sorted(by_size)
    for old, new in pairwise(sizes):
        older, newer = by_size[old], by_size[new]
        try:
            verify_consistency(old, new, older.root, newer.root, levels.consistency_proof(old, new))
        except ProofError as exc:
            if older.label not in matching and newer.label in matching:
                findings.add(
                    f"{older.name()} is not consistent with the newer {newer.name()} ({exc}); both are signed, so "
                    f"the log was rewritten after {older.label} and signed again: a forked history"
                )


class _Places:
    """Where each seq first appears among the lines, and whether it appears twice (for seqs below the count)."""

    def __init__(self, seqs: array[int]) -> None:
        count = len(seqs)
        self.seqs = seqs
        self.count = count
        self.first = array("q", [-1]) * count
        self.twice = bytearray(count)
        for position, seq in enumerate(seqs):
            if 0 <= seq < count:
                if self.first[seq] < 0:
                    self.first[seq] = position
                else:
                    self.twice[seq] = 1

    def where(self, seq: int) -> int:
        return self.first[seq] if 0 <= seq < self.count else -1

    def repeated(self, seq: int) -> bool:
        return 0 <= seq < self.count and bool(self.twice[seq])

    def after(self, seq: int, position: int) -> int:
        """The next line after ``position`` that holds ``seq`` too."""
        return next(p for p in range(position + 1, self.count) if self.seqs[p] == seq)

    def missing(self, start: int, stop: int) -> int:
        """How many seqs in [start, stop) appear on no line."""
        beyond = max(0, stop - max(start, self.count))
        return beyond + sum(1 for seq in range(start, min(stop, self.count)) if self.first[seq] < 0)


def sequence_findings(seqs: array[int]) -> list[str]:
    """Why the seqs are not 0, 1, 2, …: deleted, inserted or reordered entries, each named by its position.

    A line continues the sequence when its seq follows the last accepted one or equals its own position; every
    other line gets one sentence. Unreadable lines (seq -1) were reported already and are skipped.
    """
    places = _Places(seqs)
    messages: list[str] = []
    previous = -1
    for position, seq in enumerate(seqs):
        if seq in (previous + 1, position):
            previous = seq
        elif seq >= 0:
            message, accept = _misplaced(places, position, seq, previous)
            messages.append(message)
            previous = seq if accept else previous
    return messages


def _misplaced(places: _Places, position: int, seq: int, previous: int) -> tuple[str, bool]:
    """One sentence for a line out of sequence, and whether the sequence goes on from its seq."""
    expected = previous + 1
    said = f"entry {position}: its seq is {seq:,}"
    if places.repeated(seq):
        other = places.where(seq) if places.where(seq) != position else places.after(seq, position)
        return f"{said}, the same as entry {other}'s — an entry was inserted (one of the two is not the log's)", False
    if seq < expected:
        return f"{said}, but it comes after seq {previous:,} — entries were reordered", False
    following = places.where(expected)
    if following == position + 1 and seq != expected + 1:
        how = "inserted" if seq >= places.count else "inserted here, or moved from its place"
        return f"{said}, but it sits between seq {previous:,} and seq {expected:,} — it was {how}", False
    if following > position:
        return f"{said}, but seq {expected:,} comes later (entry {following}) — entries were reordered", True
    missing = places.missing(expected, seq)
    if missing == 0:
        return f"{said}, after seq {previous:,}; the seqs between appear earlier — entries were reordered", True
    span = f"seq {expected:,} is" if seq - expected == 1 else f"seqs {expected:,}..{seq - 1:,} are"
    deleted = "an entry was" if missing == 1 else f"{missing:,} entries were"
    return f"{said} — {deleted} deleted before it ({span} missing)", True
