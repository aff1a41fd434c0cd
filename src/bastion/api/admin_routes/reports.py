"""The report route: ``GET /admin/v1/reports/{name}``, the CLI's compliance reports over HTTP, JSON or Markdown.

Organisation owners, admins and readers (``reports.read``) see the whole organisation and may narrow a
report with ``project``. A project's admins and readers (``project_reports.read``) see their key's
project only: naming another project is the same 404 as naming a missing one. Erasure is not offered
here; it is an operator's confirmed step on the CLI (``bastion report dsr --erase --yes``).

FastAPI reads these handlers' signatures at runtime, so this module does not postpone annotations.
"""

from typing import Annotated

from fastapi import Query as Param
from fastapi import Response

from bastion.api.admin_routes import scope
from bastion.api.admin_routes.caller import Admin, AdminDep
from bastion.api.admin_routes.route import Route
from bastion.compliance import registry
from bastion.compliance.render import FORMATS
from bastion.compliance.report import Query, period
from bastion.compliance.source import Source
from bastion.errors import InvalidParameter, Unavailable
from bastion.identity import rbac


def _project(admin: Admin, project: str | None) -> str | None:
    """The project the report covers: any (or all) for organisation readers, the key's own for the others."""
    if rbac.allows(admin.principal, "reports.read"):
        return project
    if project is not None:
        scope.project(admin, project)
    admin.authorize("project_reports.read")
    return admin.project


def _source(admin: Admin) -> Source:
    source = admin.control.reports
    if source is None:
        raise Unavailable("Reports are not available on this gateway; run 'bastion report' on its host instead.")
    return source


def get_report(
    name: str,
    admin: AdminDep,
    output: Annotated[str, Param(alias="format", description="json or markdown.")] = "json",
    since: Annotated[str | None, Param(description="First day covered (2026-11-01) or a UTC time.")] = None,
    until: Annotated[str | None, Param(description="Last day covered (the whole day) or a UTC time.")] = None,
    project: Annotated[str | None, Param(description="Only this project (organisation readers).")] = None,
    subject: Annotated[str | None, Param(description="dsr: the person's email address.")] = None,
) -> Response:
    """A compliance report: usage, violations, keys, access, soc2 or dsr (with ``subject``)."""
    registry.kind(name)
    covered = _project(admin, project)
    if output not in FORMATS:
        raise InvalidParameter(f"format: '{output}' is not a format; use {' or '.join(FORMATS)}.", param="format")
    if subject is not None and name != "dsr":
        raise InvalidParameter("subject applies to the dsr report only.", param="subject")
    source = _source(admin)
    built = registry.build(name, source, Query(period(since, until, source.now()), covered, subject))
    form = FORMATS[output]
    return Response(form.render(built), media_type=form.media_type)


ROUTES = (Route("GET", "/reports/{name}", get_report, tag="reports"),)
