"""Merkle tree speed at audit-log scale: building levels, proofs and their checks, and the append path.

Run ``.venv/bin/python bench/merkle.py`` (``--leaves`` to change the default 10**6). It hashes that many leaves,
builds ``Levels`` once, times inclusion and consistency proofs (generate, then verify) at random points, and
appends every leaf to the incremental ``Tree``; then it prints one Markdown table. Takes well under a minute.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.audit.merkle import Levels, Tree, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion

if TYPE_CHECKING:
    from collections.abc import Callable

HEAD = ["operation", "ops", "total s", "µs/op", "ops/s"]


@dataclass(frozen=True)
class Timing:
    """How long ``count`` runs of one operation took in all."""

    label: str
    count: int
    seconds: float

    def cells(self) -> list[str]:
        per = self.seconds / self.count
        return [self.label, f"{self.count:,}", f"{self.seconds:.3f}", f"{per * 1e6:,.1f}", f"{1 / per:,.0f}"]


def timed(label: str, count: int, work: Callable[[], object]) -> Timing:
    start = time.perf_counter()
    work()
    return Timing(label, count, time.perf_counter() - start)


def inclusion(levels: Levels, hashes: list[bytes], indices: list[int]) -> list[Timing]:
    """Inclusion proofs for random leaves of the full tree: without Levels (a few), with Levels, verified."""
    size, tree_root = levels.size, levels.root()
    proofs = [levels.inclusion_proof(i) for i in indices]

    def check() -> None:
        for index, proof in zip(indices, proofs, strict=True):
            verify_inclusion(index, size, hashes[index], proof, tree_root)

    return [
        timed(
            "inclusion proof (from the list, no Levels)",
            3,
            lambda: [inclusion_proof(i, size, hashes) for i in indices[:3]],
        ),
        timed("inclusion proof (from Levels)", len(indices), lambda: [levels.inclusion_proof(i) for i in indices]),
        timed("inclusion proof verify", len(indices), check),
    ]


def consistency(levels: Levels, olds: list[int]) -> list[Timing]:
    """Consistency proofs from random older sizes to the full tree, generated then verified."""
    size, tree_root = levels.size, levels.root()
    old_roots = [levels.root(old) for old in olds]
    proofs = [levels.consistency_proof(old) for old in olds]

    def check() -> None:
        for old, old_root, proof in zip(olds, old_roots, proofs, strict=True):
            verify_consistency(old, size, old_root, tree_root, proof)

    return [
        timed("consistency proof (from Levels)", len(olds), lambda: [levels.consistency_proof(o) for o in olds]),
        timed("consistency proof verify", len(olds), check),
        timed("root at a random size (from Levels)", len(olds), lambda: [levels.root(o) for o in olds]),
    ]


def appends(hashes: list[bytes], expected_root: bytes) -> list[Timing]:
    """The gateway's append path: every leaf into a ``Tree``, then a root after each of 10**4 more appends."""
    tree = Tree()
    extend = timed("Tree.append", len(hashes), lambda: tree.extend(hashes))
    assert tree.root() == expected_root
    extra = [leaf_hash(b"extra %d" % i) for i in range(10_000)]

    def append_and_root() -> None:
        for hashed in extra:
            tree.append(hashed)
            tree.root()

    return [extend, timed("Tree.append + root()", len(extra), append_and_root)]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=10**6, help="tree size (default 1,000,000)")
    parser.add_argument("--samples", type=int, default=2_000, help="random proofs of each kind (default 2,000)")
    parser.add_argument("--seed", type=int, default=6962)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    rng = random.Random(args.seed)
    count = args.leaves
    hashes: list[bytes] = []
    timings = [timed("leaf_hash", count, lambda: hashes.extend(leaf_hash(b"entry %d" % i) for i in range(count)))]
    full_root: list[bytes] = []
    timings.append(timed("root() of the whole list", 1, lambda: full_root.append(root(hashes))))
    built: list[Levels] = []
    timings.append(timed("Levels build (all interior levels)", 1, lambda: built.append(Levels(hashes))))
    levels = built[0]
    assert levels.root() == full_root[0]
    timings += inclusion(levels, hashes, [rng.randrange(count) for _ in range(args.samples)])
    timings += consistency(levels, [rng.randrange(1, count) for _ in range(args.samples)])
    timings += appends(hashes, full_root[0])
    print(f"Merkle tree of {count:,} leaves, {args.samples:,} random proofs of each kind\n")
    rows = [t.cells() for t in timings]
    print("\n".join(["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]))
    print("\n".join("| " + " | ".join(row) + " |" for row in rows))


if __name__ == "__main__":
    main()
