"""The SOC 2 evidence pack: each control's evidence from the live store and the log, and what it leaves out."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from tests.unit.compliance.activity import query

from bastion.compliance import soc2
from bastion.compliance.render import to_json
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.compliance.source import Source

CONTROLS = ["CC6.1", "CC6.2", "CC6.3", "CC7.2", "CC8.1", "CC9.1"]


def evidence(report: dict[str, Any], control: str) -> dict[str, Any]:
    rows = report["sections"][control.lower().replace(".", "_")]["rows"]
    return {row["item"]: row for row in rows}


def test_every_control_says_what_is_automated_and_what_is_not_covered(make_source: Callable[..., Source]) -> None:
    report = to_json(soc2.build(make_source(), query()))
    assert [row["control"] for row in report["sections"]["controls"]["rows"]] == CONTROLS
    for control in CONTROLS:
        section = report["sections"][control.lower().replace(".", "_")]
        assert section["title"].startswith(control) and section["rows"]
        automated, missing = section["notes"]
        assert automated.startswith("Automated: ") and missing.startswith("Not covered: ")
    assert report["log"]["source"] in ("checkpoint", "head") and len(report["log"]["root"]) == 64


def test_the_numbers_come_from_the_log_and_the_store(make_source: Callable[..., Source]) -> None:
    report = to_json(soc2.build(make_source(), query()))
    cc61, cc62, cc63 = evidence(report, "CC6.1"), evidence(report, "CC6.2"), evidence(report, "CC6.3")
    cc72, cc81, cc91 = evidence(report, "CC7.2"), evidence(report, "CC8.1"), evidence(report, "CC9.1")
    assert cc61["API keys stored only as HMAC-SHA-256 hashes"]["value"] == "12 of 12"
    assert cc61["requests refused: unknown, expired or revoked key"]["value"] == 2
    assert cc61["requests refused: permission or model not allowed"]["value"] == 2
    assert cc61["service accounts with an IP allowlist"]["value"] == "1 of 2"
    assert (cc62["members added (member.add)"]["value"], cc62["members removed (member.remove)"]["value"]) == (5, 0)
    assert cc62["invites created or revoked"]["value"] == 1
    assert cc63["organisation role changes (member.update)"]["value"] == 1
    assert cc63["members by organisation role"]["value"] == ["owner=1", "admin=1", "member=2", "reader=1"]
    assert (cc72["requests completed"]["value"], cc72["requests refused or failed"]["value"]) == (9, 5)
    assert cc72["requests refused by a rate limit"]["value"] == 1
    assert cc81["changes by kind of actor"]["value"] == [
        "cli=23",
        "member=1",
    ]  # 2 projects, 5 members, 2 accounts, 11 keys, 3 changes; the invite
    assert cc91["provider local"]["value"].startswith("kind echo, host local, models echo-1, echo-2")
    assert cc91["requests forwarded by provider"]["value"] == ["local=9"]


def test_cited_entries_are_the_ones_described(make_source: Callable[..., Source]) -> None:
    source = make_source()
    report = to_json(soc2.build(source, query()))
    with source.engine.connect() as connection:
        entries = {row.seq: json.loads(row.entry) for row in connection.execute(select(tables.audit_entries))}
    role_change = evidence(report, "CC6.3")["organisation role changes (member.update)"]["examples"]
    assert [(entries[s]["before"]["role"], entries[s]["after"]["role"]) for s in role_change] == [("member", "admin")]
    added = evidence(report, "CC6.2")["members added (member.add)"]["examples"]
    assert len(added) == 3 and all(entries[s]["action"] == "member.add" for s in added)
    limited = evidence(report, "CC7.2")["requests refused by a rate limit"]["examples"]
    assert [entries[s]["reason"] for s in limited] == ["rate_limit_exceeded"]


def test_a_project_scope_narrows_the_log_evidence(make_source: Callable[..., Source]) -> None:
    report = to_json(soc2.build(make_source(), query(project="alpha")))
    cc72 = evidence(report, "CC7.2")
    assert cc72["requests completed"]["value"] == 5
    assert cc72["refusals and failures by reason"]["value"] == ["model_not_allowed=1", "permission_denied=1"]
    assert evidence(report, "CC6.1")["requests refused: unknown, expired or revoked key"]["value"] == 0
