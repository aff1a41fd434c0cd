from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from bastion.errors import KeyExpired, KeyRevoked, NotFound
from bastion.identity.keys import KEY_PREFIX, KeyRecord, KeyService, generate_key, hash_key
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.services import Services

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def record(status: str = "active", expires_at: datetime | None = None) -> KeyRecord:
    return KeyRecord("key_1", "p", "project", None, "n", "bst_abcdefgh", "h" * 64, status, NOW, expires_at, None)


def test_keys_are_random_and_prefixed() -> None:
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(key.startswith(KEY_PREFIX) and len(key) > 40 for key in keys)


def test_hash_is_keyed_with_the_server_secret() -> None:
    key = generate_key()
    assert hash_key(b"a" * 32, key) == hash_key(b"a" * 32, key)
    assert hash_key(b"a" * 32, key) != hash_key(b"b" * 32, key)
    assert key not in hash_key(b"a" * 32, key)


@pytest.mark.parametrize(
    ("status", "expires_at", "at", "effective"),
    [
        ("active", None, NOW, "active"),
        ("active", NOW + timedelta(seconds=1), NOW, "active"),
        ("active", NOW, NOW, "expired"),
        ("revoked", None, NOW, "revoked"),
        ("revoked", NOW - timedelta(days=1), NOW, "revoked"),
    ],
)
def test_effective_status(status: str, expires_at: datetime | None, at: datetime, effective: str) -> None:
    assert record(status, expires_at).effective_status(at) == effective


def test_check_raises_the_matching_refusal() -> None:
    record().check(NOW)
    with pytest.raises(KeyExpired, match="it expired at 2026-11-01T12:00Z") as expired:
        record(expires_at=NOW).check(NOW)
    assert expired.value.code == "key_expired"
    with pytest.raises(KeyRevoked) as revoked:
        record("revoked").check(NOW)
    assert revoked.value.code == "key_revoked"


def service(make_services: Callable[..., Services], database_url: str) -> KeyService:
    opened = make_services(database_url, projects=[{"name": "alpha"}, {"name": "beta"}])
    return KeyService(opened.engine, b"k" * 32, clock=lambda: NOW)


def test_create_stores_only_a_keyed_hash(make_services: Callable[..., Services], database_url: str) -> None:
    keys = service(make_services, database_url)
    created, plaintext = keys.create("alpha", name="ci", expires_in=timedelta(days=30))
    assert created.project == "alpha" and created.name == "ci" and created.status == "active"
    assert created.expires_at == NOW + timedelta(days=30)
    assert plaintext.startswith(created.prefix)
    with keys._engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(select(tables.api_keys)).mappings()]
    assert len(rows) == 1
    assert plaintext not in repr(rows)
    assert rows[0]["hash"] == hash_key(b"k" * 32, plaintext)
    caller = keys.caller(keys.digest(plaintext))
    assert caller is not None
    assert (caller.key, caller.project.name, caller.principal.kind) == (created, "alpha", "project")


def test_list_and_revoke(make_services: Callable[..., Services], database_url: str) -> None:
    keys = service(make_services, database_url)
    a, _ = keys.create("alpha")
    b, _ = keys.create("beta")
    assert {k.id for k in keys.list_keys()} == {a.id, b.id}
    assert [k.id for k in keys.list_keys("beta")] == [b.id]
    revoked = keys.revoke(a.id)
    assert (revoked.status, revoked.revoked_at) == ("revoked", NOW)
    assert keys.revoke(a.id).revoked_at == NOW  # revoking twice changes nothing


def test_unknown_project_and_key_are_clear_errors(make_services: Callable[..., Services], database_url: str) -> None:
    keys = service(make_services, database_url)
    with pytest.raises(NotFound, match="Project 'gamma' does not exist"):
        keys.create("gamma")
    with pytest.raises(NotFound, match="No key has the id 'key_nope'"):
        keys.revoke("key_nope")
    assert keys.caller("0" * 64) is None
