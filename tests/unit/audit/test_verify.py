"""Offline verification of exports edited as text: every kind of tampering is caught and named, by entry and cause."""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.audit.checkpoint import Signer, sign_checkpoint
from bastion.audit.log import Record, canonical
from bastion.audit.merkle import Tree, leaf_hash
from bastion.audit.verify import MAX_FINDINGS, Note, Verification, sequence_findings, verify_export

if TYPE_CHECKING:
    from collections.abc import Callable

ORIGIN = "test.example/log"
SIGNER = Signer.generate(ORIGIN)
VERIFIERS = [SIGNER.verifier]


def entry(seq: int, **fields: object) -> bytes:
    record = Record("request.completed", "service_account:bot", "alpha", 200, f"req_{seq:04d}", {"n": seq, **fields})
    return canonical(record.entry(seq) | {"time": "2026-01-31T12:00:00.000000Z"})


def log(count: int) -> list[bytes]:
    return [entry(seq) for seq in range(count)]


def note(lines: list[bytes], size: int, signer: Signer = SIGNER, label: str | None = None) -> Note:
    tree = Tree()
    tree.extend(leaf_hash(line) for line in lines[:size])
    return Note(label or f"cp{size}", sign_checkpoint(signer, signer.name, size, tree.root()))


def check(lines: list[bytes], *notes: Note) -> list[str]:
    report = verify_export([line + b"\n" for line in lines], notes, VERIFIERS, origin=ORIGIN)
    return list(report.findings)


ORIGINAL = log(120)
SAVED = (note(ORIGINAL, 50), note(ORIGINAL, 100))


def test_an_untouched_export_verifies_and_says_what_the_checkpoints_cover() -> None:
    report = verify_export([line + b"\n" for line in ORIGINAL], SAVED, VERIFIERS)
    assert report.ok
    assert report.summary() == (
        "verified 120 entries against 2 checkpoints; entries 100..119 are not yet covered by a checkpoint"
    )
    covered = verify_export([line + b"\n" for line in ORIGINAL[:100]], SAVED, VERIFIERS)
    assert covered.summary() == "verified 100 entries against 2 checkpoints"


def modified(lines: list[bytes]) -> list[bytes]:
    changed = orjson.loads(lines[57]) | {"status": 500}
    return [*lines[:57], canonical(changed), *lines[58:]]


def reformatted(lines: list[bytes]) -> list[bytes]:
    spaced = orjson.dumps(orjson.loads(lines[57]), option=orjson.OPT_INDENT_2).replace(b"\n", b"")
    return [*lines[:57], spaced, *lines[58:]]


def renumbered_insert(lines: list[bytes]) -> list[bytes]:
    """An entry slipped in at 60 and every later seq rewritten to keep them dense: only the hashes can tell."""
    shifted = [canonical(orjson.loads(line) | {"seq": seq + 1}) for seq, line in enumerate(lines[60:], start=60)]
    return [*lines[:60], entry(60, forged=True), *shifted]


def swapped(lines: list[bytes], first: int, second: int) -> list[bytes]:
    out = list(lines)
    out[first], out[second] = out[second], out[first]
    return out


# How each tampering is edited into the export, and the sentences verify must say (a substring of each).
TAMPERING = [
    (
        "modified",
        modified,
        ["entries 50..99: the tree at size 100 does not match checkpoint cp100", "an entry in that range was modified"],
    ),
    (
        "reformatted",
        reformatted,
        ["entry 57 (seq 57): its text is not in canonical form", "entries 50..99: the tree at size 100 does not match"],
    ),
    (
        "deleted",
        lambda lines: lines[:57] + lines[58:],
        ["entry 57: its seq is 58 — an entry was deleted before it (seq 57 is missing)"],
    ),
    (
        "several deleted",
        lambda lines: lines[:10] + lines[13:],
        ["entry 10: its seq is 13 — 3 entries were deleted before it (seqs 10..12 are missing)"],
    ),
    (
        "duplicated",
        lambda lines: [*lines[:58], lines[57], *lines[58:]],
        ["entry 58: its seq is 57, the same as entry 57's — an entry was inserted"],
    ),
    (
        "inserted",
        lambda lines: [*lines[:30], entry(5000), *lines[30:]],
        ["entry 30: its seq is 5,000, but it sits between seq 29 and seq 30 — it was inserted"],
    ),
    (
        "inserted, seqs renumbered",
        renumbered_insert,
        ["entries 50..99: the tree at size 100 does not match checkpoint cp100"],
    ),
    (
        "reordered",
        lambda lines: swapped(lines, 10, 20),
        [
            "entry 10: its seq is 20, but seq 10 comes later (entry 20) — entries were reordered",
            "entry 20: its seq is 10, but it comes after seq 19 — entries were reordered",
            "entries 0..49: the tree at size 50 does not match checkpoint cp50",
        ],
    ),
    (
        "truncated",
        lambda lines: lines[:90],
        ["the log holds 90 entries but checkpoint cp100 covers 100: entries were removed from the tail (truncation)"],
    ),
    (
        "damaged",
        lambda lines: [*lines[:3], b'{"seq": 3, "action": ', *lines[4:]],
        ["entry 3: it is not a JSON object"],
    ),
    ("no seq", lambda lines: [*lines[:3], b'{"action":"x"}', *lines[4:]], ["entry 3: it has no 'seq' from 0 to"]),
    (
        "huge seq",
        lambda lines: [*lines[:3], canonical(orjson.loads(lines[3]) | {"seq": 2**64 - 1}), *lines[4:]],
        ["entry 3: it has no 'seq' from 0 to 2**63 - 1"],
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [(edit, expected) for _, edit, expected in TAMPERING], ids=[name for name, _, _ in TAMPERING]
)
def test_tampering_with_an_export_is_named(edit: Callable[[list[bytes]], list[bytes]], expected: list[str]) -> None:
    findings = check(edit(ORIGINAL), *SAVED)
    for sentence in expected:
        assert any(sentence in finding for finding in findings), (sentence, findings)


def test_a_rewritten_history_signed_again_is_a_fork() -> None:
    """The operator rewrites entry 10 and signs the new history with the same key; the auditor kept cp100."""
    rewritten = [*ORIGINAL[:10], entry(10, status_note="edited"), *ORIGINAL[11:]]
    resigned = note(rewritten, 120, label="#7")
    findings = check(rewritten, SAVED[1], resigned)
    assert findings[0].startswith("entries 0..99: the tree at size 100 does not match checkpoint cp100")
    assert "checkpoint cp100 (size 100, root" in findings[1]
    assert "is not consistent with the newer checkpoint #7 (size 120" in findings[1]
    assert findings[1].endswith("the log was rewritten after cp100 and signed again: a forked history")


def test_two_roots_signed_for_one_size_are_a_fork() -> None:
    other = [*ORIGINAL[:10], entry(10, forked=True), *ORIGINAL[11:100]]
    findings = check(ORIGINAL, SAVED[1], note(other, 100, label="elsewhere"))
    assert any(
        "checkpoints cp100 and elsewhere both sign tree size 100 but with different roots" in f for f in findings
    )
    assert any(f.endswith("the log has forked") for f in findings)


@pytest.mark.parametrize(
    ("notes", "expected"),
    [
        ([note(ORIGINAL, 100, Signer.generate(ORIGIN), "stranger")], "checkpoint stranger: no trusted key signed"),
        ([Note("edited", SAVED[1].text.replace("\n100\n", "\n101\n"))], "checkpoint edited: the signature by"),
        ([note(ORIGINAL, 100, Signer.generate("other.example/log"), "other")], "checkpoint other: no trusted key"),
    ],
)
def test_a_checkpoint_that_is_not_signed_by_the_trusted_key_is_reported(notes: list[Note], expected: str) -> None:
    findings = check(ORIGINAL, *notes)
    assert findings and findings[0].startswith(expected)


def test_a_checkpoint_of_another_log_is_reported() -> None:
    stranger = Signer.generate("another.example/log")
    report = verify_export([line + b"\n" for line in ORIGINAL], [note(ORIGINAL, 100, stranger)], [stranger.verifier])
    assert report.ok
    wrong_origin = verify_export(
        [line + b"\n" for line in ORIGINAL], [note(ORIGINAL, 100, stranger)], [stranger.verifier], origin=ORIGIN
    )
    assert "is for log 'another.example/log', not 'test.example/log'" in wrong_origin.findings[0]


def test_the_stored_leaf_and_the_head_are_checked_against_the_entries() -> None:
    tree = Tree()
    tree.extend(leaf_hash(line) for line in ORIGINAL[:100])
    verification = Verification([SAVED[1]], VERIFIERS, head=(100, tree.root()), grown_to=100)
    rows = [(modified(ORIGINAL)[57] if seq == 57 else line, leaf_hash(line).hex()) for seq, line in enumerate(ORIGINAL)]
    verification.add_stored(rows[:60])
    verification.add_stored(rows[60:101])
    findings = verification.finish().findings
    assert findings[0].startswith("entry 57 (seq 57): its stored leaf hash ")
    assert findings[0].endswith("the entry was modified after it was written")
    assert "the log holds 101 entries but its tree head says 100: entries 100..100 were added behind" in findings[1]
    assert findings[2].startswith("the tree head's root ")


def test_a_head_ahead_of_the_entries_means_rows_were_removed() -> None:
    verification = Verification([], VERIFIERS, head=(5, b"\0" * 32))
    verification.scan.feed(ORIGINAL[:4])
    assert verification.finish().findings == (
        "the tree head says 5 entries but the log holds 4: entries were removed behind Bastion's back "
        "(the head was not rewound)",
    )


def test_findings_past_the_cap_are_counted() -> None:
    report = verify_export([line + b"\n" for line in reversed(log(500))], [], VERIFIERS)
    assert len(report.findings) == MAX_FINDINGS
    assert report.omitted == 500 - MAX_FINDINGS
    assert report.summary() == "the audit log does NOT verify: 500 findings"


@settings(max_examples=60, deadline=None)
@given(size=st.integers(2, 300), data=st.data())
def test_a_deleted_entry_is_named_wherever_it_was(size: int, data: st.DataObject) -> None:
    gone = data.draw(st.integers(0, size - 2))
    seqs = array("q", [seq for seq in range(size) if seq != gone])
    expected = f"entry {gone}: its seq is {gone + 1:,} — an entry was deleted before it (seq {gone:,} is missing)"
    assert sequence_findings(seqs) == [expected]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(3, 300), data=st.data())
def test_two_swapped_entries_are_both_named(size: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(0, size - 2))
    second = data.draw(st.integers(first + 1, size - 1))
    seqs = array("q", range(size))
    seqs[first], seqs[second] = second, first
    found = sequence_findings(seqs)
    assert len(found) == 2
    assert found[0].startswith(f"entry {first}: its seq is {second:,}")
    assert found[1].startswith(f"entry {second}: its seq is {first:,}")
    assert all(sentence.endswith("entries were reordered") for sentence in found)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_a_repeated_entry_is_named_as_inserted(size: int, data: st.DataObject) -> None:
    copied = data.draw(st.integers(0, size - 1))
    seqs = array("q", [*range(copied + 1), copied, *range(copied + 1, size)])
    assert sequence_findings(seqs) == [
        f"entry {copied + 1}: its seq is {copied:,}, the same as entry {copied}'s — an entry was inserted "
        "(one of the two is not the log's)"
    ]


def test_a_dense_log_has_no_sequence_findings() -> None:
    assert sequence_findings(array("q", range(1000))) == []
