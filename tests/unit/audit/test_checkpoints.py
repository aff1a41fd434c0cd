"""Checkpoints in the store: the signing key, signing only a grown log and never a rewritten one, the periodic
task, proofs served from the stored leaves, and verification of the store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select, text

from bastion.audit.checkpoint import Signer, verify_note
from bastion.audit.checkpoints import Checkpoints, CheckpointTask, Prover, audit_signer, verify_store
from bastion.audit.log import Record, append_in, head
from bastion.audit.merkle import Levels, verify_consistency, verify_inclusion
from bastion.config import parse_text, settings_from
from bastion.errors import AuditCorrupt, ConfigError
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

    from bastion.config import Settings
    from bastion.services import Services


def grow(engine: Engine, count: int) -> None:
    with engine.begin() as connection:
        append_in(connection, [Record("test.append", "writer:a", fields={"n": n}) for n in range(count)])


def leaves(engine: Engine) -> list[bytes]:
    e = tables.audit_entries
    with engine.connect() as connection:
        return [bytes.fromhex(leaf) for leaf in connection.execute(select(e.c.leaf).order_by(e.c.seq)).scalars()]


def checkpoints_of(services: Services, settings: Settings) -> Checkpoints:
    return Checkpoints(services.engine, audit_signer(settings), Prover(services.engine))


@pytest.mark.parametrize(
    ("text", "origin", "interval"),
    [
        ("organization: acme\n", "bastion.local/acme", 60),
        ("audit: {origin: audit.acme.com/bastion, checkpoint_interval: 5m}\n", "audit.acme.com/bastion", 300),
    ],
)
def test_the_audit_section_names_the_log_and_the_interval(text: str, origin: str, interval: int) -> None:
    settings = settings_from(parse_text(text, "bastion.yaml"), "bastion.yaml", {})
    assert settings.audit_origin == origin
    assert settings.file.audit.checkpoint_interval.total_seconds() == interval


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("audit:\n  origin: two words\n", "bastion.yaml:2: audit.origin: 'two words' must be one word without spaces"),
        ("audit:\n  origin: a+b\n", "bastion.yaml:2: audit.origin: 'a+b' must be one word"),
        ("audit:\n  checkpoint_interval: 0s\n", "bastion.yaml:2: audit.checkpoint_interval: '0s' is not a duration"),
    ],
)
def test_a_bad_audit_section_is_refused_with_its_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_text(text, "bastion.yaml")
    assert raised.value.message.startswith(message)


def test_the_key_file_is_created_private_and_reused(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(organization="acme")
    with pytest.raises(ConfigError, match="no default verifier key; pass --vkey"):
        audit_signer(settings, create=False)
    signer = audit_signer(settings)
    path = settings.home / "audit_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signer.name == "bastion.local/acme" == settings.audit_origin
    assert audit_signer(settings, create=False) == signer


def test_the_key_may_come_from_the_environment(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(audit={"origin": "audit.acme.com/bastion"})
    given = Signer.generate("audit.acme.com/bastion")
    from_env = audit_signer(replace(settings, audit_key=given.key_text))
    assert from_env == given
    assert not (settings.home / "audit_key").exists()
    wrong = replace(settings, audit_key=Signer.generate("other").key_text)
    with pytest.raises(ConfigError, match="BASTION_AUDIT_KEY is the key of log 'other'"):
        audit_signer(wrong)


def test_a_checkpoint_is_signed_only_when_the_log_grew(
    make_services: Callable[..., Services], make_settings: Callable[..., Settings], database_url: str
) -> None:
    services = make_services(database_url)
    checkpoints = checkpoints_of(services, make_settings(database_url))
    assert checkpoints.sign() is None  # an empty log: nothing to sign yet
    grow(services.engine, 5)
    first = checkpoints.sign()
    assert first is not None and checkpoints.sign() is None
    grow(services.engine, 3)
    second = checkpoints.ensure()
    assert checkpoints.ensure() == second  # nothing new: the newest one again, not a copy
    assert [(c.id, c.size) for c in checkpoints.all()] == [(first.id, 5), (second.id, 8)]
    with services.engine.connect() as connection:
        size, root = head(connection)
    signed = verify_note(second.note, [checkpoints.signer.verifier], origin=checkpoints.origin)
    assert (signed.size, signed.root) == (size, root) == (second.size, second.root)
    assert checkpoints.at(5) == first and checkpoints.latest() == second and checkpoints.at(6) is None


def test_replicas_signing_together_keep_one_checkpoint_per_size(
    make_services: Callable[..., Services], make_settings: Callable[..., Settings], database_url: str
) -> None:
    services = make_services(database_url)
    replicas = [checkpoints_of(services, make_settings(database_url)) for _ in range(6)]
    grow(services.engine, 9)
    with ThreadPoolExecutor(len(replicas)) as pool:
        signed = list(pool.map(lambda replica: replica.ensure(), replicas))
    assert {(c.id, c.size) for c in signed} == {(signed[0].id, 9)}
    assert len(replicas[0].all()) == 1


def test_an_empty_log_is_signed_on_demand(
    make_services: Callable[..., Services], make_settings: Callable[..., Settings]
) -> None:
    checkpoints = checkpoints_of(make_services(), make_settings())
    assert checkpoints.ensure().size == 0
    assert len(checkpoints.all()) == 1


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("UPDATE audit_head SET size = 4", "the log was truncated; Bastion will not sign it"),
        ("UPDATE audit_head SET root = '" + "ab" * 32 + "'", "the log was rewritten; Bastion will not sign it"),
    ],
)
def test_a_log_that_shrank_or_changed_is_not_signed(
    make_services: Callable[..., Services], make_settings: Callable[..., Settings], tamper: str, message: str
) -> None:
    services = make_services()
    checkpoints = checkpoints_of(services, make_settings())
    grow(services.engine, 6)
    checkpoints.ensure()
    with services.engine.begin() as connection:
        connection.execute(text(tamper))
    with pytest.raises(AuditCorrupt, match=message):
        checkpoints.sign()


def test_a_rewritten_history_is_not_signed(
    make_services: Callable[..., Services], make_settings: Callable[..., Settings]
) -> None:
    services = make_services()
    checkpoints = checkpoints_of(services, make_settings())
    grow(services.engine, 6)
    checkpoints.ensure()
    with services.engine.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET leaf = :leaf WHERE seq = 2"), {"leaf": "cd" * 32})
    grow(services.engine, 2)
    with pytest.raises(AuditCorrupt, match="does not extend checkpoint #1"):
        checkpoints_of(services, make_settings()).sign()


def test_proofs_from_the_store_match_the_tree_and_verify(make_services: Callable[..., Services]) -> None:
    engine = make_services().engine
    grow(engine, 2600)  # ten 256-leaf blocks and a partial eleventh; memoised subtrees up to height 11
    prover, levels = Prover(engine), Levels(leaves(engine))
    for size in (1, 2, 1023, 1024, 1025, 2048, 2600):
        assert prover.root(size) == levels.root(size)
    for index, size in ((0, 1), (5, 2600), (1024, 2600), (2599, 2600), (700, 1500)):
        proof = prover.inclusion(index, size)
        assert proof.proof == levels.inclusion_proof(index, size)
        verify_inclusion(index, size, proof.leaf, proof.proof, levels.root(size))
    for old, new in ((1, 2600), (1024, 2048), (1500, 2600), (2599, 2600)):
        proof = prover.consistency(old, new)
        verify_consistency(old, new, levels.root(old), levels.root(new), proof.proof)


def test_proofs_stay_right_as_the_log_grows_past_what_was_read(make_services: Callable[..., Services]) -> None:
    engine = make_services().engine
    grow(engine, 300)
    prover = Prover(engine)
    assert prover.root(300) == Levels(leaves(engine)).root()  # reads the partial tail block
    grow(engine, 250)
    levels = Levels(leaves(engine))
    assert prover.root(550) == levels.root()
    assert prover.inclusion(549, 550).proof == levels.inclusion_proof(549, 550)


def test_perfect_subtree_hashes_are_remembered(make_services: Callable[..., Services]) -> None:
    """Once read, a subtree of 256 leaves or more is never read again: it cannot change."""
    engine = make_services().engine
    grow(engine, 2100)
    prover = Prover(engine)
    before = prover.root(2048)
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET leaf = :leaf WHERE seq = 3"), {"leaf": "ef" * 32})
    assert prover.root(2048) == before
    assert Prover(engine).root(2048) != before


def test_verify_store_passes_an_untouched_log(
    make_services: Callable[..., Services], make_settings: Callable[..., Settings], database_url: str
) -> None:
    services = make_services(database_url)
    checkpoints = checkpoints_of(services, make_settings(database_url))
    for _ in range(3):
        grow(services.engine, 40)
        checkpoints.ensure()
    grow(services.engine, 7)
    report = verify_store(services.engine, [], [checkpoints.signer.verifier], checkpoints.origin)
    assert report.ok, report.findings
    assert report.summary() == (
        "verified 127 entries against 3 checkpoints; entries 120..126 are not yet covered by a checkpoint"
    )


class Ticks:
    """A stand-in for ``asyncio.sleep``: the interval passes when the test says so, never by waiting."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.waiting = asyncio.Event()
        self.passed = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.waiting.set()
        await self.passed.wait()
        self.passed.clear()

    async def elapse(self) -> None:
        """Let one interval pass, and return once the task has acted on it and waits again."""
        await self.waiting.wait()
        self.waiting.clear()
        self.passed.set()
        await self.waiting.wait()


@pytest.mark.anyio
async def test_the_task_signs_at_start_each_interval_while_the_log_grows_and_at_stop(
    make_services: Callable[..., Services], make_settings: Callable[..., Settings]
) -> None:
    services = make_services()
    checkpoints = checkpoints_of(services, make_settings())
    grow(services.engine, 2)  # written before this process started (or before a crash)
    ticks = Ticks()
    task = CheckpointTask(checkpoints, 60.0, ticks.wait)
    task.start()
    await ticks.waiting.wait()
    sizes = [[c.size for c in checkpoints.all()]]
    for count in (3, 0, 2):
        if count:
            grow(services.engine, count)
        await ticks.elapse()
        sizes.append([c.size for c in checkpoints.all()])
    assert sizes == [[2], [2, 5], [2, 5], [2, 5, 7]]  # the interval without growth signed nothing
    grow(services.engine, 1)
    await task.stop()
    assert [c.size for c in checkpoints.all()] == [2, 5, 7, 8]
    assert set(ticks.asked) == {60.0}


@pytest.mark.anyio
async def test_a_failed_tick_is_logged_and_the_task_goes_on(
    make_services: Callable[..., Services], make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    services = make_services()
    checkpoints = checkpoints_of(services, make_settings())
    grow(services.engine, 3)
    checkpoints.ensure()
    with services.engine.begin() as connection:
        connection.execute(text("UPDATE audit_head SET size = 1"))
    assert await CheckpointTask(checkpoints, 1.0).tick() is None
    assert "audit checkpoint not signed: The tree head says 1 entries but checkpoint #1 signed 3" in caplog.text
