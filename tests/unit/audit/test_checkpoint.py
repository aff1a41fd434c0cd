from __future__ import annotations

import base64
import hashlib
import stat
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bastion.audit import checkpoint
from bastion.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signer,
    Verifier,
    key_id,
    load_or_create_key,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
    signer_from_env,
    verify_note,
)
from bastion.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

# A golden vector built by hand from the C2SP signed-note and tlog-checkpoint texts: the seed is 0x00..0x1f,
# the root is that of the eight RFC 6962 test leaves (5dc9da79…), the tree size is 8.
NAME = "bastion.example/audit"
SEED = bytes(range(32))
ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
PRIVATE_KEY = "PRIVATE+KEY+bastion.example/audit+b05c51c8+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
VKEY = "bastion.example/audit+b05c51c8+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
BODY = "bastion.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
NOTE = (
    BODY + "\n"
    "— bastion.example/audit "
    "sFxRyC5sxHO/TdO10XVGXOP5m1Get4zYyidxMlO5aJNaLf55KbQUXhU9EMMF/hZfklCU5PHzaY66RwDauQ2n1kiHSQI=\n"
)

SIGNER = Signer.from_key(PRIVATE_KEY)
VERIFIER = Verifier.from_vkey(VKEY)


def test_golden_key_id_follows_the_formula() -> None:
    public = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes_raw()
    expected = hashlib.sha256(NAME.encode() + b"\x0a" + b"\x01" + public).digest()[:4]
    assert expected.hex() == "b05c51c8"
    assert key_id(NAME, public) == SIGNER.key_id == VERIFIER.key_id == expected
    assert SIGNER.seed == SEED
    assert VERIFIER.public_key == public
    assert SIGNER.verifier == VERIFIER


def test_golden_key_texts() -> None:
    assert Signer(NAME, SEED).key_text == PRIVATE_KEY
    assert SIGNER.verifier.vkey == VKEY
    assert base64.b64decode(VKEY.split("+", 2)[2])[0] == 0x01  # the Ed25519 type byte before the key


def test_golden_checkpoint_note() -> None:
    assert Checkpoint(NAME, 8, ROOT).body() == BODY
    assert sign_checkpoint(SIGNER, NAME, 8, ROOT) == NOTE
    assert verify_note(NOTE, [VERIFIER]) == Checkpoint(NAME, 8, ROOT)


def test_golden_note_layout_by_hand() -> None:
    body, _, signatures = NOTE.rpartition("\n\n")
    assert body + "\n" == BODY
    dash, name, encoded = signatures.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", NAME)
    raw = base64.b64decode(encoded)
    assert raw[:4] == VERIFIER.key_id
    Ed25519PublicKey.from_public_bytes(VERIFIER.public_key).verify(raw[4:], BODY.encode())


def test_go_sumdb_note_example_interoperates() -> None:
    """The example in the documentation of golang.org/x/mod/sumdb/note, which defined this format."""
    skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    signature = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
    note = f"{text}\n— PeterNeumann {signature}\n"
    assert Signer.from_key(skey).verifier.vkey == vkey
    assert sign_note(text, Signer.from_key(skey)) == note
    assert open_note(note.encode(), [Verifier.from_vkey(vkey)]) == text


def test_rfc8032_test_1() -> None:
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    signer = Signer("rfc8032", seed)
    assert signer.verifier.public_key.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert signer.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


def test_round_trip_with_extensions() -> None:
    signer = Signer.generate("log.example/a")
    note = sign_checkpoint(signer, "log.example/a", 0, hashlib.sha256(b"").digest(), ["ext one", "ext two"])
    checkpoint = verify_note(note, [signer.verifier], origin="log.example/a")
    assert checkpoint == Checkpoint("log.example/a", 0, hashlib.sha256(b"").digest(), ("ext one", "ext two"))
    assert parse_checkpoint(checkpoint.body()) == checkpoint
    assert Verifier.from_vkey(signer.verifier.vkey) == signer.verifier
    assert Signer.from_key(signer.key_text) == signer


def test_every_changed_bit_is_rejected() -> None:
    data = NOTE.encode()
    for bit in range(len(data) * 8):
        changed = bytearray(data)
        changed[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CheckpointError):
            verify_note(bytes(changed), [VERIFIER])


def test_two_signers_either_verifier_is_enough() -> None:
    witness = Signer.generate("witness.example/w1")
    note = sign_note(BODY, SIGNER, witness)
    assert note.startswith(NOTE)  # the log's signature first, unchanged
    for trusted in ([VERIFIER], [witness.verifier], [VERIFIER, witness.verifier]):
        assert verify_note(note, trusted).size == 8


def test_an_unknown_key_is_named() -> None:
    stranger = Signer.generate("stranger.example/log")
    note = sign_checkpoint(stranger, NAME, 8, ROOT)
    with pytest.raises(CheckpointError, match=rf"unknown key stranger\.example/log\+{stranger.key_id.hex()}"):
        verify_note(note, [VERIFIER])


def test_a_trusted_name_with_another_key_is_not_trusted() -> None:
    impostor = Signer.generate(NAME)
    note = sign_checkpoint(impostor, NAME, 8, ROOT)
    with pytest.raises(CheckpointError, match="rotated key or a forgery"):
        verify_note(note, [VERIFIER])


def test_a_bad_signature_by_a_trusted_key_rejects_the_whole_note() -> None:
    witness = Signer.generate("witness.example/w1")
    good = sign_note(BODY, witness)
    forged = NOTE.replace("sFxRyC5", "sFxRyC6")
    note = good + forged.rpartition("\n\n")[2]
    with pytest.raises(CheckpointError, match=r"signature by bastion\.example/audit\+b05c51c8 does not verify"):
        verify_note(note, [VERIFIER, witness.verifier])


def test_the_origin_can_be_required() -> None:
    with pytest.raises(CheckpointError, match=r"for log 'bastion\.example/audit', not 'other'"):
        verify_note(NOTE, [VERIFIER], origin="other")


def _signed(body: str) -> str:
    return sign_note(body, SIGNER)


ROOT64 = base64.b64encode(ROOT).decode()
MALFORMED = [
    (BODY + "— bastion.example/audit AAAA\n", "no blank line separates"),
    (BODY + "\n", "no signature lines"),
    (NOTE.rstrip("\n"), "ends with a newline"),
    (NOTE.replace("— ", "- "), "signature line 1 is not"),
    (NOTE.replace("— bastion.example/audit ", "— bastion.example/audit"), "signature line 1 is not"),
    (NOTE.replace("\n— ", "\n— x+y "), "key name 'x\\+y'"),
    (NOTE[:-2] + "!\n", "signature by bastion.example/audit is not valid base64"),
    (NOTE[:-3] + "J=\n", "not canonical base64"),
    (BODY + "\n— bastion.example/audit AAAAAA==\n", "is 4 bytes; a key ID and a signature need 5"),
    (BODY + "\n" + "— bastion.example/audit AAAAAA==\n" * 101, "at most 100 are read"),
    (NOTE.replace("\n8\n", "\n8\t\n"), "control characters"),
    (NOTE.encode().replace(b"audit\n8", b"audit\n\xff"), "must be UTF-8"),
    (_signed(f"{NAME}\n8\n"), "origin, size and root lines; this one has 2"),
    (_signed(f"{NAME}\n08\n{ROOT64}\n"), "tree size '08' is not a decimal number"),
    (_signed(f"{NAME}\n-8\n{ROOT64}\n"), "tree size '-8' is not"),
    (_signed(f"{NAME}\n\uff18\n{ROOT64}\n"), "is not a decimal number"),
    (_signed(f"{NAME}\n{2**64}\n{ROOT64}\n"), "is not between 0 and 2\\*\\*64 - 1"),
    (_signed(f"{NAME}\n8\n{ROOT64[:-2]}\n"), "the root hash is not valid base64"),
    (_signed(f"{NAME}\n8\n{base64.b64encode(ROOT[:31]).decode()}\n"), "the root hash is 31 bytes"),
    (_signed(f"{NAME}\n8\n{ROOT64}\n\nextension\n"), "extension line 1 must be a non-empty line"),
    (_signed(f"\n8\n{ROOT64}\n"), "the origin must be a non-empty line"),
]


@pytest.mark.parametrize(("note", "message"), MALFORMED, ids=[row[1] for row in MALFORMED])
def test_malformed_notes_are_rejected(note: str | bytes, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        verify_note(note, [VERIFIER])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Checkpoint("", 1, ROOT), "the origin must be a non-empty line"),
        (lambda: Checkpoint("a\nb", 1, ROOT), "the origin must be a non-empty line"),
        (lambda: Checkpoint(NAME, -1, ROOT), "tree size -1 is not between"),
        (lambda: Checkpoint(NAME, 1, ROOT[:31]), "the root hash is 31 bytes"),
        (lambda: Checkpoint(NAME, 1, ROOT, ("",)), "extension line 1 must be"),
        (lambda: sign_note("no newline", SIGNER), "text ending in a newline and at least one signer"),
        (lambda: sign_note(BODY), "at least one signer"),
        (lambda: sign_note("a\x00\n", SIGNER), "control characters"),
        (lambda: parse_checkpoint(f"{NAME}\n8\n{ROOT64}"), "a checkpoint body ends with a newline"),
        (lambda: Signer(NAME, SEED[:31]), "32-byte seed, not 31 bytes"),
        (lambda: Signer("two words", SEED), "key name 'two words' must be non-empty"),
        (lambda: Verifier(NAME, SEED[:31]), "public key is 32 bytes, not 31"),
        (lambda: Verifier("", SEED), "key name '' must be non-empty"),
    ],
)
def test_values_are_checked_where_they_are_made(build: Any, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        build()


class SameKeyId(Verifier):
    """Another key claiming the trusted key's ID, as a 32-bit collision would."""

    @property
    def key_id(self) -> bytes:
        return VERIFIER.key_id


def test_trusting_the_same_key_twice_is_harmless_but_two_keys_under_one_id_are_refused() -> None:
    assert verify_note(NOTE, [VERIFIER, Verifier(NAME, VERIFIER.public_key)]).size == 8
    with pytest.raises(CheckpointError, match=r"two different trusted keys are both bastion\.example/audit"):
        verify_note(NOTE, [VERIFIER, SameKeyId(NAME, bytes(32))])


SECRET_PART = PRIVATE_KEY.rsplit("+", 1)[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (PRIVATE_KEY.removeprefix("PRIVATE+KEY+"), "a private key starts with PRIVATE\\+KEY\\+"),
        (PRIVATE_KEY.replace("b05c51c8", "b05c51c9"), "says key ID b05c51c9, but its key has another"),
        (PRIVATE_KEY.replace("b05c51c8", "b05c51"), "not in the form <name>\\+<8 hex digits>\\+<base64 key>"),
        (PRIVATE_KEY.replace("b05c51c8", "b05c51zz"), "not in the form"),
        (PRIVATE_KEY.replace("+AQAB", "+AgAB"), "is not an Ed25519 key"),
        (PRIVATE_KEY[:-1], "not valid base64"),
    ],
)
def test_bad_private_keys_are_refused_without_quoting_them(text: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message) as caught:
        Signer.from_key(text)
    assert SECRET_PART[:12] not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (VKEY.replace("b05c51c8", "00000000"), "says key ID 00000000, but its key has another"),
        (VKEY.replace("+AQOh", "+AgOh"), "is not an Ed25519 key"),
        ("bastion.example/audit", "not in the form"),
        (VKEY[:-1], "not valid base64"),
    ],
)
def test_bad_verifier_keys_are_refused(text: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        Verifier.from_vkey(text)


def test_the_signer_repr_hides_the_key() -> None:
    assert "seed" not in repr(SIGNER)
    assert SEED.hex() not in repr(SIGNER)


# --- the key file ---


def test_a_missing_key_file_is_created_private_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    signer = load_or_create_key(path, "log.example/a")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("PRIVATE+KEY+log.example/a+")
    assert load_or_create_key(path, "log.example/a") == signer
    assert signer.name == "log.example/a"
    assert [p.name for p in path.parent.iterdir()] == ["audit.key"]  # the temporary file is gone


def test_two_processes_creating_the_key_at_once_share_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.key"
    winner = Signer.generate(NAME)
    link = checkpoint.os.link

    def lose_the_race(source: Path, target: Path) -> None:
        target.write_text(winner.key_text + "\n")
        target.chmod(0o600)
        link(source, target)

    monkeypatch.setattr(checkpoint.os, "link", lose_the_race)
    assert load_or_create_key(path, NAME) == winner
    assert [p.name for p in tmp_path.iterdir()] == ["audit.key"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660])
def test_a_key_file_others_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "audit.key"
    load_or_create_key(path, NAME)
    path.chmod(mode)
    with pytest.raises(ConfigError, match=f"mode {mode:04o}.*run 'chmod 600 {path}'"):
        load_or_create_key(path, NAME)


def test_a_key_file_of_another_origin_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    load_or_create_key(path, "log.example/old")
    with pytest.raises(ConfigError, match=r"signing key of log 'log\.example/old', but the audit origin is 'new'"):
        load_or_create_key(path, "new")


@pytest.mark.parametrize("content", [b"not a key\n", b"\xff\xfe"])
def test_a_key_file_without_a_key_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "audit.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=f"{path} does not hold an audit signing key"):
        load_or_create_key(path, NAME)


def test_a_key_file_that_cannot_be_made_or_read_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot create the audit signing key"):
        load_or_create_key(tmp_path / "file" / "audit.key", NAME)
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="does not hold an audit signing key"):
        load_or_create_key(tmp_path / "dir", NAME)


def test_extensions_are_lines_not_one_string() -> None:
    with pytest.raises(TypeError, match="list of lines"):
        sign_checkpoint(SIGNER, NAME, 8, ROOT, "one line")


def test_a_key_file_written_by_hand_is_read(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    path.write_text(PRIVATE_KEY + "\n")
    path.chmod(0o400)
    assert load_or_create_key(path, NAME) == SIGNER


def test_a_key_in_the_environment() -> None:
    assert signer_from_env(PRIVATE_KEY + "\n") == SIGNER
    with pytest.raises(ConfigError, match="BASTION_AUDIT_KEY does not hold an audit signing key") as caught:
        signer_from_env(PRIVATE_KEY[:-4], variable="BASTION_AUDIT_KEY")
    assert SECRET_PART[:12] not in str(caught.value)
