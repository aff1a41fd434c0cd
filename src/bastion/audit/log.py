"""The audit log: append entries to the Merkle tree in the store, durably, in group commits.

An entry is a JSON object; its canonical bytes (sorted keys, no spaces, UTF-8) are what the leaf
hash covers and what an export contains, so anyone can recompute the tree from an export. Appends
take the tree head's row lock first (``UPDATE ... RETURNING``), which makes sequence numbers dense
and gap-free however many processes write. Admin changes append in their own transaction; the
request path hands entries to :class:`AuditLog`, which writes whatever has queued up in one
transaction and answers each caller once its entry is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import SQLAlchemyError

from bastion.audit.merkle import Tree, leaf_hash
from bastion.errors import AuditCorrupt, AuditUnavailable
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)


def canonical(entry: dict[str, Any]) -> bytes:
    """The bytes an entry is hashed as: sorted keys, no whitespace, UTF-8."""
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


def timestamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Record:
    """One entry before it has a sequence number."""

    action: str
    actor: str
    project: str | None = None
    status: int | None = None
    request_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def entry(self, seq: int) -> dict[str, Any]:
        return {
            **self.fields,
            "seq": seq,
            "time": timestamp(self.time),
            "action": self.action,
            "actor": self.actor,
            "project": self.project,
            "status": self.status,
            "request_id": self.request_id,
        }


_HEAD = tables.audit_head
# Built once: an append is on every request's path, and building statements costs more than running them.
_CLAIM = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(size=_HEAD.c.size + bindparam("count"))
    .returning(_HEAD.c.size, _HEAD.c.frontier)
)
_INSERT = tables.audit_entries.insert()
_ADVANCE = update(_HEAD).where(_HEAD.c.id == 1).values(frontier=bindparam("frontier"), root=bindparam("root"))


def append_in(connection: Connection, records: Sequence[Record]) -> list[int]:
    """Append ``records`` inside the caller's transaction; return their sequence numbers."""
    row = connection.execute(_CLAIM, {"count": len(records)}).one()
    start = row.size - len(records)
    tree = Tree.restore((height, bytes.fromhex(value)) for height, value in row.frontier)
    if tree.size != start:
        raise AuditCorrupt(
            f"The audit tree head says {start} entries but holds {tree.size}; run 'bastion audit verify'."
        )
    rows = []
    for offset, record in enumerate(records):
        data = canonical(record.entry(start + offset))
        leaf = leaf_hash(data)
        tree.append(leaf)
        rows.append(
            {
                "seq": start + offset,
                "time": record.time,
                "action": record.action,
                "actor": record.actor,
                "project": record.project,
                "status": record.status,
                "request_id": record.request_id,
                "entry": data.decode(),
                "leaf": leaf.hex(),
            }
        )
    connection.execute(_INSERT, rows)
    frontier = [[height, value.hex()] for height, value in tree.frontier()]
    connection.execute(_ADVANCE, {"frontier": frontier, "root": tree.root().hex()})
    return [start + offset for offset in range(len(records))]


def head(connection: Connection) -> tuple[int, bytes]:
    """The tree's current size and root."""
    row = connection.execute(select(tables.audit_head.c.size, tables.audit_head.c.root)).one()
    return int(row.size), bytes.fromhex(row.root)


class AuditLog:
    """Group commit for the request path: many concurrent appends, one transaction, each awaited until durable."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # SQLite commits are local and short, and its Python driver holds the GIL for most of the work:
        # writing on the event loop saves two thread hand-offs per append, which is most of their latency.
        self._inline = engine.dialect.name == "sqlite"
        self._pending: list[tuple[Record, asyncio.Future[int]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def append(self, record: Record) -> int:
        """Queue ``record`` and return its sequence number once it is committed."""
        if self._task is None or self._task.done():
            raise AuditUnavailable("The audit log is not running; Bastion refuses requests it cannot record.")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        self._wake.set()
        return await future

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        while self._pending:
            await self._flush()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            records = [record for record, _ in batch]
            seqs = self._write(records) if self._inline else await asyncio.to_thread(self._write, records)
        except (SQLAlchemyError, AuditCorrupt) as exc:
            log.error("audit append failed: %s", type(exc).__name__)
            failure = AuditUnavailable("The audit log could not be written; the request was not carried out.")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            return
        for (_, future), seq in zip(batch, seqs, strict=True):
            if not future.done():
                future.set_result(seq)

    def _write(self, records: list[Record]) -> list[int]:
        with self._engine.begin() as connection:
            return append_in(connection, records)
