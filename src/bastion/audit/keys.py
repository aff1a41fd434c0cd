"""HMAC keys for the keyed hashes in audit entries: one per project, one per data subject.

Keys are random, stored sealed with AES-GCM under a key derived from the server secret, so a copy
of the database alone cannot turn a hash back into the content it stands for. Shredding a subject's
key (GDPR erasure) deletes it for good: the entries and every proof stay intact, but nobody can link
that subject to them any more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from bastion.errors import NotFound
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection, Engine, Table

_INFO = b"bastion audit keys v1"


def seal_key(secret: bytes) -> AESGCM:
    """The AES-GCM key that seals audit keys, derived from the server secret with HKDF-SHA-256."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
    return AESGCM(derived)


class AuditKeys:
    def __init__(self, engine: Engine, secret: bytes, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._aead = seal_key(secret)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def cached(self, scope: str) -> bytes | None:
        """The key if this process already holds it (no I/O)."""
        return self._cache.get(scope)

    def key(self, scope: str) -> bytes:
        """The key of ``scope`` (``project:NAME`` or ``subject:ID``), created on first use; blocking."""
        cached = self._cache.get(scope)
        if cached is not None:
            return cached
        with self._lock:
            found = self._load(scope)
            if found is None:
                found = self._create(scope)
            self._cache[scope] = found
            return found

    def digest(self, scope: str, data: bytes) -> str:
        """HMAC-SHA-256 of ``data`` under the scope's key, hex."""
        return hmac.new(self.key(scope), data, hashlib.sha256).hexdigest()

    def shred(self, scope: str) -> None:
        """Delete a key for good (the row stays, saying when it was shredded)."""
        k = tables.audit_keys
        with self._engine.begin() as connection:
            updated = connection.execute(
                k.update().where(k.c.scope == scope).values(sealed=None, shredded_at=self._clock())
            )
        self._cache.pop(scope, None)
        if updated.rowcount == 0:
            raise NotFound(f"No audit key exists for {scope}; nothing was recorded for it.")

    def shredded(self, scope: str) -> bool:
        k = tables.audit_keys
        with self._engine.connect() as connection:
            row = connection.execute(select(k.c.shredded_at).where(k.c.scope == scope)).one_or_none()
        return row is not None and row.shredded_at is not None

    def _load(self, scope: str) -> bytes | None:
        k = tables.audit_keys
        with self._engine.connect() as connection:
            row = connection.execute(select(k.c.sealed, k.c.shredded_at).where(k.c.scope == scope)).one_or_none()
        if row is None:
            return None
        if row.shredded_at is not None or row.sealed is None:
            raise NotFound(f"The audit key of {scope} was shredded; its hashes can no longer be computed.")
        raw = base64.b64decode(row.sealed)
        return self._aead.decrypt(raw[:12], raw[12:], scope.encode())

    def _create(self, scope: str) -> bytes:
        key = os.urandom(32)
        nonce = os.urandom(12)
        sealed = base64.b64encode(nonce + self._aead.encrypt(nonce, key, scope.encode())).decode()
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    tables.audit_keys.insert().values(scope=scope, sealed=sealed, created_at=self._clock())
                )
        except IntegrityError:
            loaded = self._load(scope)  # another process created it first: use theirs
            if loaded is None:
                raise
            return loaded
        return key


_INSERTS: dict[str, Callable[[Table], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def key_in(keys: AuditKeys, connection: Connection, scope: str, *, create: bool = True) -> bytes | None:
    """The key of ``scope`` inside the caller's transaction, for writers that already hold one (admin events).

    With ``create``, a missing key is made and a shredded one renewed (the old key stays gone, so what
    it covered stays unlinkable); without it, a missing or shredded key is None. Nothing made here is
    cached, since the caller's transaction may still roll back.
    """
    k = tables.audit_keys
    row = connection.execute(select(k.c.sealed).where(k.c.scope == scope)).one_or_none()
    if row is not None and row.sealed is not None:
        raw = base64.b64decode(row.sealed)
        return keys._aead.decrypt(raw[:12], raw[12:], scope.encode())
    if not create:
        return None
    key, nonce = os.urandom(32), os.urandom(12)
    sealed = base64.b64encode(nonce + keys._aead.encrypt(nonce, key, scope.encode())).decode()
    values = {"sealed": sealed, "created_at": keys._clock(), "shredded_at": None}
    if row is not None:
        written = connection.execute(k.update().where(k.c.scope == scope, k.c.sealed.is_(None)).values(**values))
    else:
        insert = _INSERTS[connection.dialect.name](k).values(scope=scope, **values)
        written = connection.execute(insert.on_conflict_do_nothing(index_elements=["scope"]))
    if written.rowcount == 1:
        return key
    return key_in(keys, connection, scope, create=False)  # another writer made it first: use theirs
