"""The period every report covers, from the --since and --until options (or the API's since and until)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bastion.compliance import registry
from bastion.compliance.report import period
from bastion.errors import InvalidParameter, NotFound

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (None, None, (None, NOW)),
        ("2026-11-01", None, (at(1), NOW)),
        ("2026-11-01", "2026-11-01", (at(1), at(2))),  # a day for --until includes that whole day
        ("2026-11-01T09:00:00Z", "2026-11-02T18:00:00+02:00", (at(1, 9), at(2, 16))),
        (None, "2026-11-30", (None, at(1, 0, 12))),
    ],
)
def test_periods(since: str | None, until: str | None, expected: tuple[datetime | None, datetime]) -> None:
    found = period(since, until, NOW)
    assert (found.since, found.until) == expected


@pytest.mark.parametrize(
    ("since", "until", "param", "message"),
    [
        ("2026-13-01", None, "since", r"is not a date \(2026-11-01\) or a time"),
        ("yesterday", None, "since", "is not a date"),
        (None, "2026-11-01T09:00:00", "until", "has no time zone; end it with Z"),
        ("2026-11-02", "2026-11-01", "since", "must come before until"),
    ],
)
def test_bad_periods_name_the_option(since: str | None, until: str | None, param: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message) as refused:
        period(since, until, NOW)
    assert refused.value.param == param and refused.value.status == 400


def test_an_unknown_report_lists_the_reports() -> None:
    with pytest.raises(NotFound, match="usage, violations, keys, access, soc2, dsr"):
        registry.kind("chargeback")
