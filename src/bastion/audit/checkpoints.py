"""Checkpoints in the store: sign the tree head, keep every signed note, sign periodically while the log grows,
and serve inclusion and consistency proofs from the stored leaf hashes.

The signing key comes from ``BASTION_AUDIT_KEY`` or ``$BASTION_HOME/audit_key`` (created with mode 0600), never
the database. Before signing, the head is proved consistent with the newest checkpoint, so Bastion never signs
a rewritten or truncated log. Perfect-subtree hashes never change once their leaves exist, so the prover
memoises them (from height ``MEMO_HEIGHT`` up) and reads leaves only for the small subtrees below.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from bastion.audit.checkpoint import load_or_create_key, sign_checkpoint, signer_from_env
from bastion.audit.export import BATCH, stored_entries
from bastion.audit.merkle import (
    Levels,
    ProofError,
    consistency_proof_from,
    inclusion_proof_from,
    node_hash,
    root_from,
    verify_consistency,
)
from bastion.audit.verify import Note, Verification
from bastion.errors import AuditCorrupt, ConfigError
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from sqlalchemy import Connection, Engine

    from bastion.audit.checkpoint import Signer, Verifier
    from bastion.audit.verify import Report
    from bastion.config import Settings

log = logging.getLogger(__name__)

KEY_FILE = "audit_key"
MEMO_HEIGHT = 8  # subtrees of 256 leaves and up are remembered: about 2 hashes (~300 bytes) per 256 entries
BLOCKS = 256  # 256-leaf blocks kept for the subtrees below MEMO_HEIGHT: about 4 MB


def audit_signer(settings: Settings, *, create: bool = True) -> Signer:
    """The log's signing key: ``BASTION_AUDIT_KEY``, else the key file in ``BASTION_HOME`` (made if ``create``)."""
    origin = settings.audit_origin
    if settings.audit_key:
        signer = signer_from_env(settings.audit_key, variable="BASTION_AUDIT_KEY")
        if signer.name != origin:
            raise ConfigError(
                f"BASTION_AUDIT_KEY is the key of log {signer.name!r}, but the audit origin is {origin!r}; "
                "set audit.origin to the key's name, or give the key of this log."
            )
        return signer
    path = settings.home / KEY_FILE
    if not create and not path.exists():
        raise ConfigError(
            f"No audit signing key at {path} and BASTION_AUDIT_KEY is not set, so there is no default verifier key; "
            "pass --vkey or --vkey-file (the key that 'bastion audit checkpoint --vkey' printed)."
        )
    return load_or_create_key(path, origin)


@dataclass(frozen=True)
class StoredCheckpoint:
    """A row of ``audit_checkpoints``: what was signed, the signed note, and when."""

    id: int
    size: int
    root: bytes
    note: str
    created_at: datetime

    @property
    def label(self) -> str:
        return f"#{self.id}"


@dataclass(frozen=True)
class InclusionProof:
    """That the entry ``text`` is leaf ``index`` of the tree of ``size`` leaves with ``root``."""

    index: int
    size: int
    leaf: bytes
    proof: list[bytes]
    root: bytes
    text: str

    def to_json(self, note: str | None = None) -> dict[str, Any]:
        """What ``/audit/v1/proof/inclusion`` and ``bastion audit prove`` show; hashes in base64."""
        return {
            "index": self.index,
            "size": self.size,
            "leaf_hash": _b64(self.leaf),
            "proof": [_b64(hashed) for hashed in self.proof],
            "root": _b64(self.root),
            "entry": self.text,
            "checkpoint": note,
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """That the tree of ``old_size`` leaves (``old_root``) is a prefix of the one of ``new_size`` (``new_root``)."""

    old_size: int
    new_size: int
    proof: list[bytes]
    old_root: bytes
    new_root: bytes

    def to_json(self) -> dict[str, Any]:
        """What ``/audit/v1/proof/consistency`` shows; hashes in base64."""
        return {
            "from": self.old_size,
            "to": self.new_size,
            "proof": [_b64(hashed) for hashed in self.proof],
            "from_root": _b64(self.old_root),
            "to_root": _b64(self.new_root),
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def head_of(connection: Connection, *, lock: bool = False) -> tuple[int, bytes]:
    """The tree head's size and root; ``lock`` takes the head's row lock, as appends do, until the commit."""
    head = tables.audit_head
    if lock:
        query = update(head).where(head.c.id == 1).values(size=head.c.size).returning(head.c.size, head.c.root)
        row = connection.execute(query).one()
    else:
        row = connection.execute(select(head.c.size, head.c.root).where(head.c.id == 1)).one()
    return int(row.size), bytes.fromhex(row.root)


class Prover:
    """Roots and proofs for any tree size up to the head, from the ``leaf`` column of ``audit_entries``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._memo: dict[tuple[int, int], bytes] = {}
        self._blocks: OrderedDict[int, Levels] = OrderedDict()
        self._lock = threading.Lock()

    def head(self) -> tuple[int, bytes]:
        with self._engine.connect() as connection:
            return head_of(connection)

    def root(self, size: int) -> bytes:
        return root_from(size, self.subtree)

    def inclusion(self, index: int, size: int) -> InclusionProof:
        """The proof for entry ``index`` in the tree of ``size`` entries (``size`` at most the head's)."""
        proof = inclusion_proof_from(index, size, self.subtree)
        e = tables.audit_entries
        with self._engine.connect() as connection:
            row = connection.execute(select(e.c.entry, e.c.leaf).where(e.c.seq == index)).one_or_none()
        if row is None:
            raise AuditCorrupt(f"Entry {index} is not in the store; run 'bastion audit verify'.")
        return InclusionProof(index, size, bytes.fromhex(row.leaf), proof, self.root(size), row.entry)

    def consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """The proof that the tree of ``old_size`` entries is a prefix of the one of ``new_size``."""
        proof = consistency_proof_from(old_size, new_size, self.subtree)
        return ConsistencyProof(old_size, new_size, proof, self.root(old_size), self.root(new_size))

    def subtree(self, start: int, height: int) -> bytes:
        """The hash of the perfect subtree over entries [start, start + 2**height)."""
        found = self._memo.get((start, height))
        if found is not None:
            return found
        if height < MEMO_HEIGHT:
            return self._block(start, height).subtree(start % (1 << MEMO_HEIGHT), height)
        half = 1 << (height - 1)
        left, right = self._memo.get((start, height - 1)), self._memo.get((start + half, height - 1))
        if left is not None and right is not None:
            self._memo[(start, height)] = hashed = node_hash(left, right)
            return hashed
        return self._load(start, height)

    def _load(self, start: int, height: int) -> bytes:
        """Read the subtree's leaves once and remember every subtree inside it from ``MEMO_HEIGHT`` up."""
        levels = Levels(self._leaves(start, 1 << height))
        for level in range(MEMO_HEIGHT, height + 1):
            for offset in range(0, 1 << height, 1 << level):
                self._memo[(start + offset, level)] = levels.subtree(offset, level)
        return levels.subtree(0, height)

    def _block(self, start: int, height: int) -> Levels:
        """The levels of the aligned block of ``2**MEMO_HEIGHT`` entries holding the subtree at ``start``.

        The newest few blocks are kept; the tail block is read again only once it lacks the leaves asked for.
        """
        first = start >> MEMO_HEIGHT << MEMO_HEIGHT
        needed = start - first + (1 << height)
        with self._lock:
            cached = self._blocks.get(first)
            if cached is not None and cached.size >= needed:
                self._blocks.move_to_end(first)
                return cached
        levels = Levels(self._leaves(first, 1 << MEMO_HEIGHT, partial=True))
        with self._lock:
            self._blocks[first] = levels
            self._blocks.move_to_end(first)
            while len(self._blocks) > BLOCKS:
                self._blocks.popitem(last=False)
        return levels

    def _leaves(self, start: int, count: int, *, partial: bool = False) -> list[bytes]:
        """The leaf hashes of entries [start, start + count); only the first ones may exist when ``partial``."""
        e = tables.audit_entries
        query = select(e.c.seq, e.c.leaf).where(e.c.seq >= start, e.c.seq < start + count).order_by(e.c.seq)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        if any(row.seq != start + offset for offset, row in enumerate(rows)) or not (partial or len(rows) == count):
            raise AuditCorrupt(
                f"The store lacks some of entries {start}..{start + count - 1}; run 'bastion audit verify'."
            )
        return [bytes.fromhex(row.leaf) for row in rows]


class Checkpoints:
    """Every signed checkpoint of the log, and the signing of new ones."""

    def __init__(
        self, engine: Engine, signer: Signer, prover: Prover, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._engine = engine
        self.signer = signer
        self.prover = prover
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def origin(self) -> str:
        return self.signer.name

    def latest(self) -> StoredCheckpoint | None:
        return next(iter(self.stored(self._engine, limit=1)), None)

    def at(self, size: int) -> StoredCheckpoint | None:
        """The newest stored checkpoint of tree size ``size``."""
        return next(iter(self.stored(self._engine, size=size, limit=1)), None)

    def all(self) -> list[StoredCheckpoint]:
        """Every stored checkpoint, oldest first."""
        return list(
            reversed(
                self.stored(
                    self._engine,
                )
            )
        )

    def sign(self) -> StoredCheckpoint | None:
        """Sign and keep a checkpoint of the head if the log grew since the newest one; None if it did not."""
        latest = self.latest()  # before the head: a checkpoint signed meanwhile elsewhere is never ahead of it
        size, root = self.prover.head()
        if latest is None:
            return self._insert(size, root) if size else None
        if latest.size >= size:
            self._check_same(latest, size, root)
            return None
        self._check_extends(latest, size, root)
        return self._insert(size, root)

    def ensure(self) -> StoredCheckpoint:
        """The checkpoint of the head as it stands: signed now, or the newest one if the log has not grown."""
        signed = self.sign() or self.latest()
        return signed if signed is not None else self._insert(*self.prover.head())  # an empty log, never signed

    def _insert(self, size: int, root: bytes) -> StoredCheckpoint:
        note = sign_checkpoint(self.signer, self.origin, size, root)
        c = tables.audit_checkpoints
        created = self._clock()
        with self._engine.begin() as connection:
            head_of(connection, lock=True)  # one signer at a time across processes: no duplicate checkpoints
            newest = connection.execute(select(c.c.size).order_by(c.c.id.desc()).limit(1)).scalar_one_or_none()
            if newest is not None and newest >= size:  # another process signed it meanwhile
                new_id = None
            else:
                values = {"size": size, "root": root.hex(), "note": note, "created_at": created}
                new_id = connection.execute(c.insert().values(**values).returning(c.c.id)).scalar_one()
        if new_id is None:
            return self.stored(self._engine, limit=1)[0]
        log.info("signed audit checkpoint #%s at tree size %s", new_id, size)
        return StoredCheckpoint(new_id, size, root, note, created)

    def _check_same(self, latest: StoredCheckpoint, size: int, root: bytes) -> None:
        if size < latest.size:
            raise AuditCorrupt(
                f"The tree head says {size} entries but checkpoint {latest.label} signed {latest.size}: "
                "the log was truncated; Bastion will not sign it. Run 'bastion audit verify'."
            )
        if root != latest.root:
            raise AuditCorrupt(
                f"The tree head's root at size {size} differs from checkpoint {latest.label}'s: the log was "
                "rewritten; Bastion will not sign it. Run 'bastion audit verify'."
            )

    def _check_extends(self, latest: StoredCheckpoint, size: int, root: bytes) -> None:
        proof = self.prover.consistency(latest.size, size)
        try:
            verify_consistency(latest.size, size, latest.root, root, proof.proof)
        except ProofError as exc:
            raise AuditCorrupt(
                f"The log at size {size} does not extend checkpoint {latest.label} ({exc}); Bastion will not sign "
                "a rewritten history. Run 'bastion audit verify'."
            ) from exc

    @staticmethod
    def stored(engine: Engine, *, size: int | None = None, limit: int | None = None) -> list[StoredCheckpoint]:
        """Stored checkpoints, newest first (of tree size ``size`` only, if given)."""
        c = tables.audit_checkpoints
        query = select(c).order_by(c.c.id.desc()).limit(limit)
        if size is not None:
            query = query.where(c.c.size == size)
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        return [StoredCheckpoint(r.id, r.size, bytes.fromhex(r.root), r.note, r.created_at) for r in rows]


def verify_store(engine: Engine, extra: Sequence[Note], verifiers: Sequence[Verifier], origin: str) -> Report:
    """``bastion audit verify`` on the store: every entry against its leaf column, the head and the checkpoints.

    Checkpoints are read before the head and the head before the entries, so that a gateway appending meanwhile
    never looks like tampering: a checkpoint is never ahead of the head read after it, and rows appended while
    reading are allowed up to the head's size read again at the end.
    """
    stored = [Note(f"#{c.id}", c.note) for c in Checkpoints.stored(engine)]
    with engine.connect() as connection:
        head = head_of(connection)
    verification = Verification([*stored, *extra], verifiers, origin=origin, head=head)
    batch: list[tuple[bytes, str]] = []
    for entry in stored_entries(engine):
        batch.append((entry.text.encode(), entry.leaf))
        if len(batch) == BATCH:
            verification.add_stored(batch)
            batch = []
    verification.add_stored(batch)
    with engine.connect() as connection:
        verification.grown_to = head_of(connection)[0]
    return verification.finish()


class CheckpointTask:
    """Signs a checkpoint at start, every ``interval`` seconds while the log grows, and once more when stopping."""

    def __init__(
        self, checkpoints: Checkpoints, interval: float, wait: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self._checkpoints = checkpoints
        self._interval = interval
        self._wait = wait
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self.tick()

    async def tick(self) -> StoredCheckpoint | None:
        """Sign now if the log grew; a failure is logged (the next tick tries again), never raised."""
        try:
            return await asyncio.to_thread(self._checkpoints.sign)
        except (SQLAlchemyError, AuditCorrupt) as exc:
            log.error("audit checkpoint not signed: %s", getattr(exc, "message", type(exc).__name__))
            return None

    async def _run(self) -> None:
        while True:
            # At start too: a log that grew while Bastion was down (or crashed) is signed at once, and the
            # consistency proof this needs reads the leaves in the background, before any proof is asked for.
            await self.tick()
            await self._wait(self._interval)
