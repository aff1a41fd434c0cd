"""The GDPR data-subject report: every audit entry linked to one person, and the data Bastion holds on them.

Audit entries name people only by subject reference (``audit/subjects.py``), so the report computes the
subject's reference from their address and finds the entries that carry it; entries that name the
person in clear (written before references existed) are listed too, since erasure cannot unlink them.
Other people's references in the listed entries are masked. Once the subject was erased
(``compliance/erasure.py``) their reference cannot be computed: the report finds nothing and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import or_, select

from bastion.audit import subjects
from bastion.compliance.report import Fact, Section
from bastion.compliance.source import finish
from bastion.errors import MissingParameter
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from sqlalchemy import Connection

    from bastion.audit.subjects import Subject
    from bastion.compliance.report import Query, Report
    from bastion.compliance.source import Entry, Source

_REF = re.compile(re.escape(subjects.PREFIX) + r"[0-9a-f]{32}")


@dataclass(frozen=True)
class EntryRow:
    """An entry linked to the subject, and how: by ``reference``, as the member ``actor``, or ``in clear``."""

    seq: int
    time: datetime
    action: str
    project: str | None
    actor: str
    status: int | None
    request_id: str | None
    link: str


@dataclass(frozen=True)
class HeldRow:
    """A record Bastion holds on the subject outside the log: their member record, an invite, a key."""

    kind: str
    id: str
    detail: str
    created: datetime


def subject_of(query: Query) -> str:
    """The subject a DSR is about, or a 400 that says how to name one."""
    if not query.subject or not query.subject.strip():
        raise MissingParameter(
            "The dsr report needs the subject: pass --subject (or ?subject=) with the person's email address.",
            param="subject",
        )
    return subjects.normalise(query.subject)


def like(text: str) -> str:
    """A LIKE pattern that matches ``text`` anywhere, with LIKE's own wildcards escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def member_rows(connection: Connection, address: str) -> list[Any]:
    """Every member record with this address, removed ones included."""
    m = tables.members
    return list(connection.execute(select(m).where(m.c.email == address)))


def _mask(text: str, ref: str | None) -> str:
    return _REF.sub(lambda match: "subject" if match.group() == ref else "subj_(another person)", text)


def _row(entry: Entry, ref: str | None, link: str) -> EntryRow:
    return EntryRow(
        entry.seq,
        entry.time,
        entry.action,
        entry.project,
        _mask(entry.actor, ref),
        entry.status,
        entry.fields.get("request_id"),
        link,
    )


def _link(entry: Entry, found: Subject, actors: set[str]) -> str | None:
    if found.ref is not None and found.ref in entry.fields.get("subjects", ()):
        return "reference"
    if entry.actor in actors:
        return "actor"
    if found.identifier in subjects.addresses(orjson.dumps(entry.fields).decode()):
        return "in clear"
    return None  # the address matched only as part of a longer one


def linked(source: Source, query: Query, found: Subject, member_ids: list[str]) -> Iterator[EntryRow]:
    """The entries linked to the subject in the query's period and scope, oldest first."""
    e = tables.audit_entries
    actors = {f"member:{member_id}" for member_id in member_ids}
    conditions = [e.c.entry.ilike(like(found.identifier), escape="\\")]
    if found.ref is not None:
        conditions.append(e.c.entry.like(like(found.ref), escape="\\"))
    if actors:
        conditions.append(e.c.actor.in_(actors))
    for entry in source.entries(query, where=or_(*conditions)):
        link = _link(entry, found, actors)
        if link is not None:
            yield _row(entry, found.ref, link)


def _held(source: Source, query: Query, address: str, members: list[Any]) -> list[HeldRow]:
    """The member records (organisation-wide only), invites and keys of the subject in the scope."""
    now = source.now()
    held = [
        HeldRow("member", m.id, f"role {m.role}" + (", removed" if m.removed_at else ""), m.created_at)
        for m in members
        if query.project is None
    ]
    held += [
        HeldRow("invite", i.id, f"{i.status(now)}, role {i.role}", i.created_at)
        for i in source.org.invites()
        if i.email == address and (query.project is None or set(i.projects) <= {query.project})
    ]
    for member in members:
        keys = source.keys.list_keys(query.project, principal_id=member.id)
        held += [
            HeldRow("key", k.id, f"{k.prefix}…, project {k.project}, {k.effective_status(now)}", k.created_at)
            for k in keys
        ]
    return held


def build(source: Source, query: Query) -> Report:
    """The subject's status, the entries linked to them and the records held on them."""
    address = subject_of(query)
    with source.engine.connect() as connection:
        found = subjects.lookup(connection, source.audit_keys, address)
        members = member_rows(connection, address)
    rows = list(linked(source, query, found, [m.id for m in members]))
    held = _held(source, query, address, members)
    summary = [
        Fact("subject", address),
        Fact("status", found.status),
        Fact("reference", found.ref),
        Fact("erased_at", found.erased_at),
        Fact("entries_linked", len(rows)),
        Fact("entries_in_clear", sum(row.link == "in clear" for row in rows)),
    ]
    notes = _notes(found)
    sections = [
        Section.of("entries", "Audit entries linked to the subject", EntryRow, rows, notes=notes),
        Section.of("held", "Records held on the subject", HeldRow, held),
    ]
    return finish(source, query, "dsr", "Data-subject report", summary, sections)


def _notes(found: Subject) -> tuple[str, ...]:
    if found.status == "erased":
        return (
            f"The subject was erased at {found.erased_at:%Y-%m-%dT%H:%M:%SZ}: their key was shredded, so no entry can "
            "be linked to them any more. The entries and every proof are unchanged.",
        )
    return (
        "Entries name people only by subject reference; 'subject' marks this person, other people are masked.",
        "Entries 'in clear' were written before subject references existed; erasure cannot unlink them.",
    )
