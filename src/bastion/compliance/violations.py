"""The violations report: requests Bastion refused or that failed, by reason, project and day.

Counted from ``request.refused`` (Bastion said no: bad key, address, permission, model, limit, blocked
data) and ``request.failed`` (the upstream failed or refused) entries. Each reason cites the sequence
numbers of its first few entries, so that an auditor can fetch them with an inclusion proof; no
report ever shows what a request contained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bastion.compliance.report import EXAMPLES, Fact, Section
from bastion.compliance.source import finish

if TYPE_CHECKING:
    from bastion.compliance.report import Query, Report
    from bastion.compliance.source import Entry, Source

ACTIONS = {"request.refused": "refused", "request.failed": "failed"}
GROUPS: dict[str, tuple[str, ...]] = {
    "by_reason": ("reason",),
    "by_project": ("project",),
    "by_day": ("day",),
    "detail": ("day", "project", "reason"),
}
TITLES = {
    "by_reason": "By reason",
    "by_project": "By project",
    "by_day": "By day",
    "detail": "By day, project and reason",
}
COUNTS = ("refused", "failed", "total")
NOTES = {
    "by_project": (
        "Requests without a valid key belong to no project ('-'); only organisation-wide reports show them.",
    ),
}


@dataclass(frozen=True)
class Violation:
    """Refused and failed requests of one group, with the first entries that record them."""

    day: str | None = None
    project: str | None = None
    reason: str | None = None
    refused: int = 0
    failed: int = 0
    total: int = 0
    examples: tuple[int, ...] = ()


@dataclass
class _Tally:
    refused: int = 0
    failed: int = 0
    examples: list[int] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        if ACTIONS[entry.action] == "refused":
            self.refused += 1
        else:
            self.failed += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(entry.seq)


def _keys(entry: Entry) -> dict[str, str | None]:
    return {"day": entry.day, "project": entry.project, "reason": entry.fields.get("reason") or "unknown"}


def _rows(keys: tuple[str, ...], tallies: dict[tuple[str | None, ...], _Tally]) -> list[Violation]:
    ordered = sorted(tallies.items(), key=lambda item: tuple(value or "" for value in item[0]))
    return [
        Violation(
            **dict(zip(keys, key, strict=True)),
            refused=t.refused,
            failed=t.failed,
            total=t.refused + t.failed,
            examples=tuple(t.examples),
        )
        for key, t in ordered
    ]


def _sections(tallies: dict[str, dict[tuple[str | None, ...], _Tally]]) -> list[Section]:
    return [
        Section.of(
            name,
            TITLES[name],
            Violation,
            _rows(columns, tallies[name]),
            (*columns, *COUNTS, "examples"),
            NOTES.get(name, ()),
        )
        for name, columns in GROUPS.items()
    ]


def build(source: Source, query: Query) -> Report:
    """Tally every refusal and failure in the period and scope by reason, project and day."""
    tallies: dict[str, dict[tuple[str | None, ...], _Tally]] = {name: {} for name in GROUPS}
    overall = _Tally()
    for entry in source.entries(query, ACTIONS):
        keys = _keys(entry)
        for name, columns in GROUPS.items():
            tallies[name].setdefault(tuple(keys[c] for c in columns), _Tally()).add(entry)
        overall.add(entry)
    summary = [
        Fact("refused", overall.refused),
        Fact("failed", overall.failed),
        Fact("total", overall.refused + overall.failed),
        Fact("reasons", len(tallies["by_reason"])),
    ]
    return finish(source, query, "violations", "Refused and failed requests", summary, _sections(tallies))
