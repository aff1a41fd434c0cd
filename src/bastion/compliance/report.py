"""What every report is made of: a header (when, which period, which log state it cites) and sections of
rows, each row a frozen dataclass, which ``render.py`` turns into JSON or Markdown.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bastion.errors import InvalidParameter

if TYPE_CHECKING:
    from collections.abc import Iterable

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
EXAMPLES = 3  # entry sequence numbers cited per group: enough to look up, never the whole log


def stamp(value: datetime) -> str:
    """A UTC time as every report prints it: ``2026-11-01T00:00:00Z``."""
    return value.astimezone(UTC).strftime(TIME_FORMAT)


@dataclass(frozen=True)
class Period:
    """The span a report covers: ``since`` (inclusive, None for the log's beginning) to ``until`` (exclusive)."""

    since: datetime | None
    until: datetime

    def to_json(self) -> dict[str, str | None]:
        return {"since": stamp(self.since) if self.since else None, "until": stamp(self.until)}


def _instant(param: str, text: str, *, end: bool) -> datetime:
    """A date (the whole UTC day: its start, or with ``end`` the next day's start) or an ISO time."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidParameter(
            f"{param}: '{text}' is not a date (2026-11-01) or a time with its zone (2026-11-01T09:30:00Z).",
            param=param,
        ) from exc
    if when.tzinfo is None:
        raise InvalidParameter(f"{param}: '{text}' has no time zone; end it with Z for UTC.", param=param)
    return when.astimezone(UTC)


def period(since: str | None, until: str | None, now: datetime) -> Period:
    """The period from the ``since`` and ``until`` options; a date for ``until`` includes that whole day."""
    start = _instant("since", since, end=False) if since else None
    end = _instant("until", until, end=True) if until else now
    if start is not None and start >= end:
        raise InvalidParameter(f"since ({stamp(start)}) must come before until ({stamp(end)}).", param="since")
    return Period(start, end)


@dataclass(frozen=True)
class Query:
    """What the caller asks for: the period, one project or all (None), and the subject of a DSR."""

    period: Period
    project: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class LogReference:
    """The log state that cited entries can be proved against: the latest signed checkpoint, else the head."""

    source: str  # "checkpoint" | "head"
    size: int
    root: str  # hex
    head_size: int  # entries at or after ``size`` are newer than the reference
    signed_at: datetime | None = None
    note: str | None = None  # the signed note itself, to verify offline


@dataclass(frozen=True)
class Fact:
    """One line of a summary: a label and its value."""

    item: str
    value: Any


@dataclass(frozen=True)
class Section:
    """One table of a report; ``columns`` picks which of the row type's fields it shows."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[Any, ...] = ()
    notes: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        key: str,
        title: str,
        row_type: type,
        rows: Iterable[object],
        columns: tuple[str, ...] = (),
        notes: tuple[str, ...] = (),
    ) -> Section:
        """A section of ``rows`` of ``row_type`` (a frozen dataclass), showing ``columns`` (default: every field)."""
        shown = columns or tuple(f.name for f in dataclasses.fields(row_type))
        return cls(key, title, shown, tuple(rows), notes)

    def records(self) -> list[dict[str, Any]]:
        """The rows as mappings of the shown columns."""
        return [{column: getattr(row, column) for column in self.columns} for row in self.rows]


@dataclass(frozen=True)
class Report:
    """A finished report, ready to render."""

    name: str
    title: str
    generated_at: datetime
    period: Period
    project: str | None
    log: LogReference | None
    summary: tuple[Fact, ...]
    sections: tuple[Section, ...]
