"""Every report in both forms: Markdown with its headings and tables, JSON that is stable, and neither
carrying prompt content, keys, key hashes or other people's addresses."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from tests.unit.compliance.activity import MEMBERS, SECRET_WORDS, query

from bastion.compliance import registry
from bastion.compliance.render import FORMATS, cell, json_text, markdown, table
from bastion.compliance.report import Fact, Period, Report, Section

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.compliance.activity import Activity

    from bastion.compliance.source import Source

ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
HEADINGS = {
    "usage": ["Summary", "By project", "By principal", "By model", "By day", "By day, project, principal and model"],
    "violations": ["Summary", "By reason", "By project", "By day", "By day, project and reason"],
    "keys": ["Summary", "Keys"],
    "access": [
        "Summary",
        "Members",
        "Roles in projects",
        "Service accounts",
        "Projects",
        "Permission matrix (admin API)",
    ],
    "soc2": [
        "Summary",
        "Controls",
        "CC6.1 Logical access security",
        "CC6.2 Registration and removal of users",
        "CC6.3 Role changes and least privilege",
        "CC7.2 Monitoring of the system",
        "CC8.1 Change management",
        "CC9.1 Vendor and business-partner risk",
    ],
    "dsr": ["Summary", "Audit entries linked to the subject", "Records held on the subject"],
    "vendors": ["Summary", "Attestations", "Providers"],
}


def build(source: Source, name: str) -> Report:
    return registry.build(name, source, query(subject="bob@acme.com" if name == "dsr" else None))


def test_every_report_has_a_heading_list() -> None:
    assert set(HEADINGS) == set(registry.REPORTS)


@pytest.mark.parametrize("name", list(registry.REPORTS))
def test_markdown_has_the_header_the_headings_and_tables(make_source: Callable[..., Source], name: str) -> None:
    report = build(make_source(), name)
    text = markdown(report)
    lines = text.splitlines()
    assert lines[0] == f"# {report.title}"
    assert "- Generated: 2026-11-26T12:00:00Z" in lines
    assert "- Period: the start of the log to 2026-11-26T12:00:00Z (end excluded)" in lines
    assert [line[3:] for line in lines if line.startswith("## ")] == HEADINGS[name]
    cites = name in ("usage", "violations", "soc2", "dsr")
    assert any(line.startswith("- Audit log: ") for line in lines) is cites
    for section in report.sections:
        if section.rows:
            header = "| " + " | ".join(section.columns) + " |"
            index = lines.index(header)
            assert lines[index + 1].count("|") == len(section.columns) + 1
            assert len([ln for ln in lines[index + 2 :] if ln.startswith("| ")][: len(section.rows)]) == len(
                section.rows
            )


@pytest.mark.parametrize("name", list(registry.REPORTS))
def test_json_is_stable_and_complete(make_source: Callable[..., Source], name: str) -> None:
    source = make_source()
    first, second = json_text(build(source, name)), json_text(build(source, name))
    assert first == second
    data = json.loads(first)
    assert list(data) == ["report", "title", "generated_at", "period", "project", "log", "summary", "sections"]
    assert (data["report"], data["generated_at"], data["period"]) == (
        name,
        "2026-11-26T12:00:00Z",
        {"since": None, "until": "2026-11-26T12:00:00Z"},
    )
    for section in data["sections"].values():
        assert all(list(row) == section["columns"] for row in section["rows"])


@pytest.mark.parametrize("name", list(registry.REPORTS))
@pytest.mark.parametrize("form", list(FORMATS))
def test_no_report_carries_content_keys_or_other_peoples_addresses(
    make_source: Callable[..., Source], activity: Activity, name: str, form: str
) -> None:
    source = make_source()
    text = FORMATS[form].render(build(source, name))
    assert SECRET_WORDS not in text and "merger" not in text
    assert not any(key in text for key in activity.keys.values())
    assert not any(record.hash in text for record in source.keys.list_keys())
    allowed = {"access": set(MEMBERS), "dsr": {"bob@acme.com"}}.get(name, set())
    assert set(ADDRESS.findall(text)) == allowed  # only the directory (access) and the subject (dsr) name anyone


def test_cells_and_tables() -> None:
    assert [cell(v) for v in (None, "", (), True, ("a", "b"), {"rpm": 5}, "a|b", 3)] == [
        "-",
        "-",
        "-",
        "yes",
        "a, b",
        "rpm=5",
        "a\\|b",
        "3",
    ]
    assert table(("name", "count"), [("x", 1), ("y", 22)]) == [
        "| name | count |",
        "|---|---:|",
        "| x | 1 |",
        "| y | 22 |",
    ]


def test_an_empty_section_says_so() -> None:
    when = datetime(2026, 11, 26, tzinfo=UTC)
    empty = Section.of("rows", "Rows", Fact, [])
    report = Report("x", "X", when, Period(None, when), "alpha", None, (), (empty,))
    assert "## Rows\n\n_None in this period and scope._\n" in markdown(report)
    assert "- Project: alpha" in markdown(report)
    assert json.loads(json_text(report))["sections"] == {
        "rows": {"title": "Rows", "columns": ["item", "value"], "rows": [], "notes": []}
    }
