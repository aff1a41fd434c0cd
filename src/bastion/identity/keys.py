"""API keys: generation, keyed hashing, status checks, and the service the CLI and gateway share.

A key is shown once, when created. The store keeps only HMAC-SHA-256(server secret, key), so a copy
of the database yields no usable key; the visible prefix (``bst_ab12cd34``) identifies it in lists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bastion.errors import KeyExpired, KeyRevoked, StoreError
from bastion.store import keys as repo

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

KEY_PREFIX = "bst_"
VISIBLE = len(KEY_PREFIX) + 8


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    project: str
    name: str
    prefix: str
    hash: str
    status: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> KeyRecord:
        return cls(**{field: row[field] for field in cls.__slots__})

    def effective_status(self, now: datetime) -> str:
        if self.status == "revoked":
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return self.status

    def check(self, now: datetime) -> None:
        """Raise the refusal this key earns at ``now``; return quietly if it may be used."""
        status = self.effective_status(now)
        if status == "revoked":
            raise KeyRevoked(f"Key {self.prefix}… was revoked; create a new one with 'bastion keys create'.")
        if status == "expired":
            raise KeyExpired(
                f"Key {self.prefix}… expired at {self.expires_at:%Y-%m-%dT%H:%MZ}; create a new one with "
                "'bastion keys create'."
            )


class KeyService:
    """Create, list and revoke keys; the one place both the CLI and the gateway change keys."""

    def __init__(self, engine: Engine, secret: bytes, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._secret = secret
        self._clock = clock or (lambda: datetime.now(UTC))

    def create(self, project: str, name: str = "default", expires_in: timedelta | None = None) -> tuple[KeyRecord, str]:
        """Issue a key for ``project``; return its record and the plaintext, which is never stored."""
        plaintext = generate_key()
        now = self._clock()
        with self._engine.begin() as connection:
            project_id = repo.project_id(connection, project)
            if project_id is None:
                raise StoreError(
                    f"Project '{project}' does not exist; declare it under 'projects:' in the config file "
                    "and pass it with --config (or BASTION_CONFIG)."
                )
            key_id = "key_" + secrets.token_hex(8)
            repo.insert_key(
                connection,
                {
                    "id": key_id,
                    "project_id": project_id,
                    "name": name,
                    "prefix": plaintext[:VISIBLE],
                    "hash": hash_key(self._secret, plaintext),
                    "status": "active",
                    "created_at": now,
                    "expires_at": now + expires_in if expires_in else None,
                },
            )
            row = repo.key_by_id(connection, key_id)
        return KeyRecord.from_row(row), plaintext

    def list(self, project: str | None = None) -> list[KeyRecord]:
        with self._engine.connect() as connection:
            return [KeyRecord.from_row(row) for row in repo.list_keys(connection, project)]

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke ``key_id``; every gateway process refuses it from its next request on."""
        with self._engine.begin() as connection:
            row = repo.key_by_id(connection, key_id)
            if row is None:
                raise StoreError(f"No key has the id '{key_id}'; list keys with 'bastion keys list'.")
            if row["status"] != "revoked":
                repo.set_status(connection, key_id, "revoked", revoked_at=self._clock())
                row = repo.key_by_id(connection, key_id)
        return KeyRecord.from_row(row)

    def lookup(self, digest: str) -> KeyRecord | None:
        """Find a key by its keyed hash (blocking; the gateway calls it through :class:`KeyCache`)."""
        with self._engine.connect() as connection:
            row = repo.key_by_hash(connection, digest)
        return None if row is None else KeyRecord.from_row(row)

    def digest(self, plaintext: str) -> str:
        return hash_key(self._secret, plaintext)
