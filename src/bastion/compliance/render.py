"""The two forms every report takes: JSON (for tools; stable key order and layout) and Markdown (for people).

Both are made from the same :class:`Report`, so they never disagree; ``FORMATS`` is the table the CLI
and the admin API dispatch through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bastion.compliance.report import stamp

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from bastion.compliance.report import LogReference, Report, Section


def plain(value: Any) -> Any:
    """A row value as JSON holds it: times as UTC strings, days as ISO dates, tuples as lists."""
    if isinstance(value, datetime):
        return stamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return value


def _log_json(log: LogReference | None) -> dict[str, Any] | None:
    if log is None:
        return None
    return {
        "source": log.source,
        "size": log.size,
        "root": log.root,
        "head_size": log.head_size,
        "signed_at": stamp(log.signed_at) if log.signed_at else None,
        "note": log.note,
    }


def to_json(report: Report) -> dict[str, Any]:
    """The report as one JSON object; sections keep their order and rows their columns' order."""
    return {
        "report": report.name,
        "title": report.title,
        "generated_at": stamp(report.generated_at),
        "period": report.period.to_json(),
        "project": report.project,
        "log": _log_json(report.log),
        "summary": {fact.item: plain(fact.value) for fact in report.summary},
        "sections": {
            section.key: {
                "title": section.title,
                "columns": list(section.columns),
                "rows": [plain(record) for record in section.records()],
                "notes": list(section.notes),
            }
            for section in report.sections
        },
    }


def json_text(report: Report) -> str:
    return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"


def cell(value: Any) -> str:
    """One value in a Markdown table: ``-`` for nothing, lists joined by commas, pipes escaped."""
    if value is None or value == "" or value == () or value == []:
        return "-"
    if isinstance(value, datetime):
        return stamp(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={cell(item)}" for key, item in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def _numeric(values: Sequence[Any]) -> bool:
    return bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table; columns that hold only numbers are right-aligned."""
    aligns = ["---:" if _numeric([row[i] for row in rows]) else "---" for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return lines


def _log_lines(log: LogReference | None) -> list[str]:
    if log is None:
        return []
    if log.source == "checkpoint":
        line = f"- Audit log: signed checkpoint of size {log.size}, root `{log.root}`"
        line += f", signed {stamp(log.signed_at)}" if log.signed_at else ""
    else:
        line = f"- Audit log: tree head of size {log.size}, root `{log.root}` (no checkpoint signed yet)"
    lines = [line]
    if log.head_size > log.size:
        lines.append(
            f"- {log.head_size - log.size} newer entries (seq {log.size} and above) are not covered by it yet; "
            "sign a checkpoint with `bastion audit checkpoint` to cover them."
        )
    if log.note:
        lines += ["", "```", log.note.rstrip("\n"), "```"]
    return lines


def _header(report: Report) -> list[str]:
    since = stamp(report.period.since) if report.period.since else "the start of the log"
    return [
        f"- Generated: {stamp(report.generated_at)}",
        f"- Period: {since} to {stamp(report.period.until)} (end excluded)",
        f"- Project: {report.project or 'all projects'}",
        *_log_lines(report.log),
    ]


def _section(section: Section) -> list[str]:
    lines = [f"## {section.title}", ""]
    if section.rows:
        lines += table(section.columns, [[getattr(row, c) for c in section.columns] for row in section.rows])
    else:
        lines.append("_None in this period and scope._")
    if section.notes:
        lines += ["", *(f"- {note}" for note in section.notes)]
    return [*lines, ""]


def markdown(report: Report) -> str:
    """The report as a Markdown document: title, header list, summary table, one table per section."""
    lines = [f"# {report.title}", "", *_header(report), ""]
    if report.summary:
        lines += ["## Summary", "", *table(("item", "value"), [(f.item, f.value) for f in report.summary]), ""]
    for section in report.sections:
        lines += _section(section)
    return "\n".join(lines).rstrip("\n") + "\n"


@dataclass(frozen=True)
class Format:
    """One output form: how to render a report and the media type the admin API answers with."""

    render: Callable[[Report], str]
    media_type: str


FORMATS: dict[str, Format] = {
    "json": Format(json_text, "application/json"),
    "markdown": Format(markdown, "text/markdown; charset=utf-8"),
}
