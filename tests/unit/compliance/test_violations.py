"""The violations report: refusals by reason, project and day, each citing entries that really say so."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING

from sqlalchemy import select
from tests.unit.compliance.activity import query

from bastion.compliance import violations
from bastion.compliance.render import to_json
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.compliance.activity import Activity

    from bastion.compliance.source import Source


def test_counts_by_reason_match_the_refusals_the_clients_got(
    make_source: Callable[..., Source], activity: Activity
) -> None:
    report = to_json(violations.build(make_source(), query()))
    by_reason = {row["reason"]: (row["refused"], row["failed"]) for row in report["sections"]["by_reason"]["rows"]}
    seen = Counter(call.reason for call in activity.calls if call.reason)
    assert by_reason == {reason: (count, 0) for reason, count in seen.items()}
    assert by_reason == {
        "invalid_api_key": (2, 0),
        "model_not_allowed": (1, 0),
        "permission_denied": (1, 0),
        "rate_limit_exceeded": (1, 0),
    }
    assert (report["summary"]["refused"], report["summary"]["failed"], report["summary"]["reasons"]) == (5, 0, 4)


def test_by_project_and_day(make_source: Callable[..., Source]) -> None:
    report = to_json(violations.build(make_source(), query()))
    by_project = {row["project"]: row["total"] for row in report["sections"]["by_project"]["rows"]}
    by_day = {row["day"]: row["total"] for row in report["sections"]["by_day"]["rows"]}
    detail = {(r["project"], r["reason"]): r["total"] for r in report["sections"]["detail"]["rows"]}
    assert by_project == {None: 2, "alpha": 2, "beta": 1}  # an unknown key belongs to no project
    assert by_day == {"2026-11-02": 5}
    assert detail == {
        (None, "invalid_api_key"): 2,
        ("alpha", "model_not_allowed"): 1,
        ("alpha", "permission_denied"): 1,
        ("beta", "rate_limit_exceeded"): 1,
    }


def test_examples_are_entries_that_record_that_reason(make_source: Callable[..., Source]) -> None:
    source = make_source()
    report = to_json(violations.build(source, query()))
    with source.engine.connect() as connection:
        entries = {row.seq: json.loads(row.entry) for row in connection.execute(select(tables.audit_entries))}
    for row in report["sections"]["by_reason"]["rows"]:
        assert 1 <= len(row["examples"]) <= 3
        assert all(entries[seq]["reason"] == row["reason"] for seq in row["examples"])
        assert all(entries[seq]["action"] == "request.refused" for seq in row["examples"])


def test_a_project_scope_hides_other_projects_and_keyless_requests(make_source: Callable[..., Source]) -> None:
    report = to_json(violations.build(make_source(), query(project="alpha")))
    reasons = {row["reason"] for row in report["sections"]["by_reason"]["rows"]}
    assert reasons == {"model_not_allowed", "permission_denied"}
    assert report["summary"]["total"] == 2


def test_a_period_without_refusals_is_empty(make_source: Callable[..., Source]) -> None:
    report = to_json(violations.build(make_source(), query(since="2026-11-03")))
    assert report["summary"]["total"] == 0
    assert all(section["rows"] == [] for section in report["sections"].values())
