"""RFC 6962 / RFC 9162 Merkle trees over leaf hashes: roots, inclusion and consistency proofs, and their checks.

Pure, no I/O. ``Tree`` is the append path (a compact range of perfect subtrees), ``Levels`` answers proofs over
a fixed list of leaf hashes, and the ``*_from`` functions build proofs from any store of perfect-subtree hashes.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"
_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof, root or size that does not check out; the message says which part and why."""


class SubtreeHash(Protocol):
    """The hash of the perfect subtree over leaves [start, start + 2**height); start is a multiple of 2**height."""

    def __call__(self, start: int, height: int, /) -> bytes: ...


def leaf_hash(data: bytes) -> bytes:
    """The hash of one entry as a leaf: SHA-256(0x00 || data)."""
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(_NODE + left + right).digest()


def root(hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a list of leaf hashes; SHA-256 of the empty string for no leaves."""
    _check_leaves(hashes)
    level = list(hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        # Pairing neighbours and carrying an odd last node up unchanged builds the same left-balanced
        # tree as the RFC's recursive split at the largest power of two below the size.
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(index: int, size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaf hashes (O(size) hashing)."""
    _check_leaves(hashes)
    _check_prefix(size, hashes)
    return inclusion_proof_from(index, size, _slices(hashes))


def consistency_proof(old_size: int, new_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of the tree of ``new_size`` leaves."""
    _check_leaves(hashes)
    _check_prefix(new_size, hashes)
    return consistency_proof_from(old_size, new_size, _slices(hashes))


def root_from(size: int, subtree: SubtreeHash) -> bytes:
    """The root of the tree of ``size`` leaves from perfect-subtree hashes: O(log size) lookups."""
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    return _range_hash(0, size, subtree) if size else EMPTY_ROOT


def inclusion_proof_from(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[size]), leaf sibling first, from perfect-subtree hashes."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        split = start + _left_width(end - start)
        if index < split:
            proof.append(_range_hash(split, end, subtree))
            end = split
        else:
            proof.append(subtree(start, (split - start).bit_length() - 1))
            start = split
    proof.reverse()
    return proof


def consistency_proof_from(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[new_size]) from perfect-subtree hashes; empty when nothing to prove."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"cannot prove tree size {old_size} consistent with tree size {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, whole = 0, new_size, True  # whole: the old tree is the current node itself (b in the RFC)
    while end != old_size:
        split = start + _left_width(end - start)
        if old_size <= split:
            proof.append(_range_hash(split, end, subtree))
            end = split
        else:
            proof.append(subtree(start, (split - start).bit_length() - 1))
            start, whole = split, False
    if not whole:
        proof.append(_range_hash(start, end, subtree))
    proof.reverse()
    return proof


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves whose root is ``root``."""
    _check_hash("the root", root)
    computed = root_from_inclusion(index, size, leaf_hash, proof)
    if computed != root:
        raise ProofError(
            f"the inclusion proof for leaf {index} leads to root {_show(computed)}, not {_show(root)}: "
            "the entry, the proof or the root is not the one the log holds"
        )


def root_from_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof implies (RFC 9162 §2.1.3.2), for callers that report it."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("the leaf hash", leaf_hash)
    _check_proof(proof)
    fn, sn, hashed = index, size - 1, leaf_hash
    for sibling in proof:
        if sn == 0:
            raise ProofError(_length_message("inclusion", len(proof), _inclusion_length(index, size)))
        if fn & 1 or fn == sn:
            hashed = node_hash(sibling, hashed)
            fn, sn = _climb(fn, sn)
        else:
            hashed = node_hash(hashed, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn:
        raise ProofError(_length_message("inclusion", len(proof), _inclusion_length(index, size)))
    return hashed


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``old_size`` leaves with ``old_root`` is a prefix of the one with ``new_root``."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"tree size {old_size} cannot be a prefix of tree size {new_size}")
    if old_size == new_size:
        _check_same_tree(old_size, old_root, new_root, proof)
        return
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing; check the new root instead")
    if not proof:
        raise ProofError(_length_message("consistency", 0, _consistency_length(old_size, new_size)))
    _check_hash("the old root", old_root)
    _check_hash("the new root", new_root)
    _check_proof(proof)
    old_computed, new_computed = _roots_from_consistency(old_size, new_size, old_root, proof)
    if old_computed != old_root:
        raise ProofError(
            f"the consistency proof leads to old root {_show(old_computed)}, not {_show(old_root)}: "
            f"the first {old_size} entries were changed, or the proof is wrong"
        )
    if new_computed != new_root:
        raise ProofError(
            f"the consistency proof leads to new root {_show(new_computed)}, not {_show(new_root)}: "
            f"the tree of size {new_size} does not extend the tree of size {old_size}"
        )


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2: the (old, new) roots the proof implies."""
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_hash = new_hash = path[0]
    for hashed in path[1:]:
        if sn == 0:
            raise ProofError(_length_message("consistency", len(proof), _consistency_length(old_size, new_size)))
        if fn & 1 or fn == sn:
            old_hash, new_hash = node_hash(hashed, old_hash), node_hash(hashed, new_hash)
            fn, sn = _climb(fn, sn)
        else:
            new_hash = node_hash(new_hash, hashed)
        fn, sn = fn >> 1, sn >> 1
    if sn:
        raise ProofError(_length_message("consistency", len(proof), _consistency_length(old_size, new_size)))
    return old_hash, new_hash


def _check_same_tree(size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    if proof:
        raise ProofError(f"trees of the same size {size} need an empty consistency proof, not {len(proof)} hashes")
    if size == 0 and not old_root == new_root == EMPTY_ROOT:
        raise ProofError(f"the root of the empty tree is {_show(EMPTY_ROOT)} (SHA-256 of nothing); got another")
    if old_root != new_root:
        raise ProofError(f"two different roots for tree size {size}: the log has forked or been rewritten")


class Levels:
    """Every perfect-subtree hash over a fixed list of leaf hashes, built bottom-up once in O(n).

    Each level is one ``bytes`` of concatenated 32-byte hashes (about 64 MB for 10**6 leaves). Roots and proofs
    for any tree size up to ``size`` then cost O(log n) lookups.
    """

    __slots__ = ("_levels",)

    def __init__(self, hashes: Sequence[bytes]) -> None:
        _check_leaves(hashes)
        level = b"".join(hashes)
        self._levels = [level]
        pair = 2 * HASH_SIZE
        while len(level) >= pair:
            level = b"".join(
                [_sha256(_NODE + level[i : i + pair]).digest() for i in range(0, len(level) - pair + 1, pair)]
            )
            self._levels.append(level)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0]) // HASH_SIZE

    def subtree(self, start: int, height: int) -> bytes:
        """The hash of the perfect subtree over leaves [start, start + 2**height)."""
        width = 1 << height if height >= 0 else 0
        if not width or start < 0 or start % width or start + width > self.size:
            raise ValueError(f"no perfect subtree of height {height} starts at leaf {start} in {self.size} leaves")
        offset = (start >> height) * HASH_SIZE
        return self._levels[height][offset : offset + HASH_SIZE]

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of the first ``size`` leaves (all of them by default)."""
        return root_from(self._size(size), self.subtree)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
        return inclusion_proof_from(index, self._size(size), self.subtree)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The proof that the tree of ``old_size`` leaves is a prefix of the tree of ``new_size`` leaves."""
        return consistency_proof_from(old_size, self._size(new_size), self.subtree)

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is not between 0 and the {self.size} leaves held")
        return size


class Tree:
    """An append-only Merkle tree that keeps only its compact range: the roots of its perfect subtrees.

    A tree of size n holds one perfect subtree per set bit of n, largest (leftmost) first, so its memory is
    O(log n), an append costs amortised O(1) hashes and the root O(log n). ``frontier()`` and ``restore()``
    carry that state to and from a store as (height, hash) pairs.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @classmethod
    def restore(cls, frontier: Iterable[tuple[int, bytes]]) -> Tree:
        """The tree whose ``frontier()`` this was; heights must strictly decrease."""
        tree = cls()
        previous: int | None = None
        for height, hashed in frontier:
            if height < 0 or (previous is not None and height >= previous):
                raise ValueError(f"frontier heights must strictly decrease and not be negative; got {height} next")
            _check_hash("a frontier hash", hashed, ValueError)
            tree._size += 1 << height
            tree._stack.append(hashed)
            previous = height
        return tree

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash; merges the perfect subtrees it completes."""
        _check_hash("a leaf hash", leaf_hash, ValueError)
        stack, carry, hashed = self._stack, self._size, leaf_hash
        while carry & 1:
            hashed = _sha256(_NODE + stack.pop() + hashed).digest()
            carry >>= 1
        stack.append(hashed)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order."""
        for hashed in leaf_hashes:
            self.append(hashed)

    def root(self) -> bytes:
        """The root of the tree as it stands."""
        return _fold(self._stack) if self._stack else EMPTY_ROOT

    def frontier(self) -> list[tuple[int, bytes]]:
        """The (height, hash) of each perfect subtree, leftmost (tallest) first: all a store needs to restore it."""
        heights = [h for h in range(self._size.bit_length() - 1, -1, -1) if self._size >> h & 1]
        return list(zip(heights, self._stack, strict=True))


def _range_hash(start: int, end: int, subtree: SubtreeHash) -> bytes:
    """The hash of the RFC subtree over [start, end): its perfect parts, largest first, folded right to left."""
    parts: list[bytes] = []
    width = end - start
    for height in range(width.bit_length() - 1, -1, -1):
        if width >> height & 1:
            parts.append(subtree(start, height))
            start += 1 << height
    return _fold(parts)


def _fold(parts: Sequence[bytes]) -> bytes:
    hashed = parts[-1]
    for part in reversed(parts[:-1]):
        hashed = _sha256(_NODE + part + hashed).digest()
    return hashed


def _slices(hashes: Sequence[bytes]) -> SubtreeHash:
    def subtree(start: int, height: int) -> bytes:
        return root(hashes[start : start + (1 << height)])

    return subtree


def _left_width(width: int) -> int:
    """The largest power of two smaller than ``width`` (>= 2): the size of the left subtree."""
    return 1 << ((width - 1).bit_length() - 1)


def _climb(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift both until lsb(fn) is set or fn is 0: skip the levels where the node has no left sibling."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def _inclusion_length(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_length(old_size: int, new_size: int) -> int:
    shift = (old_size & -old_size).bit_length() - 1
    seed = 0 if old_size == 1 << shift else 1
    return seed + _inclusion_length(old_size - 1, new_size) - shift


def _length_message(kind: str, got: int, want: int) -> str:
    problem = "too long" if got > want else "too short"
    return f"the {kind} proof is {problem}: it has {got} hashes where {want} are needed"


def _check_proof(proof: Sequence[bytes]) -> None:
    for position, hashed in enumerate(proof):
        _check_hash(f"proof hash {position}", hashed)


def _check_hash(what: str, hashed: bytes, error: type[ValueError] = ProofError) -> None:
    if len(hashed) != HASH_SIZE:
        raise error(f"{what} is {len(hashed)} bytes; SHA-256 hashes are {HASH_SIZE}")


def _check_leaves(hashes: Sequence[bytes]) -> None:
    for position, hashed in enumerate(hashes):
        if len(hashed) != HASH_SIZE:
            raise ValueError(f"leaf hash {position} is {len(hashed)} bytes; SHA-256 hashes are {HASH_SIZE}")


def _check_prefix(size: int, hashes: Sequence[bytes]) -> None:
    if size > len(hashes):
        raise ValueError(f"tree size {size} is larger than the {len(hashes)} leaf hashes given")


def _show(hashed: bytes) -> str:
    return hashed.hex()[:16] + "…" if len(hashed) > 8 else hashed.hex() or "(empty)"
