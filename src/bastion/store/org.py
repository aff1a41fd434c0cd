"""Repository for the organisation: projects, members and memberships, service accounts, invites, events.

Plain queries through SQLAlchemy Core; rows become the frozen models of ``identity.model``. Every
write also bumps the ``org`` revision so that every gateway process drops its caller cache.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bastion.config import DataPolicyConfig
from bastion.identity.model import Invite, Member, Project, ServiceAccount, limits_from
from bastion.policy.data import DataPolicy
from bastion.store import changes, tables

if TYPE_CHECKING:
    from sqlalchemy import Connection, Table

REVISION = "org"


def _seconds(value: int | None) -> timedelta | None:
    return timedelta(seconds=value) if value else None


def project_from(row: Any) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        environment=row.environment,
        models=tuple(row.models) if row.models is not None else None,
        limits=limits_from(row.limits),
        key_limits=limits_from(row.key_limits),
        key_max_age=_seconds(row.key_max_age),
        key_over_age=row.key_over_age,
        created_at=row.created_at,
        residency=tuple(row.residency) if row.residency is not None else None,
        data_policy=DataPolicy.of(DataPolicyConfig.model_validate(row.data_policy or {})),
    )


def insert(connection: Connection, table: Table, values: dict[str, Any]) -> None:
    connection.execute(table.insert().values(**values))
    changes.bump(connection, REVISION)


def update(connection: Connection, table: Table, key: tuple[str, Any], values: dict[str, Any]) -> None:
    column, value = key
    connection.execute(table.update().where(table.c[column] == value).values(**values))
    changes.bump(connection, REVISION)


# Projects


def projects(connection: Connection) -> list[Project]:
    query = select(tables.projects).where(tables.projects.c.deleted_at.is_(None)).order_by(tables.projects.c.name)
    return [project_from(row) for row in connection.execute(query)]


def project(connection: Connection, name: str) -> Project | None:
    p = tables.projects
    row = connection.execute(select(p).where(p.c.name == name, p.c.deleted_at.is_(None))).one_or_none()
    return project_from(row) if row else None


def project_by_id(connection: Connection, project_id: int) -> Project | None:
    p = tables.projects
    row = connection.execute(select(p).where(p.c.id == project_id, p.c.deleted_at.is_(None))).one_or_none()
    return project_from(row) if row else None


def undelete_or_insert_project(connection: Connection, values: dict[str, Any]) -> None:
    """A project name that was deleted before comes back as the same row (its keys stay revoked)."""
    p = tables.projects
    old = connection.execute(select(p.c.id).where(p.c.name == values["name"])).scalar_one_or_none()
    if old is None:
        insert(connection, p, values)
    else:
        update(connection, p, ("id", old), {**values, "deleted_at": None})


# Members


def _memberships(connection: Connection, member_ids: list[str]) -> dict[str, dict[str, str]]:
    pm, p = tables.project_members, tables.projects
    query = (
        select(pm.c.member_id, p.c.name, pm.c.role)
        .join(p, p.c.id == pm.c.project_id)
        .where(pm.c.member_id.in_(member_ids), p.c.deleted_at.is_(None))
    )
    found: dict[str, dict[str, str]] = {member_id: {} for member_id in member_ids}
    for member_id, name, role in connection.execute(query):
        found[member_id][name] = role
    return found


def members(connection: Connection, where: Any = None) -> list[Member]:
    m = tables.members
    query = select(m).where(m.c.removed_at.is_(None)).order_by(m.c.email)
    if where is not None:
        query = query.where(where)
    rows = list(connection.execute(query))
    projects_of = _memberships(connection, [row.id for row in rows])
    return [
        Member(
            id=row.id,
            email=row.email,
            role=row.role,
            projects=projects_of[row.id],
            ip_allowlist=tuple(row.ip_allowlist),
            limits=limits_from(row.limits),
            created_at=row.created_at,
        )
        for row in rows
    ]


def member(connection: Connection, email: str) -> Member | None:
    found = members(connection, tables.members.c.email == email.lower())
    return found[0] if found else None


def member_by_id(connection: Connection, member_id: str) -> Member | None:
    found = members(connection, tables.members.c.id == member_id)
    return found[0] if found else None


def set_memberships(connection: Connection, member_id: str, roles: dict[str, str]) -> None:
    """Make the member's project memberships exactly ``roles`` (project name -> project role)."""
    pm = tables.project_members
    connection.execute(pm.delete().where(pm.c.member_id == member_id))
    for name, role in roles.items():
        found = project(connection, name)
        if found is not None:
            connection.execute(pm.insert().values(project_id=found.id, member_id=member_id, role=role))
    changes.bump(connection, REVISION)


# Service accounts


def service_accounts(connection: Connection, where: Any = None) -> list[ServiceAccount]:
    s, p = tables.service_accounts, tables.projects
    query = (
        select(s, p.c.name.label("project"))
        .join(p, p.c.id == s.c.project_id)
        .where(s.c.removed_at.is_(None))
        .order_by(s.c.name)
    )
    if where is not None:
        query = query.where(where)
    return [
        ServiceAccount(
            id=row.id,
            name=row.name,
            project=row.project,
            permissions=tuple(row.permissions),
            ip_allowlist=tuple(row.ip_allowlist),
            limits=limits_from(row.limits),
            key_ttl=_seconds(row.key_ttl),
            created_at=row.created_at,
        )
        for row in connection.execute(query)
    ]


def service_account(connection: Connection, name: str) -> ServiceAccount | None:
    found = service_accounts(connection, tables.service_accounts.c.name == name)
    return found[0] if found else None


def service_account_by_id(connection: Connection, account_id: str) -> ServiceAccount | None:
    found = service_accounts(connection, tables.service_accounts.c.id == account_id)
    return found[0] if found else None


# Invites


def invites(connection: Connection, where: Any = None) -> list[Invite]:
    i = tables.invites
    query = select(i).order_by(i.c.created_at)
    if where is not None:
        query = query.where(where)
    return [
        Invite(
            id=row.id,
            email=row.email,
            role=row.role,
            projects=dict(row.projects),
            created_by=row.created_by,
            created_at=row.created_at,
            expires_at=row.expires_at,
            accepted_at=row.accepted_at,
            revoked_at=row.revoked_at,
        )
        for row in connection.execute(query)
    ]


# Admin events


def record_event(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(tables.admin_events.insert().values(**values))


def events(connection: Connection, project: str | None, limit: int, before: int | None) -> list[dict[str, Any]]:
    e = tables.admin_events
    query = select(e).order_by(e.c.id.desc()).limit(limit)
    if project is not None:
        query = query.where(e.c.project == project)
    if before is not None:
        query = query.where(e.c.id < before)
    return [dict(row) for row in connection.execute(query).mappings()]


def touch_keys(connection: Connection, used: dict[str, datetime]) -> None:
    """Record when keys were last used (batched; not a change any cache depends on)."""
    k = tables.api_keys
    for key_id, at in used.items():
        connection.execute(k.update().where(k.c.id == key_id).values(last_used_at=at))
