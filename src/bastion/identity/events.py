"""Admin events: every change to the organisation, in the store and, in the same transaction, in the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.audit.log import Record, append_in
from bastion.store import org as repo

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Connection


def record(
    connection: Connection,
    at: datetime,
    actor: str,
    action: str,
    target: tuple[str, str],
    project: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Write the event; the change it describes commits only if the audit entry does too."""
    values = {"at": at, "actor": actor, "action": action, "target_type": target[0], "target_id": target[1]}
    repo.record_event(connection, {**values, "project": project, "before": before, "after": after})
    fields = {"target": {"type": target[0], "id": target[1]}, "before": before, "after": after}
    append_in(connection, [Record(action, actor, project, None, None, fields, at)])
