"""GDPR erasure of a data subject by crypto-shredding: the log stays intact, the person becomes unlinkable.

Erasing a person (1) scrubs their address from the records that are not part of the log, in one
transaction: a removed member's row becomes ``erased-<member id>@invalid``, their invites the same with
the invite's id (pending ones are revoked), and the admin events table's copies of the address are
replaced; each scrub is itself recorded as an admin event that names nobody. Then (2) their subject key
is shredded (``AuditKeys.shred``), after which their reference can no longer be computed. No audit
entry, leaf or root changes. A member must be offboarded first, and the config file must not declare
them any more, or they would come back on the next start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, or_, select

from bastion.audit import subjects
from bastion.compliance.dsr import like, linked, member_rows
from bastion.compliance.report import Fact, Period, Query, Section
from bastion.compliance.source import finish
from bastion.errors import Conflict, NotFound
from bastion.identity import events
from bastion.store import org as repo
from bastion.store import tables

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Connection

    from bastion.audit.subjects import Subject
    from bastion.compliance.report import Report
    from bastion.compliance.source import Source


@dataclass(frozen=True)
class Erasure:
    """What an erasure did; it names no entry, since a list of them would link the person again."""

    subject: str
    key_shredded: bool
    already_erased: bool
    members_scrubbed: int
    invites_scrubbed: int
    events_scrubbed: int
    entries_unlinked: int


def placeholder(record_id: str) -> str:
    """What replaces an address: reserved by RFC 2606, so it can never be anyone's (and is not an address)."""
    return f"erased-{record_id}@invalid"


def _replace(value: Any, address: re.Pattern[str], replacement: str) -> Any:
    if isinstance(value, str):
        return address.sub(replacement, value)
    if isinstance(value, dict):
        return {key: _replace(item, address, replacement) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, address, replacement) for item in value]
    return value


def _scrub_members(connection: Connection, members: list[Any]) -> int:
    for member in members:
        repo.update(connection, tables.members, ("id", member.id), {"email": placeholder(member.id)})
    return len(members)


def _scrub_invites(connection: Connection, address: str, now: datetime) -> int:
    i = tables.invites
    found = list(connection.execute(select(i.c.id, i.c.accepted_at, i.c.revoked_at).where(i.c.email == address)))
    for invite in found:
        values: dict[str, Any] = {"email": placeholder(invite.id)}
        if invite.accepted_at is None and invite.revoked_at is None:
            values["revoked_at"] = now
        repo.update(connection, i, ("id", invite.id), values)
    return len(found)


def _scrub_events(connection: Connection, address: str, replacement: str) -> int:
    """Replace the address in the admin events table (the organisation's copy; the log never held it)."""
    e, pattern = tables.admin_events, like(address)
    query = select(e.c.id, e.c.actor, e.c.target_id, e.c.before, e.c.after).where(
        or_(
            e.c.actor.ilike(pattern, escape="\\"),
            e.c.target_id.ilike(pattern, escape="\\"),
            cast(e.c.before, Text).ilike(pattern, escape="\\"),
            cast(e.c.after, Text).ilike(pattern, escape="\\"),
        )
    )
    rows = list(connection.execute(query))
    found = re.compile(re.escape(address), re.IGNORECASE)
    for row in rows:
        values = {
            name: _replace(getattr(row, name), found, replacement) for name in ("actor", "target_id", "before", "after")
        }
        connection.execute(e.update().where(e.c.id == row.id).values(**values))
    return len(rows)


def _refuse_if_active(source: Source, address: str) -> None:
    if address in source.declared:
        raise Conflict(
            f"{address} is still declared under members: in the config file; remove them there and run "
            "'bastion apply' (which offboards them), then erase."
        )
    if any(member.email == address for member in source.org.members()):
        raise Conflict(
            f"{address} is still a member; offboard them first with 'bastion members remove {address}' "
            "(which revokes their keys), then erase."
        )


def _scrub(source: Source, address: str, found: Subject, members: list[Any], actor: str) -> tuple[int, int, int]:
    """Scrub the address from members, invites and admin events, and record it, in one transaction."""
    now = source.now()
    with source.engine.begin() as connection:
        counts = (
            _scrub_members(connection, members),
            _scrub_invites(connection, address, now),
            _scrub_events(connection, address, placeholder(members[0].id if members else "subject")),
        )
        for member in members:
            events.record(
                connection, now, actor, "member.erase", ("member", member.id), after={"email": placeholder(member.id)}
            )
        scope = (found.scope or "subject:-").removeprefix("subject:")
        after = {
            "members": counts[0],
            "invites": counts[1],
            "events": counts[2],
            "key_shredded": found.status == "linked",
        }
        events.record(connection, now, actor, "subject.erase", ("subject", scope), after=after)
    return counts


def erase(source: Source, identifier: str, actor: str) -> Erasure:
    """Erase the subject ``identifier`` (an email address); safe to repeat if it was interrupted."""
    address = subjects.normalise(identifier)
    _refuse_if_active(source, address)
    with source.engine.connect() as connection:
        found = subjects.lookup(connection, source.audit_keys, address)
        members = member_rows(connection, address)
    everything = Query(Period(None, source.now() + timedelta(days=1)))
    unlinked = sum(1 for row in linked(source, everything, found, []) if row.link == "reference")
    if found.status == "unknown" and not members and not any(i.email == address for i in source.org.invites()):
        raise NotFound(f"Nothing is recorded about {address}; there is nothing to erase.")
    counts = _scrub(source, address, found, members, actor)
    if found.status == "linked" and found.scope is not None:
        source.audit_keys.shred(found.scope)
    return Erasure(address, found.status == "linked", found.status == "erased", *counts, unlinked)


@dataclass(frozen=True)
class Step:
    """One thing the erasure did, and how many records it touched."""

    step: str
    records: int


def receipt(source: Source, query: Query, done: Erasure) -> Report:
    """The record of an erasure: what was scrubbed and shredded, never which entries were linked."""
    steps = [
        Step("member records: address replaced by erased-<member id>@invalid", done.members_scrubbed),
        Step("invites: address replaced, pending ones revoked", done.invites_scrubbed),
        Step("admin events table: address replaced", done.events_scrubbed),
        Step("subject key shredded (audit entries can no longer be linked)", int(done.key_shredded)),
    ]
    summary = [
        Fact("subject", done.subject),
        Fact("status", "erased"),
        Fact("already_erased", done.already_erased),
        Fact("entries_unlinked", done.entries_unlinked),
    ]
    notes = (
        "No audit entry, leaf or root changed: every proof and checkpoint stays valid.",
        "Keep this receipt apart from any earlier dsr report of the person: that report lists their entries.",
    )
    section = Section.of("erasure", "Erasure", Step, steps, notes=notes)
    return finish(source, query, "dsr", "Data-subject erasure", summary, [section])
