from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.audit.merkle import (
    EMPTY_ROOT,
    Levels,
    ProofError,
    Tree,
    consistency_proof,
    consistency_proof_from,
    inclusion_proof,
    inclusion_proof_from,
    leaf_hash,
    node_hash,
    root,
    root_from,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

# transparency-dev/merkle's published vectors, read where they are (see their SOURCE file), never copied here.
TESTDATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "merkle-testdata"
MISSING = f"the Merkle test vectors are not at {TESTDATA} (expected ../shared/data/merkle-testdata next to the repo)"


# --- the recursive definitions, written straight from RFC 9162 §2.1 to check the fast code against ---


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes: list[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def path(m: int, hashes: list[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return [*path(m, hashes[:k]), mth(hashes[k:])]
    return [*path(m - k, hashes[k:]), mth(hashes[:k])]


def subproof(m: int, hashes: list[bytes], whole: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if whole else [mth(hashes)]
    k = _split(n)
    if m <= k:
        return [*subproof(m, hashes[:k], whole), mth(hashes[k:])]
    return [*subproof(m - k, hashes[k:], False), mth(hashes[:k])]


def leaves(size: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(size)]


def flip(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    bit %= len(changed) * 8
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


# --- the published vectors ---


def _vector_files() -> list[Any]:
    if not TESTDATA.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="missing")]
    files = sorted(TESTDATA.glob("inclusion/**/*.json")) + sorted(TESTDATA.glob("consistency/**/*.json"))
    return [pytest.param(file, id=str(file.relative_to(TESTDATA))) for file in files]


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _check_vector(case: dict[str, Any]) -> None:
    proof = [_b64(h) for h in case["proof"] or []]
    if "leafIdx" in case:
        verify_inclusion(case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), proof, _b64(case["root"]))
    else:
        verify_consistency(case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), proof)


@pytest.mark.parametrize("file", _vector_files())
def test_published_vector(file: Path) -> None:
    case = json.loads(file.read_text())
    if case["wantErr"]:
        with pytest.raises(ProofError):
            _check_vector(case)
    else:
        _check_vector(case)


@pytest.mark.skipif(not TESTDATA.is_dir(), reason=MISSING)
def test_every_published_vector_is_found() -> None:
    cases = [json.loads(f.read_text()) for f in TESTDATA.glob("*/**/*.json")]
    accepted = sum(not case["wantErr"] for case in cases)
    assert (len(cases), accepted) == (196, 12)  # SOURCE pins the commit these counts come from


# --- known answers ---

# The eight leaves of the RFC 6962 reference test data (also behind the published vectors), and the roots
# of their prefixes.
RFC6962_LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]]
RFC6962_LEAVES.append(bytes(range(0x60, 0x70)))
RFC6962_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_hashes_have_the_rfc_prefixes() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root([]) == EMPTY_ROOT == Tree().root() == Levels([]).root()
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_rfc6962_test_leaves(size: int) -> None:
    hashes = [leaf_hash(d) for d in RFC6962_LEAVES[:size]]
    tree = Tree()
    tree.extend(hashes)
    assert root(hashes).hex() == RFC6962_ROOTS[size - 1]
    assert tree.root() == Levels(hashes).root() == Levels([leaf_hash(d) for d in RFC6962_LEAVES]).root(size)
    assert tree.root().hex() == RFC6962_ROOTS[size - 1]


def _c2sp_example() -> tuple[list[bytes], dict[str, bytes]]:
    """The 7-entry tree drawn in C2SP merkle-tree.md, with its node labels."""
    a, b, c, d, e, f, g = (leaf_hash(b"d%d" % i) for i in range(7))
    h, i, j = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k, ll = node_hash(h, i), node_hash(j, g)
    labels = {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g, "h": h, "i": i, "j": j, "k": k, "l": ll}
    labels["root"] = node_hash(k, ll)
    return [a, b, c, d, e, f, g], labels


@pytest.mark.parametrize(
    ("index", "expected"), [(0, "b i l"), (3, "c h l"), (4, "f g k"), (6, "j k")], ids=["d0", "d3", "d4", "d6"]
)
def test_inclusion_proofs_of_the_c2sp_example(index: int, expected: str) -> None:
    hashes, label = _c2sp_example()
    want = [label[name] for name in expected.split()]
    assert inclusion_proof(index, 7, hashes) == Levels(hashes).inclusion_proof(index) == want
    verify_inclusion(index, 7, hashes[index], want, label["root"])


@pytest.mark.parametrize(("old", "expected"), [(3, "c d h l"), (4, "l"), (6, "j g k")], ids=["3", "4", "6"])
def test_consistency_proofs_of_the_c2sp_example(old: int, expected: str) -> None:
    hashes, label = _c2sp_example()
    want = [label[name] for name in expected.split()]
    assert consistency_proof(old, 7, hashes) == Levels(hashes).consistency_proof(old) == want
    verify_consistency(old, 7, root(hashes[:old]), label["root"], want)


# --- every small case against the recursive definitions ---


def test_every_inclusion_proof_up_to_64_leaves() -> None:
    hashes = leaves(64)
    levels = Levels(hashes)
    for size in range(1, 65):
        tree_root = mth(hashes[:size])
        for index in range(size):
            proof = levels.inclusion_proof(index, size)
            assert proof == path(index, hashes[:size])
            assert root_from_inclusion(index, size, hashes[index], proof) == tree_root
            verify_inclusion(index, size, hashes[index], proof, tree_root)


def test_every_consistency_proof_up_to_40_leaves() -> None:
    hashes = leaves(40)
    levels = Levels(hashes)
    for new in range(1, 41):
        for old in range(1, new + 1):
            proof = levels.consistency_proof(old, new)
            assert proof == ([] if old == new else subproof(old, hashes[:new], True))
            verify_consistency(old, new, levels.root(old), levels.root(new), proof)


# --- properties over random trees ---

sizes = st.integers(min_value=1, max_value=300)
salts = st.binary(max_size=8)


@given(size=sizes, salt=salts, data=st.data())
def test_inclusion_proofs_verify_and_any_flipped_bit_fails(size: int, salt: bytes, data: st.DataObject) -> None:
    hashes = leaves(size, salt)
    levels = Levels(hashes)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = levels.inclusion_proof(index)
    tree_root = levels.root()
    assert proof == path(index, hashes)
    verify_inclusion(index, size, hashes[index], proof, tree_root)

    bit = data.draw(st.integers(0, 255), label="bit")
    where = data.draw(st.integers(-2, len(proof) - 1), label="where")  # -2: the leaf, -1: the root
    leaf, changed, wanted = hashes[index], list(proof), tree_root
    if where == -2:
        leaf = flip(leaf, bit)
    elif where == -1:
        wanted = flip(wanted, bit)
    else:
        changed[where] = flip(changed[where], bit)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf, changed, wanted)


@given(size=sizes, salt=salts, data=st.data())
def test_consistency_proofs_verify_and_any_flipped_bit_fails(size: int, salt: bytes, data: st.DataObject) -> None:
    hashes = leaves(size, salt)
    levels = Levels(hashes)
    old = data.draw(st.integers(1, size), label="old")
    proof = levels.consistency_proof(old)
    old_root, new_root = levels.root(old), levels.root()
    assert proof == ([] if old == size else subproof(old, hashes, True))
    verify_consistency(old, size, old_root, new_root, proof)

    bit = data.draw(st.integers(0, 255), label="bit")
    where = data.draw(st.integers(-2, len(proof) - 1), label="where")  # -2: the old root, -1: the new root
    changed = list(proof)
    if where == -2:
        old_root = flip(old_root, bit)
    elif where == -1:
        new_root = flip(new_root, bit)
    else:
        changed[where] = flip(changed[where], bit)
    with pytest.raises(ProofError):
        verify_consistency(old, size, old_root, new_root, changed)


@given(size=sizes, salt=salts, data=st.data())
def test_proofs_from_a_list_match_levels(size: int, salt: bytes, data: st.DataObject) -> None:
    hashes = leaves(size, salt)
    levels = Levels(hashes)
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(0, size), label="old")
    assert inclusion_proof(index, size, hashes) == levels.inclusion_proof(index)
    assert consistency_proof(old, size, hashes) == levels.consistency_proof(old)
    assert root(hashes) == mth(hashes) == levels.root()


@given(size=sizes, salt=salts, data=st.data())
def test_the_incremental_tree_matches_the_root_at_every_size(size: int, salt: bytes, data: st.DataObject) -> None:
    hashes = leaves(size, salt)
    levels = Levels(hashes)
    tree = Tree()
    for count, hashed in enumerate(hashes, start=1):
        tree.append(hashed)
        assert tree.root() == levels.root(count)
    assert tree.size == size

    cut = data.draw(st.integers(0, size), label="cut")
    early = Tree()
    early.extend(hashes[:cut])
    restored = Tree.restore(early.frontier())
    assert restored.size == cut
    assert [height for height, _ in early.frontier()] == [h for h in range(10, -1, -1) if cut >> h & 1]
    restored.extend(hashes[cut:])
    assert restored.root() == tree.root()


# --- what verification refuses, and why ---

HASHES = leaves(8)
LEVELS = Levels(HASHES)


INCLUSION_REFUSALS = [
    (8, 8, HASHES[0], LEVELS.inclusion_proof(0), "not in a tree of size 8"),
    (0, 0, HASHES[0], [], "not in a tree of size 0"),
    (-1, 8, HASHES[0], LEVELS.inclusion_proof(0), "not in a tree of size 8"),
    (0, 8, HASHES[0], [*LEVELS.inclusion_proof(0), HASHES[1]], "too long: it has 4 hashes where 3"),
    (0, 8, HASHES[0], LEVELS.inclusion_proof(0)[:2], "too short: it has 2 hashes where 3"),
    (0, 1, HASHES[0], [HASHES[1]], "too long: it has 1 hashes where 0"),
    (0, 8, HASHES[0], [*LEVELS.inclusion_proof(0), b""], "proof hash 3 is 0 bytes"),
    (0, 8, HASHES[0][:31], LEVELS.inclusion_proof(0), "the leaf hash is 31 bytes"),
    (1, 8, HASHES[0], LEVELS.inclusion_proof(0), "leads to root"),
]


@pytest.mark.parametrize(
    ("index", "size", "leaf", "proof", "message"), INCLUSION_REFUSALS, ids=[row[-1] for row in INCLUSION_REFUSALS]
)
def test_inclusion_refusals(index: int, size: int, leaf: bytes, proof: list[bytes], message: str) -> None:
    with pytest.raises(ProofError, match=message):
        verify_inclusion(index, size, leaf, proof, LEVELS.root(max(size, 1)))


def test_inclusion_refuses_a_root_of_the_wrong_length() -> None:
    with pytest.raises(ProofError, match="the root is 31 bytes"):
        verify_inclusion(0, 8, HASHES[0], LEVELS.inclusion_proof(0), LEVELS.root()[:31])


CONSISTENCY_REFUSALS = [
    (5, 3, LEVELS.root(5), LEVELS.root(3), [], "size 5 cannot be a prefix of tree size 3"),
    (-1, 3, EMPTY_ROOT, LEVELS.root(3), [], "size -1 cannot be a prefix"),
    (0, 3, EMPTY_ROOT, LEVELS.root(3), [], "from the empty tree proves nothing"),
    (3, 3, LEVELS.root(3), LEVELS.root(3), [HASHES[0]], "need an empty consistency proof, not 1"),
    (0, 0, b"x" * 32, b"x" * 32, [], "the root of the empty tree is e3b0c44298fc1c14"),
    (4, 4, LEVELS.root(4), LEVELS.root(5), [], "two different roots for tree size 4"),
    (3, 7, LEVELS.root(3), LEVELS.root(7), [], "too short: it has 0 hashes where 4"),
    (3, 7, LEVELS.root(3), LEVELS.root(7), LEVELS.consistency_proof(3, 7)[:3], "too short: it has 3"),
    (3, 7, LEVELS.root(3), LEVELS.root(7), [*LEVELS.consistency_proof(3, 7), HASHES[0]], "too long: it has 5"),
    (3, 7, LEVELS.root(3), LEVELS.root(7), [*LEVELS.consistency_proof(3, 7), b""], "proof hash 4 is 0 bytes"),
    (3, 7, LEVELS.root(3)[:9], LEVELS.root(7), LEVELS.consistency_proof(3, 7), "the old root is 9 bytes"),
    (3, 7, LEVELS.root(4), LEVELS.root(7), LEVELS.consistency_proof(3, 7), "first 3 entries were changed"),
    (3, 7, LEVELS.root(3), LEVELS.root(8), LEVELS.consistency_proof(3, 7), "does not extend the tree of size 3"),
    (4, 8, LEVELS.root(4), LEVELS.root(8), [LEVELS.subtree(0, 2)], "leads to new root"),
]


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof", "message"),
    CONSISTENCY_REFUSALS,
    ids=[row[-1] for row in CONSISTENCY_REFUSALS],
)
def test_consistency_refusals(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes], message: str
) -> None:
    with pytest.raises(ProofError, match=message):
        verify_consistency(old, new, old_root, new_root, proof)


def test_equal_sizes_need_no_proof() -> None:
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(5, 5, LEVELS.root(5), LEVELS.root(5), [])


# --- what the builders refuse ---


BUILDER_REFUSALS = [
    (lambda: inclusion_proof(8, 8, HASHES), "leaf index 8 is not in a tree of size 8"),
    (lambda: inclusion_proof(0, 9, HASHES), "tree size 9 is larger than the 8 leaf hashes given"),
    (lambda: consistency_proof(5, 4, HASHES), "cannot prove tree size 5 consistent with tree size 4"),
    (lambda: root([HASHES[0], b"short"]), "leaf hash 1 is 5 bytes"),
    (lambda: Levels([b"short"]), "leaf hash 0 is 5 bytes"),
    (lambda: LEVELS.root(9), "tree size 9 is not between 0 and the 8 leaves held"),
    (lambda: LEVELS.subtree(2, 2), "no perfect subtree of height 2 starts at leaf 2"),
    (lambda: LEVELS.subtree(8, 0), "no perfect subtree of height 0 starts at leaf 8"),
    (lambda: LEVELS.subtree(0, -1), "no perfect subtree of height -1"),
    (lambda: Tree().append(b"short"), "a leaf hash is 5 bytes"),
    (lambda: Tree.restore([(1, HASHES[0]), (1, HASHES[1])]), "heights must strictly decrease"),
    (lambda: Tree.restore([(-1, HASHES[0])]), "heights must strictly decrease and not be negative"),
    (lambda: Tree.restore([(3, b"short")]), "a frontier hash is 5 bytes"),
]


@pytest.mark.parametrize(("build", "message"), BUILDER_REFUSALS, ids=[row[-1] for row in BUILDER_REFUSALS])
def test_builders_refuse_bad_arguments(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_levels_subtree_is_the_perfect_subtree_hash() -> None:
    assert LEVELS.subtree(4, 2) == mth(HASHES[4:8])
    assert LEVELS.subtree(6, 0) == HASHES[6]
    assert LEVELS.subtree(0, 3) == LEVELS.root() == root(HASHES)


def test_proofs_from_a_subtree_store_take_logarithmic_lookups() -> None:
    """What a store caching interior nodes relies on: a 10**9-leaf proof asks for a few dozen subtrees."""
    asked: list[tuple[int, int]] = []

    def subtree(start: int, height: int) -> bytes:
        assert start % (1 << height) == 0
        asked.append((start, height))
        return hashlib.sha256(b"%d/%d" % (start, height)).digest()

    size = 10**9 + 7
    assert len(inclusion_proof_from(123_456_789, size, subtree)) == 30
    assert len(asked) <= 2 * size.bit_length()
    asked.clear()
    assert len(consistency_proof_from(999_999_999, size, subtree)) <= size.bit_length() + 1
    assert len(asked) <= 2 * size.bit_length()
    asked.clear()
    root_from(size, subtree)
    assert len(asked) == size.bit_count()
    with pytest.raises(ValueError, match="tree size -1 is negative"):
        root_from(-1, subtree)
