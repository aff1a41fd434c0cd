"""The table of reports: a name, what the report answers, and the function that builds it.

The CLI (``bastion report NAME``) and the admin API (``GET /admin/v1/reports/NAME``) both look reports
up here and nowhere else, so a new report is one module and one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.compliance import access, dsr, keys, soc2, usage, vendors, violations
from bastion.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.compliance.report import Query, Report
    from bastion.compliance.source import Source


@dataclass(frozen=True)
class Kind:
    """One report: how to build it and the question it answers (for --help and errors)."""

    build: Callable[[Source, Query], Report]
    about: str


REPORTS: dict[str, Kind] = {
    "usage": Kind(usage.build, "requests and tokens by project, principal, model and day, for chargeback"),
    "violations": Kind(violations.build, "refused and failed requests by reason, project and day"),
    "keys": Kind(keys.build, "key inventory: holder, status, age, rotation due, last use"),
    "access": Kind(access.build, "who can do what: members, roles, service accounts, allowlists, projects"),
    "soc2": Kind(soc2.build, "SOC 2 evidence for CC6.1, CC6.2, CC6.3, CC7.2, CC8.1 and CC9.1"),
    "dsr": Kind(dsr.build, "GDPR data-subject report for --subject (and its erasure with --erase)"),
    "vendors": Kind(vendors.build, "vendor attestations with expiry and evidence, and the providers behind each"),
}


def kind(name: str) -> Kind:
    """The report called ``name``, or a 404 that lists the reports there are."""
    found = REPORTS.get(name)
    if found is None:
        raise NotFound(f"There is no report named '{name}'; the reports are {', '.join(REPORTS)}.")
    return found


def build(name: str, source: Source, query: Query) -> Report:
    """Build the report ``name`` for ``query``, checking the project it names first."""
    found = kind(name)
    if query.project is not None:
        source.check_project(query.project)
    return found.build(source, query)
