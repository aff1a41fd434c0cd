"""Entries out of the store: streamed in seq order (export, verification), paged with filters (the audit API),
and written as JSON lines, which are exactly the canonical bytes the tree hashes, or as CEF lines for SIEMs.

CEF follows ArcSight's format: ``CEF:0|Bastion|Bastion|<version>|<action>|<name>|<severity>|<extension>``,
with ``|`` and ``\\`` escaped in the header and ``=``, ``\\`` and line breaks escaped in extension values.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select

from bastion import __version__
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from sqlalchemy import Engine

BATCH = 5000
FORMATS = ("jsonl", "cef", "syslog")

# The CEF name and severity (0-10) of each action; admin changes share one of each by their object.
NAMES = {
    "request.forwarded": "Request forwarded to an upstream model",
    "request.completed": "Request completed",
    "request.refused": "Request refused by Bastion",
    "request.failed": "Request failed at the upstream",
}
SEVERITIES = {"request.forwarded": 1, "request.completed": 1, "request.failed": 4, "request.refused": 5}
ADMIN_SEVERITY = 3
GRAVE_REASONS = frozenset({"sensitive_data_blocked", "prompt_injection_blocked", "ip_not_allowed"})
GRAVE_SEVERITY = 7

# Entry field -> CEF key: standard keys where CEF has one, labelled custom fields for the rest.
STANDARD = {"action": "act", "actor": "suser", "client_ip": "src", "endpoint": "request", "reason": "reason"}
CUSTOM = (
    ("cs1", "project"),
    ("cs2", "request_id"),
    ("cs3", "model"),
    ("cs4", "provider"),
    ("cs5", "environment"),
    ("cn1", "seq"),
    ("cn2", "status"),
    ("cfp1", "latency_ms"),
)
LABELS = {"cs1": "project", "cs2": "requestId", "cs3": "model", "cs4": "provider", "cs5": "environment"}
LABELS |= {"cs6": "leafHash", "cn1": "seq", "cn2": "status", "cn3": "totalTokens", "cfp1": "latencyMs"}


@dataclass(frozen=True)
class StoredEntry:
    """One row of ``audit_entries``: the seq it is stored under, its canonical text and its leaf hash (hex)."""

    seq: int
    text: str
    leaf: str

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.text)
        return parsed


@dataclass(frozen=True)
class EntryFilter:
    """What ``GET /audit/v1/entries`` may ask for; ``after`` is the cursor (the last seq already seen)."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    project: str | None = None
    action: str | None = None
    status: int | None = None
    request_id: str | None = None
    after: int | None = None
    limit: int = 100


def stored_entries(engine: Engine, start: int = 0, batch: int = BATCH) -> Iterator[StoredEntry]:
    """Every entry from seq ``start`` on, in seq order, read ``batch`` rows at a time (constant memory)."""
    e = tables.audit_entries
    query = select(e.c.seq, e.c.entry, e.c.leaf).order_by(e.c.seq).limit(batch)
    with engine.connect() as connection:
        while True:
            rows = connection.execute(query.where(e.c.seq >= start)).all()
            yield from (StoredEntry(row.seq, row.entry, row.leaf) for row in rows)
            if len(rows) < batch:
                return
            start = rows[-1].seq + 1


def find_entries(engine: Engine, wanted: EntryFilter) -> tuple[list[StoredEntry], bool]:
    """One page of entries matching ``wanted``, oldest first, and whether more follow."""
    e = tables.audit_entries
    conditions = [
        column == value
        for column, value in (
            (e.c.actor, wanted.actor),
            (e.c.project, wanted.project),
            (e.c.action, wanted.action),
            (e.c.status, wanted.status),
            (e.c.request_id, wanted.request_id),
        )
        if value is not None
    ]
    if wanted.since is not None:
        conditions.append(e.c.time >= wanted.since)
    if wanted.until is not None:
        conditions.append(e.c.time < wanted.until)
    if wanted.after is not None:
        conditions.append(e.c.seq > wanted.after)
    query = select(e.c.seq, e.c.entry, e.c.leaf).where(*conditions).order_by(e.c.seq).limit(wanted.limit + 1)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    found = [StoredEntry(row.seq, row.entry, row.leaf) for row in rows[: wanted.limit]]
    return found, len(rows) > wanted.limit


def jsonl(entry: StoredEntry) -> bytes:
    """The entry's canonical bytes and a newline: what ``bastion audit verify --export`` reads back."""
    return entry.text.encode() + b"\n"


def cef(entry: StoredEntry) -> bytes:
    """The entry as one CEF line."""
    data = entry.json()
    action = str(data.get("action", ""))
    header = ["CEF:0", "Bastion", "Bastion", __version__, action, name_of(action), str(severity_of(data))]
    return ("|".join(_header(part) for part in header) + "|" + _extension(data, entry.leaf) + "\n").encode()


def syslog(entry: StoredEntry, host: str | None = None) -> bytes:
    """The CEF line behind an RFC 5424 header (facility 13, log audit), ready for a syslog receiver."""
    data = entry.json()
    severity = severity_of(data)
    level = 6 if severity < 4 else 4 if severity < GRAVE_SEVERITY else 3  # informational, warning, error
    header = f"<{13 * 8 + level}>1 {data.get('time', '-')} {host or socket.gethostname()} bastion - {entry.seq} - "
    return header.encode() + cef(entry)


WRITERS: dict[str, Callable[[StoredEntry], bytes]] = {"jsonl": jsonl, "cef": cef, "syslog": syslog}


def export(entries: Iterable[StoredEntry], form: str) -> Iterator[bytes]:
    """Each entry in the format named ``form`` (one of ``FORMATS``)."""
    writer = WRITERS[form]
    return (writer(entry) for entry in entries)


def name_of(action: str) -> str:
    """A reader's name for an action: ``Request refused by Bastion``, ``Admin change: key.create``."""
    return NAMES.get(action) or f"Admin change: {action}"


def severity_of(data: dict[str, Any]) -> int:
    """CEF severity: 1 for traffic, 3 for admin changes, 4-5 for failures and refusals, 7 for blocked data."""
    if data.get("reason") in GRAVE_REASONS:
        return GRAVE_SEVERITY
    return SEVERITIES.get(str(data.get("action")), ADMIN_SEVERITY)


def _extension(data: dict[str, Any], leaf: str) -> str:
    fields: list[tuple[str, Any]] = [("rt", _epoch_ms(data.get("time")))]
    fields += [(key, data.get(name)) for name, key in STANDARD.items()]
    status = data.get("status")
    if isinstance(status, int):
        fields.append(("outcome", "success" if status < 400 else "failure"))
    fields += [(key, data.get(name)) for key, name in CUSTOM]
    tokens = data.get("tokens")
    fields.append(("cn3", tokens.get("total_tokens") if isinstance(tokens, dict) else None))
    fields.append(("cs6", leaf))
    pairs: list[str] = []
    for key, value in fields:
        if value is None or value == "":
            continue
        if key in LABELS:
            pairs.append(f"{key}Label={LABELS[key]}")
        pairs.append(f"{key}={_value(value)}")
    return " ".join(pairs)


def _epoch_ms(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


def _header(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _value(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")
