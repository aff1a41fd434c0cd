"""``bastion audit``: the store edited behind Bastion's back in every way is caught by ``verify``, which names the
entry and the cause; exports, proofs and checkpoints from the command line. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, text, update

from bastion.audit.checkpoint import Signer, Verifier, verify_note
from bastion.audit.log import Record, append_in, canonical
from bastion.audit.merkle import Tree, leaf_hash
from bastion.config import FileConfig, settings_from
from bastion.services import open_services
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from sqlalchemy import Engine

    from conftest import Ran


@dataclass
class Log:
    """120 entries with checkpoints #1 at 50 and #2 at 100, and the CLI on that store."""

    engine: Engine
    cli: Callable[..., Ran]
    tmp: Path
    saved: str  # checkpoint #2, as an auditor saved it

    def sql(self, statement: str, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(statement), values)

    def grow(self, count: int) -> None:
        with self.engine.begin() as connection:
            append_in(
                connection, [Record("test.append", "writer:a", "alpha", 200, fields={"n": n}) for n in range(count)]
            )

    def rewrite(self, seq: int, **changes: Any) -> None:
        """Change an entry's text and, like a careful forger, its leaf column too."""
        e = tables.audit_entries
        with self.engine.begin() as connection:
            old = json.loads(connection.execute(select(e.c.entry).where(e.c.seq == seq)).scalar_one())
            data = canonical(old | changes)
            connection.execute(update(e).where(e.c.seq == seq).values(entry=data.decode(), leaf=leaf_hash(data).hex()))

    def rewind_head(self) -> None:
        """Make the tree head describe exactly the rows there are now, as a careful forger would."""
        e, h = tables.audit_entries, tables.audit_head
        with self.engine.begin() as connection:
            tree = Tree()
            tree.extend(
                bytes.fromhex(leaf) for leaf in connection.execute(select(e.c.leaf).order_by(e.c.seq)).scalars()
            )
            frontier = [[height, value.hex()] for height, value in tree.frontier()]
            connection.execute(update(h).values(size=tree.size, frontier=frontier, root=tree.root().hex()))

    def verify(self, *args: str) -> Ran:
        return self.cli("audit", "verify", *args)


@pytest.fixture
def audit_log(env: dict[str, str], cli: Callable[..., Ran], database_url: str, tmp_path: Path) -> Iterator[Log]:
    env["BASTION_DATABASE_URL"] = database_url
    services = open_services(settings_from(FileConfig(), "<test>", env), ensure_file=False)
    log = Log(services.engine, cli, tmp_path, "")
    log.grow(50)
    assert cli("audit", "checkpoint").code == 0
    log.grow(50)
    log.saved = cli("audit", "checkpoint").out
    log.grow(20)
    yield log
    services.close()


def forged_entry(seq: int) -> tuple[str, str]:
    data = canonical(Record("test.append", "writer:forger", "alpha", 200, fields={"n": seq}).entry(seq))
    return data.decode(), leaf_hash(data).hex()


def insert(log: Log, seq: int) -> None:
    entry, leaf = forged_entry(seq)
    log.sql(
        "INSERT INTO audit_entries (seq, time, action, actor, project, status, entry, leaf) "
        "VALUES (:seq, CURRENT_TIMESTAMP, 'test.append', 'writer:forger', 'alpha', 200, :entry, :leaf)",
        seq=seq,
        entry=entry,
        leaf=leaf,
    )


def modify_text(log: Log) -> None:
    e = tables.audit_entries
    with log.engine.begin() as connection:
        old = json.loads(connection.execute(select(e.c.entry).where(e.c.seq == 57)).scalar_one())
        connection.execute(update(e).where(e.c.seq == 57).values(entry=canonical(old | {"status": 500}).decode()))


def insert_in_the_middle(log: Log) -> None:
    log.sql("UPDATE audit_entries SET seq = -seq - 1 WHERE seq >= 60")
    log.sql("UPDATE audit_entries SET seq = -seq WHERE seq < 0")
    insert(log, 60)


def swap(log: Log) -> None:
    log.sql("UPDATE audit_entries SET seq = -1 WHERE seq = 10")
    log.sql("UPDATE audit_entries SET seq = 10 WHERE seq = 20")
    log.sql("UPDATE audit_entries SET seq = 20 WHERE seq = -1")


def truncate(log: Log) -> None:
    log.sql("DELETE FROM audit_entries WHERE seq >= 90")
    log.rewind_head()


def modify_everything(log: Log) -> None:
    log.rewrite(57, status=500)
    log.rewind_head()


# How the store is edited behind Bastion's back, and the sentences verify must print (a substring of each).
TAMPERING: list[tuple[str, Callable[[Log], None], list[str]]] = [
    (
        "modified text",
        modify_text,
        [
            "entry 57 (seq 57): its stored leaf hash ",
            "is not the hash of its text",
            "entries 50..99: the tree at size 100 does not match checkpoint #2",
        ],
    ),
    (
        "modified text, leaf and head",
        modify_everything,
        ["entries 50..99: the tree at size 100 does not match checkpoint #2", "an entry in that range was modified"],
    ),
    (
        "deleted row",
        lambda log: log.sql("DELETE FROM audit_entries WHERE seq = 57"),
        [
            "entry 57: its seq is 58 — an entry was deleted before it (seq 57 is missing)",
            "the tree head says 120 entries but the log holds 119",
        ],
    ),
    (
        "inserted row at the tail",
        lambda log: insert(log, 120),
        ["the log holds 121 entries but its tree head says 120: entries 120..120 were added behind Bastion's back"],
    ),
    (
        "inserted row in the middle",
        insert_in_the_middle,
        ["entry 61: its seq is 60, the same as entry 60's — an entry was inserted"],
    ),
    (
        "swapped rows",
        swap,
        [
            "entry 10: its seq is 20, but seq 10 comes later (entry 20) — entries were reordered",
            "entry 20: its seq is 10, but it comes after seq 19 — entries were reordered",
        ],
    ),
    (
        "truncated tail, head rewound",
        truncate,
        ["the log holds 90 entries but checkpoint #2 covers 100: entries were removed from the tail (truncation)"],
    ),
]


@pytest.mark.parametrize(("tamper", "expected"), [t[1:] for t in TAMPERING], ids=[t[0] for t in TAMPERING])
def test_tampering_with_the_store_is_named(audit_log: Log, tamper: Callable[[Log], None], expected: list[str]) -> None:
    assert audit_log.verify().code == 0
    tamper(audit_log)
    ran = audit_log.verify()
    assert ran.code == 1, ran.out
    for sentence in expected:
        assert sentence in ran.out, (sentence, ran.out)
    assert ran.out.splitlines()[-1].startswith("the audit log does NOT verify:")


def test_a_rewritten_history_signed_again_is_caught_as_a_fork(audit_log: Log) -> None:
    kept = audit_log.tmp / "checkpoint-100.txt"
    kept.write_text(audit_log.saved)
    audit_log.rewrite(10, actor="writer:nobody")
    audit_log.rewind_head()
    audit_log.sql("DELETE FROM audit_checkpoints")
    assert audit_log.cli("audit", "checkpoint").code == 0  # the forger signs the new history with the same key
    assert audit_log.verify().code == 0  # on its own the rewritten store is consistent...
    ran = audit_log.verify("--checkpoint", str(kept))  # ...but not with what the auditor kept
    assert ran.code == 1
    assert f"entries 0..99: the tree at size 100 does not match checkpoint {kept}" in ran.out
    assert f"checkpoint {kept} (size 100, root" in ran.out
    assert "(size 120, root" in ran.out
    assert f"the log was rewritten after {kept} and signed again: a forked history" in ran.out


def test_bastion_will_not_sign_a_rewritten_history(audit_log: Log) -> None:
    audit_log.rewrite(10, actor="writer:nobody")
    audit_log.rewind_head()
    audit_log.grow(1)
    ran = audit_log.cli("audit", "checkpoint")
    assert ran.code == 1
    assert "does not extend checkpoint #2" in ran.err and "will not sign a rewritten history" in ran.err


def test_an_untouched_store_verifies(audit_log: Log) -> None:
    ran = audit_log.verify()
    assert ran.code == 0, ran.out
    assert ran.out == (
        "verified 120 entries against 2 checkpoints; entries 100..119 are not yet covered by a checkpoint\n"
    )


def test_an_export_verifies_offline_and_edits_to_it_are_named(audit_log: Log) -> None:
    exported, kept = audit_log.tmp / "audit.jsonl", audit_log.tmp / "cp.txt"
    kept.write_text(audit_log.saved)
    assert audit_log.cli("audit", "export", "--out", str(exported)).err == "exported 120 entries\n"
    vkey = audit_log.cli("audit", "checkpoint", "--vkey").out.strip()
    ran = audit_log.verify("--export", str(exported), "--checkpoint", str(kept), "--vkey", vkey)
    assert (ran.code, ran.out) == (
        0,
        "verified 120 entries against 1 checkpoint; entries 100..119 are not yet covered by a checkpoint\n",
    )
    lines = exported.read_bytes().splitlines(keepends=True)
    exported.write_bytes(b"".join(lines[:33] + lines[34:]))
    ran = audit_log.verify("--export", str(exported), "--checkpoint", str(kept))
    assert ran.code == 1
    assert "entry 33: its seq is 34 — an entry was deleted before it (seq 33 is missing)" in ran.out


def test_an_export_needs_a_checkpoint(audit_log: Log) -> None:
    exported = audit_log.tmp / "audit.jsonl"
    audit_log.cli("audit", "export", "--out", str(exported))
    ran = audit_log.verify("--export", str(exported))
    assert ran.code == 2 and "--export needs at least one --checkpoint FILE" in ran.err


def test_checkpoints_signed_by_another_key_fail(audit_log: Log) -> None:
    stranger = Signer.generate("bastion.local/default").verifier
    ran = audit_log.verify("--vkey", stranger.vkey)
    assert ran.code == 1
    assert "FAIL checkpoint #1: no trusted key signed this note" in ran.out
    assert "a trusted name with another key ID means a rotated key or a forgery" in ran.out
    vkey_file = audit_log.tmp / "vkey"
    vkey_file.write_text(audit_log.cli("audit", "checkpoint", "--vkey").out)
    assert audit_log.verify("--vkey-file", str(vkey_file)).code == 0
    assert audit_log.verify("--vkey", "not-a-key").code == 2


def test_prove_prints_a_proof_that_verifies_against_the_signed_checkpoint(audit_log: Log) -> None:
    ran = audit_log.cli("audit", "prove", "57")
    assert ran.code == 0, ran.err
    proof = json.loads(ran.out)
    assert (proof["index"], proof["size"], json.loads(proof["entry"])["seq"]) == (57, 100, 57)
    vkey = audit_log.cli("audit", "checkpoint", "--vkey").out
    assert verify_note(proof["checkpoint"], [Verifier.from_vkey(vkey)]).size == 100
    assert (
        ran.err.strip()
        == "the proof of entry 57 verifies against checkpoint #2 (size 100), signed by bastion.local/default"
    )
    at_head = audit_log.cli("audit", "prove", "110", "--size", "120")
    assert at_head.code == 0 and "the root recomputed from the store (no checkpoint of size 120)" in at_head.err
    beyond = audit_log.cli("audit", "prove", "5", "--size", "500")
    assert beyond.code == 2 and "entry 5 is not in a tree of size 500 (the log holds 120 entries)" in beyond.err


def test_prove_fails_for_a_modified_entry(audit_log: Log) -> None:
    modify_text(audit_log)
    ran = audit_log.cli("audit", "prove", "57")
    assert ran.code == 1 and "the proof does NOT verify" in ran.err


def test_export_writes_cef_from_a_seq(audit_log: Log) -> None:
    ran = audit_log.cli("audit", "export", "--format", "cef", "--from", "118")
    lines = ran.out.splitlines()
    assert len(lines) == 2 and all(line.startswith("CEF:0|Bastion|Bastion|") for line in lines)
    assert "cn1=118" in lines[0] and "cn1=119" in lines[1]
    assert audit_log.cli("audit", "export", "--format", "xml").code == 2


def test_checkpoint_prints_the_signed_note_and_the_vkey(audit_log: Log) -> None:
    note = audit_log.cli("audit", "checkpoint").out
    vkey = Verifier.from_vkey(audit_log.cli("audit", "checkpoint", "--vkey").out)
    assert verify_note(note, [vkey], origin="bastion.local/default").size == 120
    assert audit_log.cli("audit", "checkpoint").out == note  # nothing new: the same checkpoint again
