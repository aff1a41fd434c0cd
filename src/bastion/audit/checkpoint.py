"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, signed with an Ed25519 key.

A checkpoint commits to the log's origin, tree size and root. Keys use the Go ``sumdb/note`` text forms
(``PRIVATE+KEY+<name>+<hash>+<key>`` to sign, ``<name>+<hash>+<key>`` to verify), so standard tools read them.
The signing key lives in a mode-0600 file or an environment variable, never in the database.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bastion.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

ED25519 = 0x01  # the signed-note signature type byte for Ed25519
HASH_SIZE = 32
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16
MAX_TREE_SIZE = 2**64 - 1
_KEY_SIZE = 32
_SIGNATURE_SIZE = 64
_DASH = "\u2014 "  # em dash and space open every signature line
_PRIVATE = "PRIVATE+KEY+"
_HEX = frozenset("0123456789abcdefABCDEF")


class CheckpointError(ValueError):
    """A note, checkpoint or key that is malformed or not signed by a trusted key; the message says what."""


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement of its origin, tree size and root hash, plus any extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line("the origin", self.origin)
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"tree size {self.size} is not between 0 and 2**64 - 1")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(f"the root hash is {len(self.root)} bytes; a SHA-256 root is {HASH_SIZE}")
        for number, line in enumerate(self.extensions, start=1):
            _check_line(f"extension line {number}", line)

    def body(self) -> str:
        """The note text that gets signed: one line each for origin, size, base64 root and extensions."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(f"{line}\n" for line in lines)


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A trusted public key, known by its name; publish it as ``vkey``."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != _KEY_SIZE:
            raise CheckpointError(f"an Ed25519 public key is {_KEY_SIZE} bytes, not {len(self.public_key)}")

    @classmethod
    def from_vkey(cls, text: str) -> Verifier:
        """Parse ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        name, claimed, key = _parse_key(text.strip(), "the verifier key")
        verifier = cls(name, key)
        if verifier.key_id != claimed:
            raise CheckpointError(f"the verifier key for {name} says key ID {claimed.hex()}, but its key has another")
        return verifier

    @property
    def key_id(self) -> bytes:
        """The 4-byte ID that signature lines carry."""
        return key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """The text form to publish: ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([ED25519]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != _SIGNATURE_SIZE:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private signing key and its name; ``repr`` never shows the key."""

    name: str
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.seed) != _KEY_SIZE:
            raise CheckpointError(f"an Ed25519 private key is a {_KEY_SIZE}-byte seed, not {len(self.seed)} bytes")

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A new random key named ``name`` (for a log, its origin)."""
        return cls(name, secrets.token_bytes(_KEY_SIZE))

    @classmethod
    def from_key(cls, text: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``; errors never quote the key."""
        text = text.strip()
        if not text.startswith(_PRIVATE):
            raise CheckpointError("a private key starts with PRIVATE+KEY+")
        name, claimed, seed = _parse_key(text.removeprefix(_PRIVATE), "the private key")
        signer = cls(name, seed)
        if signer.key_id != claimed:
            raise CheckpointError(f"the private key for {name} says key ID {claimed.hex()}, but its key has another")
        return signer

    @property
    def verifier(self) -> Verifier:
        """The matching public key."""
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw()
        return Verifier(self.name, public)

    @property
    def key_id(self) -> bytes:
        """The 4-byte ID its signature lines carry."""
        return self.verifier.key_id

    @property
    def key_text(self) -> str:
        """The secret text form, for the key file: ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``."""
        return f"{_PRIVATE}{self.name}+{self.key_id.hex()}+{_b64(bytes([ED25519]) + self.seed)}"

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message``."""
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


def sign_note(text: str, *signers: Signer) -> str:
    """``text`` (ending in a newline) as a signed note: a blank line, then one signature line per signer."""
    _check_characters(text)
    if not text.endswith("\n") or not signers:
        raise CheckpointError("a note needs text ending in a newline and at least one signer")
    message = text.encode()
    lines = [f"{_DASH}{signer.name} {_b64(signer.key_id + signer.sign(message))}\n" for signer in signers]
    return f"{text}\n{''.join(lines)}"


def sign_checkpoint(signer: Signer, origin: str, size: int, root: bytes, extensions: Iterable[str] = ()) -> str:
    """The signed note of the checkpoint (origin, size, root, extensions): what the log publishes."""
    if isinstance(extensions, str):
        raise TypeError("extensions is a list of lines, not one string")
    return sign_note(Checkpoint(origin, size, root, tuple(extensions)).body(), signer)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (the note text, not the signatures); use ``verify_note`` on a signed note."""
    if not text.endswith("\n"):
        raise CheckpointError("a checkpoint body ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(f"a checkpoint has origin, size and root lines; this one has {len(lines)} lines")
    origin, size, root, *extensions = lines
    return Checkpoint(origin, _parse_size(size), _unb64(root, "the root hash"), tuple(extensions))


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> str:
    """The text of a signed note once a trusted key's signature on it verifies.

    Signatures by unknown keys are ignored (a witness may cosign), but at least one trusted key must have
    signed, and any signature by a trusted key that fails to verify rejects the whole note.
    """
    text = _decode(note, "a signed note")
    _check_characters(text)
    body, lines = _split_note(text)
    trusted = _index(verifiers)
    message, signed, unknown = body.encode(), False, []
    for number, line in enumerate(lines, start=1):
        name, claimed, signature = _parse_signature(number, line)
        verifier = trusted.get((name, claimed))
        if verifier is None:
            unknown.append((name, claimed))
        elif not verifier.verify(message, signature):
            raise CheckpointError(f"the signature by {name}+{claimed.hex()} does not verify: the note was altered")
        else:
            signed = True
    if not signed:
        raise CheckpointError(_untrusted(unknown, trusted))
    return body


def verify_note(note: str | bytes, verifiers: Iterable[Verifier], *, origin: str | None = None) -> Checkpoint:
    """The checkpoint in a signed note, once a trusted key's signature verifies (and its origin, if given)."""
    checkpoint = parse_checkpoint(open_note(note, verifiers))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"the checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


def load_or_create_key(path: Path, origin: str) -> Signer:
    """The log's signing key from ``path``, created with mode 0600 on first use.

    Refuses a file that group or others can access, or one holding the key of another origin.
    """
    _ensure_key(path, origin)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{path} holds the audit signing key but group or others can access it (mode {mode:04o}); "
            f"run 'chmod 600 {path}'."
        )
    try:
        signer = Signer.from_key(_decode(path.read_bytes(), "a key file"))
    except (CheckpointError, OSError) as exc:
        raise ConfigError(f"{path} does not hold an audit signing key: {exc}") from exc
    if signer.name != origin:
        raise ConfigError(
            f"{path} holds the signing key of log {signer.name!r}, but the audit origin is {origin!r}; "
            "set the origin back, or move the file away to start a new log with a new key."
        )
    return signer


def signer_from_env(value: str, *, variable: str = "the signing key variable") -> Signer:
    """The signing key given in an environment variable, as ``PRIVATE+KEY+...`` text."""
    try:
        return Signer.from_key(value)
    except CheckpointError as exc:
        raise ConfigError(f"{variable} does not hold an audit signing key: {exc}") from exc


def _ensure_key(path: Path, origin: str) -> None:
    if path.exists():
        return
    try:
        _create_key(path, origin)
    except OSError as exc:
        raise ConfigError(f"cannot create the audit signing key {path}: {exc.strerror}; check the directory") from exc


def _create_key(path: Path, origin: str) -> None:
    """Write a new key to ``path``: fully written under a temporary name first, then linked into place."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(Signer.generate(origin).key_text + "\n")
            file.flush()
            os.fsync(file.fileno())
        # Another process starting at the same moment may have won; its key is then the one to use.
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def _split_note(text: str) -> tuple[str, list[str]]:
    if not text.endswith("\n"):
        raise CheckpointError("a signed note ends with a newline")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise CheckpointError("no blank line separates the note text from its signature lines")
    lines = text[cut + 2 : -1].split("\n") if cut + 2 < len(text) else []
    if not lines:
        raise CheckpointError("the note has no signature lines after its blank line")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"the note has {len(lines)} signature lines; at most {MAX_SIGNATURES} are read")
    return text[: cut + 1], lines


def _parse_signature(number: int, line: str) -> tuple[str, bytes, bytes]:
    """(key name, key ID, signature) of one ``— <name> <base64(key ID || signature)>`` line."""
    name, space, encoded = line.removeprefix(_DASH).partition(" ")
    if not line.startswith(_DASH) or not space:
        raise CheckpointError(f"signature line {number} is not '— <key name> <base64 signature>'")
    _check_name(name)
    raw = _unb64(encoded, f"the signature by {name}")
    if len(raw) < 5:
        raise CheckpointError(f"the signature by {name} is {len(raw)} bytes; a key ID and a signature need 5 or more")
    return name, raw[:4], raw[4:]


def _untrusted(unknown: list[tuple[str, bytes]], trusted: dict[tuple[str, bytes], Verifier]) -> str:
    signers = ", ".join(f"{name}+{claimed.hex()}" for name, claimed in unknown)
    known = ", ".join(f"{name}+{claimed.hex()}" for name, claimed in trusted) or "none"
    message = f"no trusted key signed this note; it is signed by unknown key {signers} (trusted: {known})"
    if any(name == known_name for name, _ in unknown for known_name, _ in trusted):
        message += "; a trusted name with another key ID means a rotated key or a forgery"
    return message


def _index(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    trusted: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        if trusted.setdefault(slot, verifier) != verifier:
            raise CheckpointError(f"two different trusted keys are both {verifier.name}+{verifier.key_id.hex()}")
    return trusted


def _parse_key(text: str, what: str) -> tuple[str, bytes, bytes]:
    """(name, key ID, key) of ``<name>+<hex key ID>+<base64(0x01 || key)>``."""
    name, _, rest = text.partition("+")
    hex_id, plus, encoded = rest.partition("+")
    if not plus or len(hex_id) != 8 or not _HEX.issuperset(hex_id):
        raise CheckpointError(f"{what} is not in the form <name>+<8 hex digits>+<base64 key>")
    _check_name(name)
    raw = _unb64(encoded, f"{what} for {name}")
    if len(raw) != 1 + _KEY_SIZE or raw[0] != ED25519:
        raise CheckpointError(f"{what} for {name} is not an Ed25519 key (type byte 0x01, then {_KEY_SIZE} bytes)")
    return name, bytes.fromhex(hex_id), raw[1:]


def _parse_size(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text.startswith("0")):
        raise CheckpointError(f"tree size {text!r} is not a decimal number without leading zeros")
    return int(text)


def _check_name(name: str) -> None:
    if not name or "+" in name or any(character.isspace() for character in name):
        raise CheckpointError(f"key name {name!r} must be non-empty, without spaces or '+'")


def _check_line(what: str, line: str) -> None:
    if not line or any(character < " " for character in line):
        raise CheckpointError(f"{what} must be a non-empty line without control characters")


def _check_characters(text: str) -> None:
    if any(character < " " and character != "\n" for character in text):
        raise CheckpointError("a signed note may not contain control characters other than newline")


def _decode(data: str | bytes, what: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{what} must be UTF-8 text") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    """Strict standard base64: padded, the RFC 4648 alphabet only, and canonical (re-encodes to itself)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise CheckpointError(f"{what} is not valid base64") from exc
    if _b64(raw) != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw
