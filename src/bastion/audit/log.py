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
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bastion.audit.merkle import Tree, leaf_hash
from bastion.errors import AuditCorrupt, AuditUnavailable
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Connection, Dialect, Engine

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
_COLUMNS = ("seq", "time", "action", "actor", "project", "status", "request_id", "entry", "leaf")


@dataclass(frozen=True)
class _Statements:
    """The three statements of an append, rendered once per dialect and run on the driver's own cursor.

    An append is on every request's path twice; SQLAlchemy's per-execution work cost more than the
    statements themselves. Times go through the column's own bind processor, and the frontier is JSON
    text on both databases, so what is stored is what the Core tables write and read.
    """

    claim: str
    insert: str
    advance: str
    time: Callable[[Any], Any]

    @classmethod
    def of(cls, dialect: Dialect) -> _Statements:
        # Only constants are interpolated: the driver's placeholder and our own column names.
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        marks = ", ".join([mark] * len(_COLUMNS))
        json = mark if dialect.name == "sqlite" else f"CAST({mark} AS JSON)"
        return cls(
            claim=f"UPDATE audit_head SET size = size + {mark} WHERE id = 1 RETURNING size, frontier",  # noqa: S608
            insert=f"INSERT INTO audit_entries ({', '.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608
            advance=f"UPDATE audit_head SET frontier = {json}, root = {mark} WHERE id = 1",  # noqa: S608
            time=tables.audit_entries.c.time.type.dialect_impl(dialect).bind_processor(dialect) or _same,
        )


def _same(value: Any) -> Any:
    return value


def _json(value: Any) -> Any:
    """A JSON column as the driver returns it: text from SQLite, already parsed from psycopg."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


_STATEMENTS: dict[str, _Statements] = {}


def _statements(dialect: Dialect) -> _Statements:
    found = _STATEMENTS.get(dialect.name)
    if found is None:
        found = _STATEMENTS[dialect.name] = _Statements.of(dialect)
    return found


def append_in(connection: Connection, records: Sequence[Record]) -> list[int]:
    """Append ``records`` inside the caller's transaction; return their sequence numbers."""
    sql = _statements(connection.dialect)
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        return _append(cursor, sql, records)
    except connection.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError("audit append", None, exc) from exc  # as Core would raise it: callers catch SQLAlchemyError
    finally:
        cursor.close()


def _append(cursor: Any, sql: _Statements, records: Sequence[Record]) -> list[int]:
    cursor.execute(sql.claim, (len(records),))
    size, stored = cursor.fetchone()
    start = size - len(records)
    tree = Tree.restore((height, bytes.fromhex(value)) for height, value in _json(stored))
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
            (
                start + offset,
                sql.time(record.time),
                record.action,
                record.actor,
                record.project,
                record.status,
                record.request_id,
                data.decode(),
                leaf.hex(),
            )
        )
    cursor.executemany(sql.insert, rows)
    frontier = [[height, value.hex()] for height, value in tree.frontier()]
    cursor.execute(sql.advance, (orjson.dumps(frontier).decode(), tree.root().hex()))
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
