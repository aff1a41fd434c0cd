"""The access report: who can do what, as the store holds it and the permission matrix decides it.

Members with their organisation role and the admin actions it allows; every member's role in every
project with the API permissions and project actions it gives; service accounts with their
permissions, address allowlists and limits; projects with their model allowlists and limits; and the
matrix itself. Admin actions are computed with ``identity/rbac.py``, the code the admin API enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.compliance.report import Fact, Section
from bastion.compliance.source import finish
from bastion.durations import format_duration
from bastion.identity import rbac
from bastion.identity.model import ROLE_PERMISSIONS, Member, Principal, limits_json

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from bastion.compliance.report import Query, Report
    from bastion.compliance.source import Source
    from bastion.identity.model import Project, ServiceAccount
    from bastion.policy.limits import Limits


ALL_MODELS = "A project without a model allowlist ('-', null in JSON) may use every model the gateway serves."


@dataclass(frozen=True)
class MemberRow:
    email: str
    role: str
    projects: tuple[str, ...]  # project=role
    admin_actions: tuple[str, ...]  # organisation-level actions the role allows
    ip_allowlist: tuple[str, ...]
    limits: tuple[str, ...]
    created: datetime


@dataclass(frozen=True)
class ProjectRoleRow:
    project: str
    member: str
    role: str  # the role that decides: owners and admins are admin everywhere, an org reader never more than reader
    api_permissions: tuple[str, ...]
    admin_actions: tuple[str, ...]


@dataclass(frozen=True)
class AccountRow:
    name: str
    project: str
    permissions: tuple[str, ...]
    ip_allowlist: tuple[str, ...]
    limits: tuple[str, ...]
    key_ttl: str | None
    usable_keys: int


@dataclass(frozen=True)
class ProjectRow:
    name: str
    environment: str
    models: tuple[str, ...] | None  # None: every model the gateway serves
    limits: tuple[str, ...]
    key_limits: tuple[str, ...]
    key_max_age: str | None
    key_over_age: str


@dataclass(frozen=True)
class MatrixRow:
    action: str
    level: str
    roles: tuple[str, ...]
    covers: str


def _limits(limits: Limits) -> tuple[str, ...]:
    return tuple(f"{name}={value}" for name, value in limits_json(limits).items())


def _span(value: timedelta | None) -> str | None:
    return format_duration(value) if value else None


def _principal(member: Member, project_role: str) -> Principal:
    return Principal("member", member.id, member.email, frozenset(), org_role=member.role, project_role=project_role)


def _actions(principal: Principal, level: rbac.Level) -> tuple[str, ...]:
    return tuple(a for a, rule in rbac.MATRIX.items() if rule.level == level and rbac.allows(principal, a))


def _member_row(member: Member, project: str | None) -> MemberRow:
    roles = {name: role for name, role in sorted(member.projects.items()) if project in (None, name)}
    # Organisation actions do not depend on the project role, only on holding one (the key's project).
    return MemberRow(
        email=member.email,
        role=member.role,
        projects=tuple(f"{name}={role}" for name, role in roles.items()),
        admin_actions=_actions(_principal(member, "reader"), "org"),
        ip_allowlist=member.ip_allowlist,
        limits=_limits(member.limits),
        created=member.created_at,
    )


def _role_row(project: str, member: Member, held: str) -> ProjectRoleRow:
    principal = _principal(member, held)
    return ProjectRoleRow(
        project,
        member.email,
        rbac.role_for(principal, "project") or held,
        tuple(sorted(ROLE_PERMISSIONS.get(held, frozenset()))),
        _actions(principal, "project"),
    )


def _project_roles(members: list[Member], projects: list[Project]) -> list[ProjectRoleRow]:
    return [
        _role_row(project.name, member, held)
        for project in projects
        for member in members
        if (held := member.project_role(project.name)) is not None
    ]


def _account_row(account: ServiceAccount, usable: int) -> AccountRow:
    return AccountRow(
        account.name,
        account.project,
        account.permissions,
        account.ip_allowlist,
        _limits(account.limits),
        _span(account.key_ttl),
        usable,
    )


def _project_row(project: Project) -> ProjectRow:
    return ProjectRow(
        project.name,
        project.environment,
        project.models,
        _limits(project.limits),
        _limits(project.key_limits),
        _span(project.key_max_age),
        project.key_over_age,
    )


def matrix_rows() -> list[MatrixRow]:
    return [MatrixRow(name, a.level, tuple(sorted(a.roles)), a.covers) for name, a in rbac.MATRIX.items()]


def _summary(members: list[Member], accounts: list[ServiceAccount], projects: list[Project]) -> list[Fact]:
    return [
        Fact("members", len(members)),
        Fact("owners_and_admins", sum(m.role in ("owner", "admin") for m in members)),
        Fact("members_with_ip_allowlist", sum(bool(m.ip_allowlist) for m in members)),
        Fact("service_accounts", len(accounts)),
        Fact("service_accounts_with_ip_allowlist", sum(bool(a.ip_allowlist) for a in accounts)),
        Fact("projects", len(projects)),
        Fact("projects_with_model_allowlist", sum(p.models is not None for p in projects)),
    ]


def build(source: Source, query: Query) -> Report:
    """Who can do what in the scope, as of now (the period does not apply)."""
    now = source.now()
    projects = [p for p in source.org.projects() if query.project in (None, p.name)]
    members = source.org.members(query.project)
    accounts = source.org.service_accounts(query.project)
    usable = [k for k in source.keys.list_keys(query.project) if k.effective_status(now) in ("active", "rotating")]
    held = {a.id: sum(k.principal_id == a.id for k in usable) for a in accounts}
    sections = [
        Section.of("members", "Members", MemberRow, [_member_row(m, query.project) for m in members]),
        Section.of("project_roles", "Roles in projects", ProjectRoleRow, _project_roles(members, projects)),
        Section.of("service_accounts", "Service accounts", AccountRow, [_account_row(a, held[a.id]) for a in accounts]),
        Section.of("projects", "Projects", ProjectRow, [_project_row(p) for p in projects], notes=(ALL_MODELS,)),
        Section.of("matrix", "Permission matrix (admin API)", MatrixRow, matrix_rows()),
    ]
    summary = _summary(members, accounts, projects)
    return finish(source, query, "access", "Access: who can do what", summary, sections, cites=False)
