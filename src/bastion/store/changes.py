"""Change feeds: how a gateway process learns, cheaply and at once, that another process changed keys.

A write bumps a counter in ``revisions`` (and on PostgreSQL sends ``NOTIFY``); caches compare the
feed's token with the one they were filled under and drop everything when it moved. The check runs
on every request, so it must cost microseconds: SQLite's ``PRAGMA data_version`` on a private
connection, or a counter that a PostgreSQL ``LISTEN`` thread advances.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
from typing import Protocol

import psycopg
from sqlalchemy import Connection, Engine, text

from bastion.store import tables

log = logging.getLogger(__name__)
CHANNEL = "bastion_changes"


class ChangeFeed(Protocol):
    def token(self, name: str) -> int:
        """A number that changes whenever the revision ``name`` changes anywhere."""

    def close(self) -> None: ...


def bump(connection: Connection, name: str) -> None:
    """Record, inside the caller's transaction, that cached objects of kind ``name`` changed."""
    revisions = tables.revisions
    updated = connection.execute(revisions.update().where(revisions.c.name == name).values(value=revisions.c.value + 1))
    if updated.rowcount == 0:
        connection.execute(revisions.insert().values(name=name, value=1))
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, :name)"), {"channel": CHANNEL, "name": name})


class SQLiteFeed:
    """Reads ``PRAGMA data_version``, which moves when any other connection commits to the file."""

    def __init__(self, database: str) -> None:
        self._connection = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._version: int | None = None
        self._values: dict[str, int] = {}

    def token(self, name: str) -> int:
        (version,) = self._connection.execute("PRAGMA data_version").fetchone()
        if version != self._version:
            self._version = version
            self._values = dict(self._connection.execute("SELECT name, value FROM revisions").fetchall())
        return self._values.get(name, 0)

    def close(self) -> None:
        self._connection.close()


class PostgresFeed:
    """A thread that ``LISTEN``s; while it is not connected every token is new, so caches are bypassed."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._counter = 0
        self._connected = False
        self._fresh = itertools.count(start=1 << 62)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bastion-change-feed", daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(timeout=5)

    def token(self, name: str) -> int:
        return self._counter if self._connected else next(self._fresh)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                log.warning("change feed lost its PostgreSQL connection: %s", type(exc).__name__)
            self._connected = False
            self._ready.set()
            self._stop.wait(1.0)

    def _listen(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self._counter += 1  # anything may have changed while we were not listening
            self._connected = True
            self._ready.set()
            while not self._stop.is_set():
                for _notice in connection.notifies(timeout=0.5):
                    self._counter += 1


def open_feed(engine: Engine) -> ChangeFeed:
    """The feed that fits the engine's backend."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return SQLiteFeed(str(url.database))
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresFeed(dsn)
