"""Persisted placeholder vaults on SQLite and PostgreSQL: sealed at rest, shared by replicas through a
compare-and-set, expired after their TTL, and unreadable (so replaced) under another secret or project."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from tests.conftest import SECRET

from bastion.protect.vaults import VaultStore
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

    from bastion.protect.vaults import Stored
    from bastion.services import Services

TTL = timedelta(hours=1)
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ALICE, BOB, CAROL, DAVE = "alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"


@dataclass
class Clock:
    """Frozen time that a test moves by hand."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Store:
    """Two projects in a migrated store, and a factory of replicas: one ``VaultStore`` each, as each process has."""

    engine: Engine
    project: int
    other: int
    clock: Clock

    def replica(self, secret: str = SECRET) -> VaultStore:
        return VaultStore(self.engine, secret.encode(), clock=self.clock)

    def sealed(self, project: int) -> bytes:
        with self.engine.connect() as connection:
            row = connection.execute(select(tables.vaults.c.sealed).where(tables.vaults.c.project_id == project))
            return bytes(row.scalar_one())


@pytest.fixture
def store(make_services: Callable[..., Services], database_url: str) -> Store:
    services = make_services(database_url, projects=[{"name": "p"}, {"name": "q"}])
    return Store(services.engine, services.org.project("p").id, services.org.project("q").id, Clock())


def add(replica: VaultStore, project: int, base: Stored, *values: str) -> tuple[list[str], bool]:
    """One request on ``replica``: placeholders for ``values`` from ``base``, then the compare-and-set."""
    vault = base.start()
    placeholders = [vault.placeholder("EMAIL_ADDRESS", value) for value in values]
    return placeholders, replica.save(project, base, vault, TTL)


def protect(replica: VaultStore, project: int, value: str) -> str:
    """What the request path does: retry on a lost compare-and-set with the newer vault."""
    base = replica.current(project)
    while True:
        (placeholder,), saved = add(replica, project, base, value)
        if saved:
            return placeholder
        base = replica.reload(project)


def mapping(store: Store) -> dict[str, str]:
    """The project's vault as a fresh replica reads it from the store."""
    return store.replica().reload(store.project).vault.mapping()


def test_a_vault_round_trips_through_the_store_sealed(store: Store) -> None:
    first = store.replica()
    assert first.current(store.project).version == 0
    assert add(first, store.project, first.current(store.project), ALICE, BOB, ALICE) == (
        ["[EMAIL_ADDRESS_1]", "[EMAIL_ADDRESS_2]", "[EMAIL_ADDRESS_1]"],
        True,
    )
    second = store.replica()  # another process: reads the store, not the first one's memory
    base = second.current(store.project)
    assert (base.version, base.vault.mapping()) == (1, {"EMAIL_ADDRESS_1": ALICE, "EMAIL_ADDRESS_2": BOB})
    vault = base.start()
    assert [vault.placeholder("EMAIL_ADDRESS", v) for v in ("BOB@example.com", CAROL)] == [
        "[EMAIL_ADDRESS_2]",
        "[EMAIL_ADDRESS_3]",
    ]
    assert vault.used().mapping() == {"EMAIL_ADDRESS_2": BOB, "EMAIL_ADDRESS_3": CAROL}  # what this request restores
    assert len(base.vault) == 2  # the request's copy grew, the project's base did not
    sealed = store.sealed(store.project)
    for value in (ALICE, BOB, "alice", "EMAIL_ADDRESS"):
        assert value.encode() not in sealed


def test_projects_do_not_share_a_vault(store: Store) -> None:
    replica = store.replica()
    add(replica, store.project, replica.current(store.project), ALICE)
    assert replica.current(store.other).vault.mapping() == {}
    assert add(replica, store.other, replica.current(store.other), BOB) == (["[EMAIL_ADDRESS_1]"], True)
    assert mapping(store) == {"EMAIL_ADDRESS_1": ALICE}


def test_a_vault_sealed_for_one_project_does_not_open_for_another(store: Store) -> None:
    replica = store.replica()
    add(replica, store.project, replica.current(store.project), ALICE)
    add(replica, store.other, replica.current(store.other), BOB)
    with store.engine.begin() as connection:  # someone copies project p's blob over project q's
        connection.execute(
            tables.vaults.update()
            .where(tables.vaults.c.project_id == store.other)
            .values(sealed=store.sealed(store.project))
        )
    assert store.replica().reload(store.other).vault.mapping() == {}


def test_a_vault_expires_its_ttl_after_the_last_value_added(store: Store) -> None:
    replica = store.replica()
    add(replica, store.project, replica.current(store.project), ALICE)
    store.clock.now = START + timedelta(minutes=40)
    add(replica, store.project, replica.reload(store.project), BOB)  # renews the whole vault's TTL
    store.clock.now = START + TTL + timedelta(minutes=30)
    assert mapping(store) == {"EMAIL_ADDRESS_1": ALICE, "EMAIL_ADDRESS_2": BOB}
    store.clock.now = START + timedelta(minutes=40) + TTL
    expired = store.replica().reload(store.project)
    assert (expired.vault.mapping(), expired.version) == ({}, 2)
    # A fresh vault: numbering starts again, written over the expired one.
    assert add(replica, store.project, expired, CAROL) == (["[EMAIL_ADDRESS_1]"], True)
    assert mapping(store) == {"EMAIL_ADDRESS_1": CAROL}


def test_the_replica_that_wrote_a_vault_also_lets_it_expire(store: Store) -> None:
    """``current`` answers from memory; past the TTL it must not keep handing out (or restoring) old values."""
    replica = store.replica()
    add(replica, store.project, replica.current(store.project), ALICE)
    store.clock.now = START + TTL + timedelta(seconds=1)
    assert store.replica().current(store.project).vault.mapping() == {}  # another process: expired
    assert replica.current(store.project).vault.mapping() == {}  # the writer itself


def test_a_lost_compare_and_set_never_gives_one_number_two_values(store: Store) -> None:
    east, west = store.replica(), store.replica()
    east_base, west_base = east.current(store.project), west.current(store.project)
    assert add(east, store.project, east_base, ALICE) == (["[EMAIL_ADDRESS_1]"], True)
    # West read the same (empty) vault and numbers Bob 1 too: its first write must lose.
    assert add(west, store.project, west_base, BOB) == (["[EMAIL_ADDRESS_1]"], False)
    assert mapping(store) == {"EMAIL_ADDRESS_1": ALICE}
    assert add(west, store.project, west.reload(store.project), BOB) == (["[EMAIL_ADDRESS_2]"], True)
    # Both at version 2 now; again both add a value, and the update (not the insert) must lose.
    east_base, west_base = east.reload(store.project), west.current(store.project)
    assert east_base.version == west_base.version == 2
    assert add(east, store.project, east_base, CAROL) == (["[EMAIL_ADDRESS_3]"], True)
    assert add(west, store.project, west_base, DAVE) == (["[EMAIL_ADDRESS_3]"], False)
    assert protect(west, store.project, DAVE) == "[EMAIL_ADDRESS_4]"
    assert mapping(store) == {
        "EMAIL_ADDRESS_1": ALICE,
        "EMAIL_ADDRESS_2": BOB,
        "EMAIL_ADDRESS_3": CAROL,
        "EMAIL_ADDRESS_4": DAVE,
    }


def test_replicas_writing_at_once_agree_on_every_number(store: Store) -> None:
    replicas = [store.replica() for _ in range(4)]
    values = [[f"user{r}.{i}@example.com" for i in range(6)] for r in range(len(replicas))]
    handed: dict[str, str] = {}
    lock = threading.Lock()
    start = threading.Barrier(len(replicas))

    def work(replica: VaultStore, mine: list[str]) -> None:
        start.wait()
        for value in mine:
            placeholder = protect(replica, store.project, value)
            with lock:
                handed[value] = placeholder

    threads = [threading.Thread(target=work, args=pair) for pair in zip(replicas, values, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [value for mine in values for value in mine]
    assert sorted(handed) == sorted(every)
    assert len(set(handed.values())) == len(every)  # no number handed out for two values
    stored = mapping(store)
    assert {f"[{name}]": value for name, value in stored.items()} == {p: v for v, p in handed.items()}


def test_a_vault_under_another_secret_is_replaced_by_a_fresh_one(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    old = store.replica()
    add(old, store.project, old.current(store.project), ALICE)
    rotated = store.replica("t" * 64)
    with caplog.at_level(logging.WARNING, logger="bastion.protect.vaults"):
        base = rotated.current(store.project)
    assert (base.vault.mapping(), base.version) == ({}, 1)
    assert f"project id {store.project}" in caplog.text
    assert ALICE not in caplog.text
    assert add(rotated, store.project, base, BOB) == (["[EMAIL_ADDRESS_1]"], True)
    assert rotated.reload(store.project).vault.mapping() == {"EMAIL_ADDRESS_1": BOB}
    assert old.reload(store.project).vault.mapping() == {}  # and the old secret cannot read the new one


def test_a_dropped_vault_is_gone_for_every_replica(store: Store) -> None:
    replica = store.replica()
    add(replica, store.project, replica.current(store.project), ALICE)
    replica.drop(store.project)
    assert replica.current(store.project).vault.mapping() == {}
    assert store.replica().current(store.project).version == 0
    assert add(replica, store.project, replica.current(store.project), BOB) == (["[EMAIL_ADDRESS_1]"], True)
