"""Persisted vaults: a project's placeholders kept between requests (``data_policy.vault.persist``), so that a
value gets the same placeholder in every request of the project until the vault expires.

The vault is sealed with AES-GCM (``tokenize.seal``) under a key derived from the server secret with HKDF and
bound to the project's id; the store holds only the sealed bytes. It expires ``ttl`` after the last request that
added a value to it (an expired vault is replaced by a fresh one: numbering starts again).

Replicas share the vault through the store: each keeps the version it last read, and a write that adds values
is a compare-and-set on that version. A write that loses (another replica added values meanwhile) reloads and
the request is protected again with the newer vault, so no number ever stands for two values.

A request restores only the placeholders it used itself (``Vault.used``), never the rest of the project's
vault: a model cannot make Bastion print another caller's values by naming their placeholders.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bastion.protect.tokenize import Vault, VaultRejected, seal, unseal
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

log = logging.getLogger(__name__)
_INFO = b"bastion placeholder vault v1"


def vault_key(secret: bytes) -> bytes:
    """The AES-256 key that seals vaults, derived from the server secret (never the secret itself)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)


@dataclass(frozen=True, slots=True)
class Stored:
    """A project's vault as last read: a base to copy for each request, and the version to write over."""

    vault: Vault
    version: int  # 0: nothing stored
    expires: datetime | None = None  # when the stored vault stops counting; None: nothing to expire

    def start(self) -> Vault:
        """A request's own vault, starting from the project's (which it leaves as it is)."""
        return Vault(self.vault.entries(), self.vault.counts())


class VaultStore:
    """Reads and writes sealed project vaults; blocking (the request path calls it from a worker thread)."""

    def __init__(self, engine: Engine, secret: bytes, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._key = vault_key(secret)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._cache: dict[int, Stored] = {}
        self._lock = threading.Lock()

    def current(self, project_id: int) -> Stored:
        """The vault this process last saw for the project (read from the store the first time)."""
        with self._lock:
            found = self._cache.get(project_id)
        if found is None or (found.expires is not None and self._clock() >= found.expires):
            return self.reload(project_id)
        return found

    def reload(self, project_id: int) -> Stored:
        """Read the project's vault from the store; an expired or unreadable one counts as none."""
        table = tables.vaults
        with self._engine.connect() as connection:
            row = connection.execute(
                select(table.c.sealed, table.c.version, table.c.expires_at).where(table.c.project_id == project_id)
            ).first()
        stored = Stored(Vault(), 0)
        if row is not None:
            try:
                vault = unseal(row.sealed, self._key, now=self._clock(), context=_context(project_id))
                stored = Stored(vault, row.version, row.expires_at)
            except VaultRejected as exc:
                log.warning("the placeholder vault of project id %s is not used: %s", project_id, exc)
                stored = Stored(Vault(), row.version)
        with self._lock:
            self._cache[project_id] = stored
        return stored

    def save(self, project_id: int, base: Stored, vault: Vault, ttl: timedelta) -> bool:
        """Write ``base`` plus what ``vault`` (a copy of it) added, if the store still holds ``base``'s version.

        False when another replica wrote first: reload and protect the request again.
        """
        merged = Vault((*base.vault.entries(), *vault.added()), _highest(base.vault, vault))
        sealed = seal(merged, self._key, now=self._clock(), ttl=ttl, context=_context(project_id))
        expires = self._clock() + ttl
        table = tables.vaults
        with self._engine.begin() as connection:
            if base.version == 0:
                try:
                    with connection.begin_nested():
                        connection.execute(
                            table.insert().values(project_id=project_id, sealed=sealed, version=1, expires_at=expires)
                        )
                except IntegrityError:
                    return False  # another replica wrote the first vault
            else:
                done = connection.execute(
                    table.update()
                    .where(table.c.project_id == project_id, table.c.version == base.version)
                    .values(sealed=sealed, version=base.version + 1, expires_at=expires)
                )
                if done.rowcount != 1:
                    return False
        with self._lock:
            self._cache[project_id] = Stored(merged, base.version + 1, expires)
        return True

    def drop(self, project_id: int) -> None:
        """Delete the project's vault (its placeholders can no longer be restored anywhere)."""
        with self._engine.begin() as connection:
            connection.execute(tables.vaults.delete().where(tables.vaults.c.project_id == project_id))
        with self._lock:
            self._cache.pop(project_id, None)


def _context(project_id: int) -> bytes:
    return f"project:{project_id}".encode()


def _highest(base: Vault, vault: Vault) -> dict[str, int]:
    counts = base.counts()
    for kind, count in vault.counts().items():
        counts[kind] = max(count, counts.get(kind, 0))
    return counts
