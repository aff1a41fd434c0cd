"""API keys: generation, keyed hashing, status, rotation, and the service the CLI, admin API and gateway share.

A key is shown once, when created. The store keeps only HMAC-SHA-256(server secret, key), so a copy
of the database yields no usable key; the visible prefix (``bst_ab12cd34``) identifies it in lists.
A key belongs to one project and to a principal: a member, a service account, or the project itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bastion.config import PERMISSIONS
from bastion.errors import InvalidParameter, KeyExpired, KeyRevoked, NotFound
from bastion.identity import events
from bastion.identity.model import ROLE_PERMISSIONS, Principal, Project, networks
from bastion.store import keys as repo
from bastion.store import org as org_repo
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection, Engine

KEY_PREFIX = "bst_"
VISIBLE = len(KEY_PREFIX) + 8
DEFAULT_OVERLAP = timedelta(hours=24)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    project: str
    principal_type: str
    principal_id: str | None
    name: str
    prefix: str
    hash: str
    status: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = None
    rotated_to: str | None = None

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
            ended = "its rotation overlap ended" if self.status == "rotating" else "it expired"
            raise KeyExpired(
                f"Key {self.prefix}… can no longer be used: {ended} at {self.expires_at:%Y-%m-%dT%H:%MZ}; "
                "use its replacement or create a new key with 'bastion keys create'."
            )

    def to_json(self, now: datetime) -> dict[str, Any]:
        """The key as lists show it: never the secret, never the hash."""
        return {
            "id": self.id,
            "project": self.project,
            "principal": {"type": self.principal_type, "id": self.principal_id},
            "name": self.name,
            "prefix": self.prefix,
            "status": self.effective_status(now),
            "created_at": _time(self.created_at),
            "expires_at": _time(self.expires_at),
            "revoked_at": _time(self.revoked_at),
            "last_used_at": _time(self.last_used_at),
            "rotated_to": self.rotated_to,
        }


@dataclass(frozen=True, slots=True)
class Caller:
    """What a valid key stands for on the request path: the key, who holds it, and its project."""

    key: KeyRecord
    principal: Principal
    project: Project


@dataclass(frozen=True, slots=True)
class Owner:
    """Whom a new key is for: ``("member", email)``, ``("service_account", name)`` or the project."""

    kind: str = "project"
    name: str | None = None


class KeyService:
    """Create, list, rotate and revoke keys; the one place every surface changes keys."""

    def __init__(self, engine: Engine, secret: bytes, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._secret = secret
        self._clock = clock or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self._clock()

    def create(
        self,
        project: str,
        name: str = "default",
        expires_in: timedelta | None = None,
        *,
        owner: Owner | None = None,
        actor: str = "cli",
    ) -> tuple[KeyRecord, str]:
        """Issue a key; return its record and the plaintext, which is never stored."""
        owner = owner or Owner()
        with self._engine.begin() as connection:
            found = org_repo.project(connection, project)
            if found is None:
                raise NotFound(
                    f"Project '{project}' does not exist; declare it under 'projects:' in the config file "
                    "and run 'bastion apply', or create it with 'bastion projects create'."
                )
            principal_id, ttl = _owner(connection, found, owner)
            record, plaintext = self._insert(
                connection, found, name, (owner.kind, principal_id), _lifetime(expires_in, ttl)
            )
            _event(connection, self._clock(), actor, "key.create", record)
        return record, plaintext

    def _insert(
        self,
        connection: Connection,
        project: Project,
        name: str,
        principal: tuple[str, str | None],
        life: timedelta | None,
    ) -> tuple[KeyRecord, str]:
        plaintext = generate_key()
        now = self._clock()
        key_id = "key_" + secrets.token_hex(8)
        repo.insert_key(
            connection,
            {
                "id": key_id,
                "project_id": project.id,
                "principal_type": principal[0],
                "principal_id": principal[1],
                "name": name,
                "prefix": plaintext[:VISIBLE],
                "hash": hash_key(self._secret, plaintext),
                "status": "active",
                "created_at": now,
                "expires_at": now + life if life else None,
            },
        )
        return KeyRecord.from_row(repo.key_by_id(connection, key_id)), plaintext

    def get(self, key_id: str) -> KeyRecord:
        with self._engine.connect() as connection:
            return _key(connection, key_id)

    def list_keys(self, project: str | None = None, principal_id: str | None = None) -> list[KeyRecord]:
        k = tables.api_keys
        where = None
        if project is not None:
            where = tables.projects.c.name == project
        if principal_id is not None:
            where = k.c.principal_id == principal_id if where is None else where & (k.c.principal_id == principal_id)
        with self._engine.connect() as connection:
            return [KeyRecord.from_row(row) for row in repo.list_keys(connection, where)]

    def revoke(self, key_id: str, actor: str = "cli") -> KeyRecord:
        """Revoke ``key_id``; every gateway process refuses it from its next request on."""
        with self._engine.begin() as connection:
            before = _key(connection, key_id)
            if before.status != "revoked":
                repo.update_key(connection, key_id, status="revoked", revoked_at=self._clock())
            after = _key(connection, key_id)
            _event(connection, self._clock(), actor, "key.revoke", after, before)
        return after

    def rotate(self, key_id: str, overlap: timedelta = DEFAULT_OVERLAP, actor: str = "cli") -> tuple[KeyRecord, str]:
        """Issue a replacement; the old key keeps working until ``overlap`` ends, then gets ``key_expired``."""
        now = self._clock()
        with self._engine.begin() as connection:
            old = _key(connection, key_id)
            if old.effective_status(now) != "active":
                raise InvalidParameter(
                    f"Key {old.prefix}… is {old.effective_status(now)}; only an active key can be rotated.", param="id"
                )
            project = org_repo.project(connection, old.project)
            if project is None:
                raise NotFound(f"Key {old.prefix}… belongs to a deleted project; it cannot be rotated.")
            life = old.expires_at - old.created_at if old.expires_at else None
            new, plaintext = self._insert(connection, project, old.name, (old.principal_type, old.principal_id), life)
            ends = min(old.expires_at, now + overlap) if old.expires_at else now + overlap
            repo.update_key(connection, old.id, status="rotating", expires_at=ends, rotated_to=new.id)
            _event(connection, now, actor, "key.rotate", _key(connection, old.id), old, detail={"replacement": new.id})
        return new, plaintext

    def due(self, within: timedelta) -> list[tuple[KeyRecord, str]]:
        """Keys that expire within ``within`` or pass their project's maximum age by then, with the reason."""
        now = self._clock()
        horizon = now + within
        with self._engine.connect() as connection:
            ages = {p.name: p.key_max_age for p in org_repo.projects(connection)}
            records = [KeyRecord.from_row(row) for row in repo.list_keys(connection)]
        due: list[tuple[KeyRecord, str]] = []
        for record in records:
            if record.effective_status(now) not in ("active", "rotating"):
                continue
            max_age = ages.get(record.project)
            if record.expires_at is not None and record.expires_at <= horizon:
                due.append((record, f"expires at {_time(record.expires_at)}"))
            elif max_age is not None and record.created_at + max_age <= horizon:
                due.append((record, f"reaches the project's maximum age at {_time(record.created_at + max_age)}"))
        return due

    def caller(self, digest: str) -> Caller | KeyRecord | None:
        """Resolve a key's hash to its caller (blocking; the gateway calls it through :class:`CallerCache`).

        A key whose project or holder is gone comes back as its bare record, so that the refusal
        can still say why (revoked, expired) instead of "unknown key".
        """
        with self._engine.connect() as connection:
            row = repo.key_by_hash(connection, digest)
            if row is None:
                return None
            record = KeyRecord.from_row(row)
            project = org_repo.project_by_id(connection, row["project_id"])
            principal = _principal(connection, record, project) if project else None
        if project is None or principal is None:
            return record
        return Caller(record, principal, project)

    def digest(self, plaintext: str) -> str:
        return hash_key(self._secret, plaintext)

    def touch(self, used: dict[str, datetime]) -> None:
        """Record last use of keys (called in batches, off the request path)."""
        with self._engine.begin() as connection:
            org_repo.touch_keys(connection, used)


def _key(connection: Connection, key_id: str) -> KeyRecord:
    row = repo.key_by_id(connection, key_id)
    if row is None:
        raise NotFound(f"No key has the id '{key_id}'; list keys with 'bastion keys list'.")
    return KeyRecord.from_row(row)


def _lifetime(requested: timedelta | None, ttl: timedelta | None) -> timedelta | None:
    if requested is not None and requested <= timedelta(0):
        raise InvalidParameter("The key's lifetime must be positive.", param="expires_in")
    if ttl is None:
        return requested
    if requested is not None and requested > ttl:
        raise InvalidParameter(
            f"The service account allows keys of at most {ttl.days}d; ask for a shorter lifetime.", param="expires_in"
        )
    return requested or ttl


def _owner(connection: Connection, project: Project, owner: Owner) -> tuple[str | None, timedelta | None]:
    """The principal id for a new key and the longest lifetime it may have."""
    if owner.kind == "project":
        return None, None
    if owner.kind == "service_account":
        account = org_repo.service_account(connection, owner.name or "")
        if account is None or account.project != project.name:
            raise NotFound(f"Project '{project.name}' has no service account named '{owner.name}'.")
        return account.id, account.key_ttl
    member = org_repo.member(connection, (owner.name or "").lower())
    if member is None or member.project_role(project.name) is None:
        raise NotFound(f"'{owner.name}' is not a member of project '{project.name}'.")
    return member.id, None


def _principal(connection: Connection, record: KeyRecord, project: Project) -> Principal | None:
    if record.principal_type == "project":
        return Principal("project", project.name, project.name, frozenset(PERMISSIONS))
    if record.principal_type == "service_account":
        account = org_repo.service_account_by_id(connection, record.principal_id or "")
        if account is None:
            return None
        return Principal(
            "service_account",
            account.id,
            account.name,
            frozenset(account.permissions),
            networks(account.ip_allowlist),
            account.limits,
        )
    member = org_repo.member_by_id(connection, record.principal_id or "")
    if member is None:
        return None
    role = member.project_role(project.name)
    return Principal(
        "member",
        member.id,
        member.email,
        ROLE_PERMISSIONS.get(role or "", frozenset()),
        networks(member.ip_allowlist),
        member.limits,
        member.role,
        role,
    )


def _event(
    connection: Connection,
    at: datetime,
    actor: str,
    action: str,
    after: KeyRecord,
    before: KeyRecord | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    events.record(
        connection,
        at,
        actor,
        action,
        ("key", after.id),
        after.project,
        before.to_json(at) if before else None,
        {**after.to_json(at), **(detail or {})},
    )
