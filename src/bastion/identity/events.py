"""Admin events: every change to the organisation, in the store and, in the same transaction, in the audit log.

The admin_events row is the organisation's own record and names people as they are. The audit entry
can never change, so it names them only by subject reference (``audit/subjects.py``): every email
address in its actor, target, before and after becomes ``subj_<hex>``, and ``subjects`` lists the
references of everyone the entry is about, including the member who holds a key it describes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bastion.audit import subjects
from bastion.audit.log import Record, append_in
from bastion.store import org as repo
from bastion.store import tables

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
    fields = {"actor": actor, "target": {"type": target[0], "id": target[1]}, "before": before, "after": after}
    cleaned, refs = subjects.pseudonymise(connection, fields, _holders(connection, before, after))
    entry_actor = cleaned.pop("actor")
    append_in(connection, [Record(action, entry_actor, project, None, None, {**cleaned, "subjects": refs}, at)])


def _holders(connection: Connection, *states: dict[str, Any] | None) -> list[str]:
    """The addresses of members who hold a key that ``states`` describe (a key names its holder by id only)."""
    ids = {
        state["principal"]["id"]
        for state in states
        if state and isinstance(state.get("principal"), dict) and state["principal"].get("type") == "member"
    }
    if not ids:
        return []
    m = tables.members
    return sorted(connection.execute(select(m.c.email).where(m.c.id.in_(ids))).scalars())
