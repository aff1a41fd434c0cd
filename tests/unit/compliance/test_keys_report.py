"""The key inventory: effective status, age and rotation due, as of a frozen now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from tests.unit.compliance.activity import query

from bastion.compliance import keys
from bastion.compliance.render import to_json
from bastion.identity.keys import KeyRecord

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.compliance.activity import Activity

    from bastion.compliance.source import Source

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# label -> (effective status, rotation due) at NOW; alpha's keys.max_age is 30d, keys were made 2026-11-01 09:00.
EXPECTED = {
    "bob": ("active", True),  # reaches alpha's maximum age on 2026-12-01, within 7 days
    "ann": ("active", True),
    "cat": ("active", True),
    "lee": ("active", True),
    "bota": ("active", True),
    "beta": ("active", False),  # beta has no maximum age and the key no expiry
    "dan": ("rotating", True),  # rotated on 2026-11-03 with a 28-day overlap: expires 2026-12-01
    "dan2": ("active", False),
    "botb": ("active", False),
    "old": ("revoked", False),  # a revoked key is never due
    "soon": ("active", True),  # expires 2026-11-30
    "short": ("expired", False),  # expired 2026-11-02
}


def test_every_key_has_its_effective_status_and_due_flag(
    make_source: Callable[..., Source], activity: Activity
) -> None:
    report = to_json(keys.build(make_source(), query()))
    rows = {row["id"]: row for row in report["sections"]["keys"]["rows"]}
    labels = {activity.ids[label]: label for label in EXPECTED}
    assert {labels[i]: (row["status"], row["rotation_due"]) for i, row in rows.items()} == EXPECTED
    assert rows[activity.ids["soon"]]["due_reason"] == "expires at 2026-11-30T09:00:00Z"
    assert rows[activity.ids["bob"]]["due_reason"] == "reaches the project's maximum age at 2026-12-01T09:00:00Z"
    assert rows[activity.ids["bob"]]["age_days"] == 25 and rows[activity.ids["dan2"]]["age_days"] == 22
    assert rows[activity.ids["bob"]]["holder"] == f"member:{activity.ids['bob@acme.com']}"
    assert rows[activity.ids["beta"]]["holder"] == "project:beta"
    assert rows[activity.ids["bob"]]["last_used"] is not None and rows[activity.ids["ann"]]["last_used"] is None
    summary = report["summary"]
    assert (summary["keys"], summary["active"], summary["rotating"], summary["expired"], summary["revoked"]) == (
        12,
        9,
        1,
        1,
        1,
    )
    assert summary["rotation_due"] == 7


def test_a_project_scope_lists_only_its_keys(make_source: Callable[..., Source], activity: Activity) -> None:
    report = to_json(keys.build(make_source(), query(project="beta")))
    assert {row["project"] for row in report["sections"]["keys"]["rows"]} == {"beta"}
    assert len(report["sections"]["keys"]["rows"]) == 6


def test_the_inventory_shows_prefixes_never_secrets_or_hashes(
    make_source: Callable[..., Source], activity: Activity
) -> None:
    source = make_source()
    text = str(to_json(keys.build(source, query())))
    for plaintext in activity.keys.values():
        assert plaintext not in text and plaintext[:12] in text
    assert all(record.hash not in text for record in source.keys.list_keys())


def record(created: datetime, expires: datetime | None = None, status: str = "active") -> KeyRecord:
    return KeyRecord("key_1", "p", "project", None, "k", "bst_12345678", "h", status, created, expires, None)


@pytest.mark.parametrize(
    ("key", "max_age", "reason"),
    [
        (record(NOW - timedelta(days=1), NOW + timedelta(days=7)), None, "expires at 2026-12-03T12:00:00Z"),
        (record(NOW - timedelta(days=1), NOW + timedelta(days=8)), None, None),
        (
            record(NOW - timedelta(days=24)),
            timedelta(days=30),
            "reaches the project's maximum age at 2026-12-02T12:00:00Z",
        ),
        (record(NOW - timedelta(days=22)), timedelta(days=30), None),
        (record(NOW - timedelta(days=60)), None, None),
        (record(NOW - timedelta(days=60), status="revoked"), timedelta(days=30), None),
        (
            record(NOW - timedelta(days=60), status="rotating"),
            timedelta(days=30),
            "reaches the project's maximum age at 2026-10-27T12:00:00Z",
        ),
    ],
)
def test_due_reason(key: KeyRecord, max_age: timedelta | None, reason: str | None) -> None:
    assert keys.due_reason(key, key.effective_status(NOW), max_age, NOW) == reason
