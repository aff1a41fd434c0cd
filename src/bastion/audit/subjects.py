"""Pseudonymous references to people in audit entries: ``subj_<hex>`` stands where an email address would.

A person's reference is HMAC-SHA-256 of their normalised identifier under their own subject key: the
audit key of scope ``subject:<HMAC(index key, identifier)>``, where the index key is itself an audit
key sealed with the server secret, so neither the entries nor the key table name anyone. Erasing a
person shreds their subject key: every entry and proof stays as it is, but the reference can no
longer be computed, so nobody can link the entries to them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bastion.audit.keys import key_in
from bastion.errors import NotFound
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from sqlalchemy import Connection, Engine

    from bastion.audit.keys import AuditKeys

INDEX = "subject-index"
PREFIX = "subj_"
_OPTION = "bastion_audit_keys"
# An address as the config file accepts one (local@domain.tld), found inside any string ("member:ann@acme.com").
# Reserved ".invalid"-style placeholders without a dot in the domain ("erased-mem_1@invalid") are not addresses.
_EMAIL = re.compile(r"[^@\s:,;<>()\[\]\"']{1,64}@[^@\s:,;<>()\[\]\"']+\.[^@\s:,;<>()\[\]\"'.]+")


def normalise(identifier: str) -> str:
    """The form every reference is computed from: addresses compare case-insensitively."""
    return identifier.strip().lower()


def addresses(text: str) -> set[str]:
    """Every email address in ``text``, normalised."""
    return {normalise(found) for found in _EMAIL.findall(text)}


def scope_of(index: bytes, identifier: str) -> str:
    """The audit-key scope of a subject; it names nobody without the index key."""
    return "subject:" + _mac(index, identifier)[:40]


def ref_of(key: bytes, identifier: str) -> str:
    """The subject's reference as entries carry it, computed with their subject key."""
    return PREFIX + _mac(key, identifier)[:32]


def _mac(key: bytes, identifier: str) -> str:
    return hmac.new(key, normalise(identifier).encode(), hashlib.sha256).hexdigest()


def attach(engine: Engine, keys: AuditKeys) -> None:
    """Hand the audit keys to every admin event written on ``engine`` (once, where the store is opened)."""
    engine.update_execution_options(**{_OPTION: keys})


def _keys_of(connection: Connection) -> AuditKeys:
    keys: AuditKeys | None = connection.get_execution_options().get(_OPTION)
    if keys is None:
        raise RuntimeError("admin events need the audit keys on the engine; open the store with open_services()")
    return keys


@dataclass
class _Pseudonyms:
    """References for one transaction's entry, making keys on first use inside that transaction."""

    connection: Connection
    keys: AuditKeys
    refs: dict[str, str] = field(default_factory=dict)

    def ref(self, identifier: str) -> str:
        name = normalise(identifier)
        if name not in self.refs:
            index = self._key(INDEX)
            self.refs[name] = ref_of(self._key(scope_of(index, name)), name)
        return self.refs[name]

    def walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return _EMAIL.sub(lambda match: self.ref(match.group()), value)
        if isinstance(value, dict):
            return {key: self.walk(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.walk(item) for item in value]
        return value

    def _key(self, scope: str) -> bytes:
        key = key_in(self.keys, self.connection, scope)
        if key is None:
            raise NotFound(f"The audit key of {scope} was shredded while this change was being recorded; retry it.")
        return key


def pseudonymise(
    connection: Connection, data: dict[str, Any], people: Iterable[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """``data`` with every email address replaced by its subject reference, and the references it names
    (with those of ``people``, identifiers the data names only indirectly), in order of first mention."""
    pseudonyms = _Pseudonyms(connection, _keys_of(connection))
    cleaned: dict[str, Any] = pseudonyms.walk(data)
    for person in people:
        for address in _EMAIL.findall(person):  # an erased member's placeholder is nobody's address
            pseudonyms.ref(address)
    return cleaned, list(dict.fromkeys(pseudonyms.refs.values()))


def cached_ref(keys: AuditKeys, identifier: str) -> str | None:
    """The reference from keys this process already holds (no I/O), or None: then call :func:`ref`."""
    index = keys.cached(INDEX)
    key = keys.cached(scope_of(index, identifier)) if index is not None else None
    return ref_of(key, identifier) if key is not None else None


def ref(keys: AuditKeys, identifier: str) -> str | None:
    """The subject's reference, making their key on first use (blocking); None once they were erased."""
    try:
        key = keys.key(scope_of(keys.key(INDEX), identifier))
    except NotFound:
        return None
    return ref_of(key, identifier)


@dataclass(frozen=True)
class Subject:
    """What the log knows of an identifier: its key scope, its reference, or when it was erased."""

    identifier: str
    scope: str | None = None  # None: nothing was ever recorded about anyone
    ref: str | None = None  # None: unknown or erased
    erased_at: datetime | None = None

    @property
    def status(self) -> str:
        if self.erased_at is not None:
            return "erased"
        return "linked" if self.ref is not None else "unknown"


def lookup(connection: Connection, keys: AuditKeys, identifier: str) -> Subject:
    """Find a subject without making any key (a report must not create what it reports on)."""
    name = normalise(identifier)
    index = key_in(keys, connection, INDEX, create=False)
    if index is None:
        return Subject(name)
    scope = scope_of(index, name)
    k = tables.audit_keys
    row = connection.execute(select(k.c.shredded_at).where(k.c.scope == scope)).one_or_none()
    if row is None:
        return Subject(name, scope)
    if row.shredded_at is not None:
        return Subject(name, scope, erased_at=row.shredded_at)
    key = key_in(keys, connection, scope, create=False)
    return Subject(name, scope, ref_of(key, name) if key is not None else None)
