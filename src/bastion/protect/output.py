"""Mask the sensitive values in an answer that the caller did not supply, in one piece (``OutputMasker.mask``)
or as a stream (``StreamMasker``) that never lets out a fragment of a value before deciding on it.

The stream holds back the trailing text that could still become, or still change the verdict on, a sensitive
value, and releases everything before it once scanned:

- the open *run* at the end, while it may still grow: the last whitespace-free token, or tokens joined by single
  spaces, tabs or line breaks where one of each two holds a digit (card, phone, IBAN, NINO groups, dates);
  an unclosed PEM block;
- the last ``after`` characters, because the detector reads that far past a value for context words
  ("... 021000021 is the routing number");
- and nothing that a finding in the scanned text runs across.

The hold-back is capped at ``hold`` characters (256): past it, text is released after scanning, and a finding
across the cut is masked whole. Values longer than the cap are the documented limit of the no-fragment promise.

Whatever the event boundaries, the streamed output equals ``mask`` of the whole answer, provided the detector
is local: what it finds in a value depends on the value's run and on at most ``before`` characters before and
``after`` characters after it (``Detector`` reads 48 and 24).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from bastion.protect.tokenize import RULES, clean, redaction, rule_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from bastion.protect.detect.finding import Finding

Action = Literal["redact", "allow"]

HOLD, BEFORE, AFTER = 256, 64, 24
_ACTIONS = ("redact", "allow")
# A run: tokens joined by single spaces, tabs or line breaks wherever one of the two holds a digit
# (``4111 1111``, ``AB 12 34 56 C``, ``12 March 1990``, ``GB82 WEST 1234``), else a token on its own.
_D, _N, _J = r"(?>\S*\d\S*)", r"(?>[^\s\d]+)(?!\S)", r"(?:[ \t]|\r?\n)"
RUN = re.compile(rf"(?:{_N}{_J})?{_D}(?:{_J}(?:{_N}{_J})?{_D})*(?:{_J}{_N})?|\S+")
_DIGIT = re.compile(r"\d")
_JOINERS = frozenset((" ", "\t", "\r", "\n", "\r\n"))
# In a JSON string: escape sequences and the quotes around strings, seen by the detector as spaces.
_JSON_NOISE = re.compile(r'\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4})|"')


def json_view(text: str) -> str:
    """``text`` (JSON source) with escapes and quotes blanked out, same length: ``\\nalice@x.com`` is then found
    as ``alice@x.com``, and the quotes around strings become word boundaries."""
    return _JSON_NOISE.sub(lambda match: " " * len(match.group()), text)


@dataclass(frozen=True, slots=True)
class Supplied:
    """The values the caller sent, keyed under every comparison rule, to ask "did the caller send this?"."""

    keys: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, values: Iterable[str]) -> Supplied:
        """Build once per request from ``Vault.supplied()`` and any values the input policy allowed."""
        cleaned = [clean(value) for value in values]
        return cls({rule: frozenset(key for value in cleaned if (key := fn(value))) for rule, fn in RULES.items()})

    def __contains__(self, item: tuple[str, str]) -> bool:
        type_, value = item
        rule = rule_for(type_)
        key = RULES[rule](clean(value))
        return bool(key) and key in self.keys[rule]


def resolve(findings: Iterable[Finding]) -> list[Finding]:
    """Findings in order of start, the earlier (then longer) one winning where two overlap."""
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda found: (found.start, found.start - found.end)):
        if finding.end > finding.start and (not kept or finding.start >= kept[-1].end):
            kept.append(finding)
    return kept


class OutputMasker:
    """Masks what ``detect`` finds in an answer unless the caller supplied it or the policy allows its type.

    ``policy`` maps a type to ``"redact"`` or ``"allow"``; other types get ``default``. Build one per request
    with ``supplied=vault.supplied()`` (plus any values the input policy let through untouched).
    """

    def __init__(
        self,
        detect: Callable[[str], Sequence[Finding]],
        *,
        supplied: Iterable[str] = (),
        policy: Mapping[str, Action] | None = None,
        default: Action = "redact",
    ) -> None:
        actions = {**(policy or {}), "": default}
        wrong = sorted(type_ or "default" for type_, action in actions.items() if action not in _ACTIONS)
        if wrong:
            raise ValueError(f"Output policy for {', '.join(wrong)} must be 'redact' or 'allow'.")
        self._detect = detect
        self._supplied = Supplied.of(supplied)
        self._policy = dict(policy or {})
        self._default = default

    def masks(self, type_: str, value: str) -> bool:
        """True when ``value``, found as ``type_``, must not reach the caller."""
        return self._policy.get(type_, self._default) == "redact" and (type_, value) not in self._supplied

    def findings(self, view: str) -> list[Finding]:
        """What the detector finds in ``view``, overlaps resolved."""
        return resolve(self._detect(view))

    def apply(self, text: str, findings: Iterable[Finding]) -> str:
        """``text`` with the findings that ``masks`` (resolved, spans in ``text``) replaced by their redaction."""
        parts: list[str] = []
        position = 0
        for finding in findings:
            if self.masks(finding.type, text[finding.start : finding.end]):
                parts += (text[position : finding.start], redaction(finding.type))
                position = finding.end
        parts.append(text[position:])
        return "".join(parts)

    def mask(self, text: str, *, json_string: bool = False) -> str:
        """The whole answer masked (``json_string`` for tool-call arguments: JSON source, kept valid)."""
        return self.apply(text, self.findings(json_view(text) if json_string else text))

    def stream(
        self, *, json_string: bool = False, hold: int = HOLD, before: int = BEFORE, after: int = AFTER
    ) -> StreamMasker:
        """A ``StreamMasker`` for one text of the answer (one choice's content, one tool call's arguments)."""
        return StreamMasker(self, json_string=json_string, hold=hold, before=before, after=after)


class MaskerFactory(Protocol):
    """Makes the stream masker for one text of an answer; ``OutputMasker.stream`` is one."""

    def __call__(self, *, json_string: bool) -> StreamMasker: ...


def _as_is(text: str) -> str:
    return text


def _open_from(view: str, offset: int, runs: Sequence[tuple[int, int]]) -> int:
    """Where the text that may still join a run starts (relative to ``offset``); the text's length if none may.

    That is the last run when it reaches the end or one joiner short of it (a digit group may follow), and
    the run before a last lone word (the word may yet take a digit and join it).
    """
    length = len(view) - offset
    if not runs:
        return length
    start, end = runs[-1]
    if end < length:
        return start if view[offset + end :] in _JOINERS else length
    lone = len(runs) > 1 and not _DIGIT.search(view, offset + start, offset + end)
    if lone and view[offset + runs[-2][1] : offset + start] in _JOINERS:
        return runs[-2][0]
    return start


def _unclosed_pem(text: str) -> int:
    begin = text.rfind("-----BEGIN")
    return begin if begin >= 0 and text.find("-----END", begin) < 0 else len(text)


def _outside_runs(cut: int, runs: Sequence[tuple[int, int]]) -> int:
    """``cut``, or the start of the run it would split."""
    for start, end in runs:
        if start < cut < end:
            return start
    return cut


def _context(text: str, before: int, limit: int) -> str:
    """The last ``before`` characters of released text, extended back (by up to ``limit``) to the start of the
    token they cut: a detector that sees half of a long key could find something else in it."""
    start = len(text) - before
    if start <= 0:
        return text
    floor = max(0, start - limit)
    while start > floor and not text[start - 1].isspace():
        start -= 1
    return text[start:]


def _settle(cut: int, findings: Sequence[Finding], *, forced: bool) -> int:
    """Move ``cut`` off every finding it splits: back to its start, or (a forced cut) past its end."""
    moved = True
    while moved:
        moved = False
        for finding in findings:
            if finding.start < cut < finding.end:
                cut = finding.end if forced else finding.start
                moved = True
    return cut


class StreamMasker:
    """``OutputMasker.mask`` over a text that arrives in pieces: ``feed`` each delta, then ``flush`` once.

    No fragment of a value that ``mask`` would hide is ever returned before its mask (see the module doc for
    what is held back, and for how long).
    """

    def __init__(
        self,
        masker: OutputMasker,
        *,
        json_string: bool = False,
        hold: int = HOLD,
        before: int = BEFORE,
        after: int = AFTER,
    ) -> None:
        if min(hold, before, after) < 0 or hold < after:
            raise ValueError("hold, before and after must not be negative, and hold must be at least after.")
        self._masker = masker
        self._view: Callable[[str], str] = json_view if json_string else _as_is
        self._hold, self._before, self._after = hold, before, after
        self._left = ""  # released text, unmasked, kept as context for the detector
        self._pending = ""

    @property
    def held(self) -> int:
        """How many characters are held back now."""
        return len(self._pending)

    def feed(self, delta: str) -> str:
        """The masked text that may go now (possibly empty); the rest waits for more text or ``flush``."""
        self._pending += delta
        cut, forced = self._cut()
        return self._release(cut, forced=forced) if cut > 0 else ""

    def flush(self) -> str:
        """The rest, masked as the end of the text; the masker is then ready for a new text."""
        out = self._release(len(self._pending), forced=False, final=True) if self._pending else ""
        self._left = ""
        return out

    def _cut(self) -> tuple[int, bool]:
        """How much of the pending text may go, judged without the detector, and whether the cap forced it."""
        pending, offset = self._pending, len(self._left)
        view = self._view(self._left + pending)
        runs = [(match.start() - offset, match.end() - offset) for match in RUN.finditer(view, offset)]
        cut = min(_open_from(view, offset, runs), len(pending) - self._after, _unclosed_pem(pending))
        cut = _outside_runs(cut, runs)
        floor = len(pending) - self._hold
        return (floor, True) if floor > cut else (cut, False)

    def _release(self, cut: int, *, forced: bool, final: bool = False) -> str:
        pending, offset = self._pending, len(self._left)
        findings = [
            dataclasses.replace(found, start=max(found.start - offset, 0), end=found.end - offset)
            for found in self._masker.findings(self._view(self._left + pending))
            if found.end > offset
        ]
        if not final:
            cut = _settle(cut, findings, forced=forced)
        if cut <= 0:
            return ""
        self._left = _context(self._left + pending[:cut], self._before, self._hold)
        self._pending = pending[cut:]
        return self._masker.apply(pending[:cut], [found for found in findings if found.end <= cut])
