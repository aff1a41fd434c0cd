"""Repository for projects and API keys: plain SQL through SQLAlchemy Core, no business rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, RowMapping, select

from bastion.store import changes, tables

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

_KEY_COLUMNS = (*tables.api_keys.c, tables.projects.c.name.label("project"))


def sync_projects(connection: Connection, projects: Iterable[tuple[str, str]], now: datetime) -> None:
    """Create the projects ``(name, environment)`` that are missing and update the environment of the rest."""
    existing = {row.name: row for row in connection.execute(select(tables.projects))}
    for name, environment in projects:
        row = existing.get(name)
        if row is None:
            connection.execute(tables.projects.insert().values(name=name, environment=environment, created_at=now))
        elif row.environment != environment:
            connection.execute(
                tables.projects.update().where(tables.projects.c.id == row.id).values(environment=environment)
            )


def project_id(connection: Connection, name: str) -> int | None:
    return connection.execute(select(tables.projects.c.id).where(tables.projects.c.name == name)).scalar_one_or_none()


def insert_key(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(tables.api_keys.insert().values(**values))
    changes.bump(connection, "keys")


def _joined() -> Any:
    return select(*_KEY_COLUMNS).join(tables.projects, tables.projects.c.id == tables.api_keys.c.project_id)


def key_by_hash(connection: Connection, digest: str) -> RowMapping | None:
    return connection.execute(_joined().where(tables.api_keys.c.hash == digest)).mappings().one_or_none()


def key_by_id(connection: Connection, key_id: str) -> RowMapping | None:
    return connection.execute(_joined().where(tables.api_keys.c.id == key_id)).mappings().one_or_none()


def list_keys(connection: Connection, project: str | None = None) -> list[RowMapping]:
    query = _joined().order_by(tables.api_keys.c.created_at, tables.api_keys.c.id)
    if project is not None:
        query = query.where(tables.projects.c.name == project)
    return list(connection.execute(query).mappings())


def set_status(connection: Connection, key_id: str, status: str, **values: Any) -> bool:
    updated = connection.execute(
        tables.api_keys.update().where(tables.api_keys.c.id == key_id).values(status=status, **values)
    )
    changes.bump(connection, "keys")
    return updated.rowcount > 0
