"""The usage report, for chargeback: requests and tokens by project, principal, model and day.

Counted from ``request.completed`` entries (one per answered model call; listing models is free and not
counted). Tokens are the upstream's own ``usage``; a completion without one (a stream the client did
not ask usage for) counts as a request and as ``unmetered``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bastion.compliance.report import Fact, Section
from bastion.compliance.source import finish

if TYPE_CHECKING:
    from bastion.compliance.report import Query, Report
    from bastion.compliance.source import Entry, Source

TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens")
GROUPS: dict[str, tuple[str, ...]] = {
    "by_project": ("project",),
    "by_principal": ("project", "principal"),
    "by_model": ("model",),
    "by_day": ("day",),
    "detail": ("day", "project", "principal", "model"),
}
TITLES = {
    "by_project": "By project",
    "by_principal": "By principal",
    "by_model": "By model",
    "by_day": "By day",
    "detail": "By day, project, principal and model",
}
COUNTS = ("requests", *TOKENS, "unmetered")
NOTES = {
    "by_principal": (
        "A principal is member:<member id>, service_account:<name> or project:<name> (a project key); "
        "never an address.",
    ),
}


@dataclass(frozen=True)
class Usage:
    """Requests and tokens of one group; the columns a group is not keyed by stay None."""

    day: str | None = None
    project: str | None = None
    principal: str | None = None
    model: str | None = None
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    unmetered: int = 0


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))

    def add(self, tokens: dict[str, Any] | None) -> None:
        self.counts["requests"] += 1
        if not tokens:
            self.counts["unmetered"] += 1
            return
        for name in TOKENS:
            value = tokens.get(name)
            self.counts[name] += value if isinstance(value, int) else 0


def _keys(entry: Entry) -> dict[str, str | None]:
    return {"day": entry.day, "project": entry.project, "principal": entry.actor, "model": entry.fields.get("model")}


def _rows(keys: tuple[str, ...], tallies: dict[tuple[str | None, ...], _Tally]) -> list[Usage]:
    ordered = sorted(tallies.items(), key=lambda item: tuple(value or "" for value in item[0]))
    return [Usage(**_fields(keys, key, tally)) for key, tally in ordered]


def _fields(keys: tuple[str, ...], key: tuple[str | None, ...], tally: _Tally) -> dict[str, Any]:
    return {**dict(zip(keys, key, strict=True)), **tally.counts}


def build(source: Source, query: Query) -> Report:
    """Tally every completed model call in the period and scope, once per grouping and once overall."""
    tallies: dict[str, dict[tuple[str | None, ...], _Tally]] = {name: {} for name in GROUPS}
    overall, seqs = _Tally(), []
    for entry in source.entries(query, ("request.completed",)):
        if entry.fields.get("endpoint") == "models":
            continue
        keys, tokens = _keys(entry), entry.fields.get("tokens")
        for name, columns in GROUPS.items():
            tallies[name].setdefault(tuple(keys[c] for c in columns), _Tally()).add(tokens)
        overall.add(tokens)
        seqs.append(entry.seq)
    sections = tuple(
        Section.of(name, TITLES[name], Usage, _rows(columns, tallies[name]), columns + COUNTS, NOTES.get(name, ()))
        for name, columns in GROUPS.items()
    )
    summary = [Fact(name, value) for name, value in overall.counts.items()]
    summary.append(Fact("entries", f"seq {seqs[0]} to {seqs[-1]}" if seqs else None))
    return finish(source, query, "usage", "Usage and chargeback", summary, sections)
