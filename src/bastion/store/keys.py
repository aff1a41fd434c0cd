"""Repository for API keys: plain SQL through SQLAlchemy Core, no business rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bastion.store import changes, tables
from bastion.store.org import REVISION

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from sqlalchemy import ColumnElement, Connection, RowMapping

_KEY_COLUMNS = (*tables.api_keys.c, tables.projects.c.name.label("project"))


def sync_projects(connection: Connection, projects: Iterable[tuple[str, str]], now: datetime) -> None:
    """Create the projects ``(name, environment)`` that are missing (used by the demo and tests)."""
    existing = {row.name for row in connection.execute(select(tables.projects.c.name))}
    for name, environment in projects:
        if name not in existing:
            connection.execute(
                tables.projects.insert().values(
                    name=name,
                    environment=environment,
                    models=None,
                    limits={},
                    key_limits={},
                    key_max_age=None,
                    key_over_age="warn",
                    data_policy={},
                    created_at=now,
                )
            )
    changes.bump(connection, REVISION)


def insert_key(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(tables.api_keys.insert().values(**values))
    changes.bump(connection, REVISION)


def _joined() -> Any:
    return select(*_KEY_COLUMNS).join(tables.projects, tables.projects.c.id == tables.api_keys.c.project_id)


def key_by_hash(connection: Connection, digest: str) -> RowMapping | None:
    return connection.execute(_joined().where(tables.api_keys.c.hash == digest)).mappings().one_or_none()


def key_by_id(connection: Connection, key_id: str) -> RowMapping | None:
    return connection.execute(_joined().where(tables.api_keys.c.id == key_id)).mappings().one_or_none()


def list_keys(connection: Connection, where: ColumnElement[bool] | None = None) -> list[RowMapping]:
    query = _joined().order_by(tables.api_keys.c.created_at, tables.api_keys.c.id)
    if where is not None:
        query = query.where(where)
    return list(connection.execute(query).mappings())


def update_key(connection: Connection, key_id: str, **values: Any) -> None:
    connection.execute(tables.api_keys.update().where(tables.api_keys.c.id == key_id).values(**values))
    changes.bump(connection, REVISION)


def revoke_where(connection: Connection, where: ColumnElement[bool], now: datetime) -> int:
    """Revoke every key matching ``where`` that is not revoked yet; return how many."""
    k = tables.api_keys
    result = connection.execute(
        k.update().where(where, k.c.status != "revoked").values(status="revoked", revoked_at=now)
    )
    changes.bump(connection, REVISION)
    return int(result.rowcount)
