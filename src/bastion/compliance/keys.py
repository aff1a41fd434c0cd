"""The key inventory: every API key with its holder, status, age, rotation due date and last use.

A key is due for rotation when it expires within :data:`HORIZON` or reaches its project's maximum key
age by then (the rule of ``bastion keys due``); only usable keys (active or rotating) can be due. The
inventory shows a key's visible prefix, never its secret or its hash.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bastion.compliance.report import Fact, Section, stamp
from bastion.compliance.source import finish
from bastion.store import tables

if TYPE_CHECKING:
    from bastion.compliance.report import Query, Report
    from bastion.compliance.source import Source
    from bastion.identity.keys import KeyRecord

HORIZON = timedelta(days=7)
STATUSES = ("active", "rotating", "expired", "revoked")


@dataclass(frozen=True)
class KeyRow:
    """One key as the inventory lists it."""

    id: str
    project: str
    holder: str  # principal type and id: member:mem_…, service_account:sa_…, project:<name>
    prefix: str
    status: str  # effective: active, rotating, expired or revoked
    created: datetime
    expires: datetime | None
    age_days: int
    rotation_due: bool
    due_reason: str | None
    last_used: datetime | None


def due_reason(record: KeyRecord, status: str, max_age: timedelta | None, now: datetime) -> str | None:
    """Why the key must be rotated within the horizon, or None."""
    if status not in ("active", "rotating"):
        return None
    horizon = now + HORIZON
    if record.expires_at is not None and record.expires_at <= horizon:
        return f"expires at {stamp(record.expires_at)}"
    if max_age is not None and record.created_at + max_age <= horizon:
        return f"reaches the project's maximum age at {stamp(record.created_at + max_age)}"
    return None


def _max_ages(source: Source) -> dict[str, timedelta | None]:
    """Every project's maximum key age, deleted projects included (their keys are still listed)."""
    p = tables.projects
    with source.engine.connect() as connection:
        rows = connection.execute(select(p.c.name, p.c.key_max_age))
        return {row.name: timedelta(seconds=row.key_max_age) if row.key_max_age else None for row in rows}


def row_of(record: KeyRecord, max_age: timedelta | None, now: datetime) -> KeyRow:
    status = record.effective_status(now)
    holder = record.principal_id if record.principal_type != "project" else record.project
    reason = due_reason(record, status, max_age, now)
    return KeyRow(
        id=record.id,
        project=record.project,
        holder=f"{record.principal_type}:{holder}",
        prefix=record.prefix,
        status=status,
        created=record.created_at,
        expires=record.expires_at,
        age_days=(now - record.created_at).days,
        rotation_due=reason is not None,
        due_reason=reason,
        last_used=record.last_used_at,
    )


def build(source: Source, query: Query) -> Report:
    """The inventory of the scope's keys as of now (the period does not apply: keys are listed as they are)."""
    now, ages = source.now(), _max_ages(source)
    rows = [row_of(record, ages.get(record.project), now) for record in source.keys.list_keys(query.project)]
    statuses = Counter(row.status for row in rows)
    summary = [
        Fact("keys", len(rows)),
        *(Fact(status, statuses[status]) for status in STATUSES),
        Fact("rotation_due", sum(row.rotation_due for row in rows)),
        Fact("never_used", sum(row.last_used is None for row in rows if row.status in ("active", "rotating"))),
    ]
    notes = (
        f"Rotation is due when a usable key expires within {HORIZON.days} days or reaches its project's "
        "keys.max_age by then; rotate with 'bastion keys rotate ID'.",
        "Keys are stored as keyed hashes (HMAC-SHA-256 under the server secret); only their prefix is shown.",
    )
    section = Section.of("keys", "Keys", KeyRow, rows, notes=notes)
    return finish(source, query, "keys", "API key inventory", summary, [section], cites=False)
