"""The GDPR data-subject report and erasure: exactly the person's entries, then crypto-shredding that leaves
every entry and proof intact and the person unlinkable."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select
from tests.unit.compliance.activity import ACTOR, query

from bastion.audit import subjects
from bastion.audit.log import head
from bastion.audit.merkle import consistency_proof, root, verify_consistency
from bastion.compliance import dsr, erasure
from bastion.compliance.render import json_text, to_json
from bastion.errors import Conflict, MissingParameter, NotFound
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.compliance.activity import Activity

    from bastion.compliance.source import Source

ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def log_rows(source: Source) -> list[tuple[int, str, str]]:
    e = tables.audit_entries
    with source.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(e.c.seq, e.c.entry, e.c.leaf).order_by(e.c.seq))]


def carrying(source: Source, ref: str) -> set[int]:
    """Sequence numbers of the entries whose ``subjects`` name ``ref``, read straight from the table."""
    return {seq for seq, entry, _ in log_rows(source) if ref in json.loads(entry)["subjects"]}


def test_the_report_finds_exactly_the_subjects_entries(make_source: Callable[..., Source], activity: Activity) -> None:
    source = make_source()
    ref = subjects.ref(source.audit_keys, "bob@acme.com")
    assert ref is not None
    report = to_json(dsr.build(source, query(subject="Bob@Acme.com")))
    rows = report["sections"]["entries"]["rows"]
    assert {row["seq"] for row in rows} == carrying(source, ref)
    assert Counter(row["action"] for row in rows) == Counter(
        {"request.forwarded": 4, "request.completed": 4, "request.refused": 1, "member.add": 1, "key.create": 1}
    )
    assert {row["link"] for row in rows} == {"reference"}
    summary = report["summary"]
    assert (summary["subject"], summary["status"], summary["reference"], summary["entries_linked"]) == (
        "bob@acme.com",
        "linked",
        ref,
        11,
    )
    held = {(row["kind"], row["id"]) for row in report["sections"]["held"]["rows"]}
    assert held == {("member", activity.ids["bob@acme.com"]), ("key", activity.ids["bob"])}
    assert set(ADDRESS.findall(json_text(dsr.build(source, query(subject="bob@acme.com"))))) == {"bob@acme.com"}


def test_other_people_in_the_subjects_entries_are_masked(
    make_source: Callable[..., Source], activity: Activity
) -> None:
    source = make_source()
    report = dsr.build(source, query(subject="eve@acme.com"))
    text = json_text(report)
    (row,) = to_json(report)["sections"]["entries"]["rows"]
    assert (row["action"], row["actor"]) == ("invite.create", "member:subj_(another person)")
    assert str(subjects.ref(source.audit_keys, "ann@acme.com")) not in text and "ann@" not in text
    assert [r["kind"] for r in to_json(report)["sections"]["held"]["rows"]] == ["invite"]


def test_an_unknown_subject_and_a_missing_one(make_source: Callable[..., Source]) -> None:
    source = make_source()
    report = to_json(dsr.build(source, query(subject="nobody@acme.com")))
    assert (report["summary"]["status"], report["sections"]["entries"]["rows"]) == ("unknown", [])
    with pytest.raises(MissingParameter, match="--subject"):
        dsr.build(source, query())


def test_erasure_refuses_a_current_or_declared_member(make_source: Callable[..., Source]) -> None:
    source = make_source()
    with pytest.raises(Conflict, match=re.escape("bastion members remove bob@acme.com")):
        erasure.erase(source, "bob@acme.com", ACTOR)
    source.org.remove_member(ACTOR, "bob@acme.com")
    declared = make_source(members=("bob@acme.com",))
    with pytest.raises(Conflict, match="declared under members"):
        erasure.erase(declared, "bob@acme.com", ACTOR)
    with pytest.raises(NotFound, match="nothing to erase"):
        erasure.erase(source, "nobody@acme.com", ACTOR)
    assert to_json(dsr.build(source, query(subject="bob@acme.com")))["summary"]["status"] == "linked"


def snapshot(source: Source) -> tuple[list[tuple[int, str, str]], int, bytes]:
    with source.engine.connect() as connection:
        size, tree_root = head(connection)
    return log_rows(source), size, tree_root


def test_erasure_shreds_the_key_and_leaves_every_entry_and_proof_intact(
    make_source: Callable[..., Source], activity: Activity
) -> None:
    source = make_source()
    source.org.remove_member(ACTOR, "bob@acme.com")  # offboarding first: one more entry about bob
    with source.engine.connect() as connection:
        scope = subjects.lookup(connection, source.audit_keys, "bob@acme.com").scope
    rows, size, old_root = snapshot(source)
    done = erasure.erase(source, "bob@acme.com", ACTOR)
    after, new_size, new_root = snapshot(source)
    assert done == erasure.Erasure("bob@acme.com", True, False, 1, 0, 2, 12)
    assert scope is not None and source.audit_keys.shredded(scope)
    assert after[:size] == rows  # every entry and leaf, byte for byte
    leaves = [bytes.fromhex(leaf) for _, _, leaf in after]
    assert root(leaves[:size]) == old_root and root(leaves) == new_root
    verify_consistency(size, new_size, old_root, new_root, consistency_proof(size, new_size, leaves))
    assert [json.loads(entry)["action"] for _, entry, _ in after[size:]] == ["member.erase", "subject.erase"]
    assert not ADDRESS.findall(str(after[size:]))


def test_after_erasure_nobody_can_link_the_subject(make_source: Callable[..., Source], activity: Activity) -> None:
    source = make_source()
    source.org.remove_member(ACTOR, "bob@acme.com")
    erasure.erase(source, "bob@acme.com", ACTOR)
    report = to_json(dsr.build(source, query(subject="bob@acme.com")))
    assert (report["summary"]["status"], report["summary"]["reference"]) == ("erased", None)
    assert report["sections"]["entries"]["rows"] == [] and report["sections"]["held"]["rows"] == []
    assert "was erased" in report["sections"]["entries"]["notes"][0]
    assert subjects.ref(source.audit_keys, "bob@acme.com") is None
    member_id = activity.ids["bob@acme.com"]
    with source.engine.connect() as connection:
        emails = list(connection.execute(select(tables.members.c.email)).scalars())
    assert "bob@acme.com" not in emails and f"erased-{member_id}@invalid" in emails
    assert "bob@acme.com" not in json.dumps(source.org.events(limit=1000), default=str)
    again = erasure.erase(source, "bob@acme.com", ACTOR)
    assert (again.already_erased, again.key_shredded, again.members_scrubbed) == (True, False, 0)
    source.keys.revoke(activity.ids["bob"], actor=ACTOR)  # an event about the erased member's key names nobody
    assert json.loads(log_rows(source)[-1][1])["subjects"] == []


def test_erasing_an_invitee_scrubs_and_revokes_the_invite(make_source: Callable[..., Source]) -> None:
    source = make_source()
    done = erasure.erase(source, "eve@acme.com", ACTOR)
    (invite,) = source.org.invites()
    assert (done.invites_scrubbed, done.events_scrubbed, done.key_shredded) == (1, 1, True)
    assert (invite.email, invite.status(source.now())) == (f"erased-{invite.id}@invalid", "revoked")
    receipt: dict[str, Any] = to_json(erasure.receipt(source, query(subject="eve@acme.com"), done))
    assert receipt["summary"]["status"] == "erased" and "entries" not in receipt["sections"]
    assert to_json(dsr.build(source, query(subject="eve@acme.com")))["summary"]["status"] == "erased"
