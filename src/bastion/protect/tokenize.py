"""Placeholders for sensitive values: a per-request vault that maps ``[PERSON_1]`` to what it stands for,
``tokenize`` and ``redact`` to take findings out of a text, and ``seal``/``unseal`` to keep a vault between
requests (AES-GCM, with a TTL).

A placeholder is ``[TYPE_N]``: the finding's type, numbered per type from 1 in order of first appearance.
The same value gets the same placeholder everywhere in the request; "the same" is decided on a key:

==========  ==================================================================  ==================================
rule        types                                                               values are the same when
==========  ==================================================================  ==================================
casefold    EMAIL_ADDRESS, PERSON, LOCATION, STREET_ADDRESS, ORGANIZATION,      equal ignoring case and runs of
            IP_ADDRESS                                                          whitespace
digits      CREDIT_CARD, PHONE_NUMBER, US_SSN, US_BANK_ROUTING, IN_AADHAAR,     their digits are equal, in order
            NL_BSN, DE_TAX_ID
alnum       IBAN_CODE, UK_NINO, FR_NIR, ES_NIF, ES_NIE, IT_FISCAL_CODE          their letters and digits are
                                                                                equal, ignoring case
exact       any other type (SECRET, DATE_OF_BIRTH, ...)                         identical
==========  ==================================================================  ==================================

Every rule first applies NFKC and drops invisible format characters (zero-width, bidi controls). A key with
nothing left in it falls back to the value itself. The vault restores the first spelling it saw.

Collisions are prevented by reservation, not escaping: ``Vault.reserve`` notes every placeholder-shaped run of
the caller's text (anything ``restore`` could take for a placeholder: ``[person_1]``, ``[ PERSON_1 ]``, a bare
``PERSON_1``) and the vault never hands out those names; a name that it already handed out and then finds in the
input is retired, so it is never restored. Text reaches the model unchanged (no invisible escape characters for
a model to drop), and a ``[EMAIL_ADDRESS_1]`` the caller typed or a document planted comes back as typed.
"""

from __future__ import annotations

import re
import secrets
import struct
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from bastion.protect.detect.finding import Finding

# Every shape ``restore`` tolerates, for any name: bracketed in any case with up to two spaces or tabs inside,
# or bare, upper-case and a whole word. ASCII only, like the names themselves.
SHAPE = re.compile(
    r"\[[ \t]{0,2}([A-Za-z][A-Za-z0-9_]*_[0-9]+)[ \t]{0,2}\]|(?<![A-Za-z0-9_])([A-Z][A-Z0-9_]*_[0-9]+)(?![A-Za-z0-9_])",
    re.ASCII,
)
_NOT_NAME = re.compile(r"[^A-Z0-9]+")


def _casefold(value: str) -> str:
    return " ".join(value.casefold().split())


_NOT_ASCII_DIGIT = re.compile(r"[^0-9]+")
_NOT_ASCII_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def _digits(value: str) -> str:
    if value.isascii():  # the common case, without a Python loop over characters
        return _NOT_ASCII_DIGIT.sub("", value)
    return "".join(char for char in value if char.isdigit())


def _alnum(value: str) -> str:
    if value.isascii():
        return _NOT_ASCII_ALNUM.sub("", value).upper()
    return "".join(char for char in value if char.isalnum()).upper()


def _exact(value: str) -> str:
    return value


RULES: Mapping[str, Callable[[str], str]] = {
    "casefold": _casefold,
    "digits": _digits,
    "alnum": _alnum,
    "exact": _exact,
}
_RULE_OF = {
    **dict.fromkeys(
        ("EMAIL_ADDRESS", "PERSON", "LOCATION", "STREET_ADDRESS", "ORGANIZATION", "IP_ADDRESS"), "casefold"
    ),
    **dict.fromkeys(
        ("CREDIT_CARD", "PHONE_NUMBER", "US_SSN", "US_BANK_ROUTING", "IN_AADHAAR", "NL_BSN", "DE_TAX_ID"), "digits"
    ),
    **dict.fromkeys(("IBAN_CODE", "UK_NINO", "FR_NIR", "ES_NIF", "ES_NIE", "IT_FISCAL_CODE"), "alnum"),
}


def rule_for(type_: str) -> str:
    """The name of the rule (a key of ``RULES``) that decides when two values of ``type_`` are the same."""
    return _RULE_OF.get(type_, "exact")


def clean(value: str) -> str:
    """NFKC, without invisible format characters, trimmed: the common first step of every rule."""
    if value.isascii():  # NFKC leaves ASCII as it is, and no ASCII character is a format character
        return value.strip()
    value = unicodedata.normalize("NFKC", value)
    return "".join(char for char in value if unicodedata.category(char) != "Cf").strip()


def value_key(type_: str, value: str) -> str:
    """What two values of ``type_`` must share to get one placeholder (see the table above)."""
    cleaned = clean(value)
    return RULES[rule_for(type_)](cleaned) or cleaned or value


def placeholder_type(type_: str) -> str:
    """A finding type as placeholders spell it: upper-case letters, digits and underscores, starting with a letter."""
    name = _NOT_NAME.sub("_", type_.upper()).strip("_") or "VALUE"
    return name if name[0].isalpha() else f"X_{name}"


def redaction(type_: str | None = None) -> str:
    """``[REDACTED_EMAIL_ADDRESS]`` for a type, ``[REDACTED]`` without one: never restorable."""
    return f"[REDACTED_{placeholder_type(type_)}]" if type_ else "[REDACTED]"


@dataclass(frozen=True, slots=True)
class Entry:
    """One placeholder: its name (``PERSON_1``), type, comparison key and the original value it stands for."""

    name: str
    type: str
    key: str
    original: str


class Vault:
    """The placeholders of one request (or of one conversation, when sealed and unsealed between requests).

    Call ``reserve`` on every text of the request before tokenising any (``tokenize_all`` does), so that no
    placeholder-shaped text the caller sent can be mistaken for one of ours.
    """

    def __init__(self, entries: Iterable[Entry] = (), counts: Mapping[str, int] | None = None) -> None:
        self._entries: dict[str, Entry] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = dict(counts or {})
        self._reserved: set[str] = set()
        self._retired: list[str] = []
        self._used: dict[str, None] = {}  # names handed out by this instance, in order
        self._added: list[str] = []  # of those, the ones this instance created
        for entry in entries:
            self._entries[entry.name] = entry
            self._names[entry.type, entry.key] = entry.name

    def __len__(self) -> int:
        return len(self._entries)

    def placeholder(self, type_: str, value: str) -> str:
        """The placeholder for ``value`` (``[EMAIL_ADDRESS_2]``): the one it already has, else the next free one."""
        kind = placeholder_type(type_)
        key = value_key(type_, value)
        name = self._names.get((kind, key))
        if name is None:
            name = self._next(kind)
            self._entries[name] = Entry(name, kind, key, value)
            self._names[kind, key] = name
            self._added.append(name)
        self._used[name] = None
        return f"[{name}]"

    def _next(self, kind: str) -> str:
        count = self._counts.get(kind, 0)
        while True:
            count += 1
            name = f"{kind}_{count}"
            if name not in self._reserved and name not in self._entries:
                self._counts[kind] = count
                return name

    def reserve(self, text: str) -> None:
        """Keep every placeholder-shaped run of the caller's ``text`` out of our placeholders (see the module doc)."""
        for match in SHAPE.finditer(text):
            name = (match.group(1) or match.group(2)).upper()
            self._reserved.add(name)
            entry = self._entries.pop(name, None)
            if entry is not None:
                del self._names[entry.type, entry.key]
                self._retired.append(entry.original)

    def mapping(self) -> dict[str, str]:
        """Placeholder name (``PERSON_1``, no brackets) -> the original value, for every restorable placeholder."""
        return {name: entry.original for name, entry in self._entries.items()}

    def entries(self) -> Iterator[Entry]:
        """The restorable placeholders, in the order they were handed out (what ``seal`` keeps)."""
        return iter(tuple(self._entries.values()))

    def counts(self) -> dict[str, int]:
        """The last number handed out per type, so that a resumed vault does not hand one out twice."""
        return dict(self._counts)

    def used(self) -> Vault:
        """A vault of only the placeholders this instance handed out: what one request may restore, when the
        vault it started from is a project's, shared with other callers."""
        return Vault(self._entries[name] for name in self._used if name in self._entries)

    def added(self) -> list[Entry]:
        """The entries this instance created (what a persisted vault must gain), still restorable."""
        return [self._entries[name] for name in self._added if name in self._entries]

    def supplied(self) -> tuple[str, ...]:
        """Every value the caller sent that the vault has seen, retired ones too: the answer may repeat them."""
        return (*(entry.original for entry in self._entries.values()), *self._retired)


def _kept(text: str, findings: Iterable[Finding]) -> list[Finding]:
    """Findings inside ``text`` in order of start, the earlier (then longer) one winning where two overlap."""
    ordered = sorted(findings, key=lambda found: (found.start, found.start - found.end))
    kept: list[Finding] = []
    for finding in ordered:
        if 0 <= finding.start < finding.end <= len(text) and (not kept or finding.start >= kept[-1].end):
            kept.append(finding)
    return kept


def _replace(text: str, findings: Sequence[Finding], marks: Sequence[str]) -> str:
    parts: list[str] = []
    position = 0
    for finding, mark in zip(findings, marks, strict=True):
        parts += (text[position : finding.start], mark)
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)


def tokenize(text: str, findings: Iterable[Finding], vault: Vault) -> str:
    """``text`` with each finding's span replaced by its placeholder; spans refer to ``text`` as given.

    Numbers are handed out left to right, so a text tokenised twice with fresh vaults reads the same.
    """
    vault.reserve(text)
    kept = _kept(text, findings)
    marks = [vault.placeholder(finding.type, text[finding.start : finding.end]) for finding in kept]
    return _replace(text, kept, marks)


def tokenize_all(parts: Iterable[tuple[str, Iterable[Finding]]], vault: Vault) -> list[str]:
    """Tokenise every text of a request in its canonical order (messages, then their content parts).

    Reserves the shapes of all texts first, so a placeholder-like string in a later message cannot retire a
    placeholder an earlier one already uses; the same conversation then always gets the same placeholders.
    """
    return protect_all(parts, vault, lambda _: "tokenize")


def protect_all(
    parts: Iterable[tuple[str, Iterable[Finding]]], vault: Vault, action: Callable[[str], str]
) -> list[str]:
    """Like ``tokenize_all``, with each finding's type choosing its fate: ``tokenize`` (a placeholder),
    ``redact`` (``[REDACTED_<TYPE>]``) or anything else (left as it is)."""
    pairs = [(text, list(findings)) for text, findings in parts]
    for text, _ in pairs:
        vault.reserve(text)
    out: list[str] = []
    for text, findings in pairs:
        kept = [finding for finding in _kept(text, findings) if action(finding.type) in ("tokenize", "redact")]
        marks = [
            vault.placeholder(found.type, text[found.start : found.end])
            if action(found.type) == "tokenize"
            else redaction(found.type)
            for found in kept
        ]
        out.append(_replace(text, kept, marks))
    return out


def redact(text: str, findings: Iterable[Finding], *, typed: bool = True) -> str:
    """``text`` with each finding replaced by ``[REDACTED_<TYPE>]`` (or ``[REDACTED]``); nothing to restore."""
    kept = _kept(text, findings)
    return _replace(text, kept, [redaction(finding.type if typed else None) for finding in kept])


class VaultRejected(ValueError):
    """A sealed vault that cannot be used: wrong key or context, altered, unreadable or expired.

    Not a refusal for the client: the gateway starts a fresh vault (placeholders renumber) and logs why.
    """


class VaultExpired(VaultRejected):
    """A sealed vault past its TTL."""


_HEADER = struct.Struct(">BQ")  # format version, expiry in Unix seconds; authenticated as associated data
_VERSION = 1
_NONCE = 12
_TAG = 16


def _seconds(now: datetime) -> float:
    if now.tzinfo is None:
        raise ValueError("'now' must be timezone-aware (datetime.now(UTC)).")
    return now.timestamp()


def seal(vault: Vault, key: bytes, *, now: datetime, ttl: timedelta, context: bytes = b"") -> bytes:
    """The vault encrypted with AES-GCM under ``key`` (16, 24 or 32 bytes), readable until ``now + ttl``.

    ``context`` (a project or conversation id) is bound to the blob: ``unseal`` must be given the same.
    """
    if ttl <= timedelta(0):
        raise ValueError("A sealed vault needs a positive TTL.")
    header = _HEADER.pack(_VERSION, int(_seconds(now) + ttl.total_seconds()))
    body = orjson.dumps(
        {"entries": [[e.name, e.type, e.key, e.original] for e in vault.entries()], "counts": vault.counts()}
    )
    nonce = secrets.token_bytes(_NONCE)
    return header + nonce + AESGCM(key).encrypt(nonce, body, header + context)


def unseal(blob: bytes, key: bytes, *, now: datetime, context: bytes = b"") -> Vault:
    """The vault ``seal`` made, or ``VaultRejected`` (``VaultExpired`` once its TTL has passed)."""
    if len(blob) < _HEADER.size + _NONCE + _TAG or blob[0] != _VERSION:
        raise VaultRejected("The sealed vault is not in a format this version of Bastion reads.")
    header, nonce, sealed = (
        blob[: _HEADER.size],
        blob[_HEADER.size : _HEADER.size + _NONCE],
        blob[_HEADER.size + _NONCE :],
    )
    try:
        body = AESGCM(key).decrypt(nonce, sealed, header + context)
    except InvalidTag as exc:
        raise VaultRejected("The sealed vault does not verify: wrong key or context, or it was altered.") from exc
    _, expires = _HEADER.unpack(header)
    if _seconds(now) >= expires:
        raise VaultExpired("The sealed vault has expired; start a fresh one.")
    return _vault_of(orjson.loads(body))


def _vault_of(data: object) -> Vault:
    """The vault a sealed body describes (authenticated, so only its shape is checked)."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("entries"), list)
        or not isinstance(data.get("counts"), dict)
    ):
        raise VaultRejected("The sealed vault is unreadable.")
    rows, counts = data["entries"], data["counts"]
    if not all(isinstance(row, list) and len(row) == 4 and all(isinstance(v, str) for v in row) for row in rows):
        raise VaultRejected("The sealed vault is unreadable.")
    if not all(isinstance(count, int) for count in counts.values()):
        raise VaultRejected("The sealed vault is unreadable.")
    return Vault((Entry(*row) for row in rows), counts)
