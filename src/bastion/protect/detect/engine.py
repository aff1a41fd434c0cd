"""The pattern tier: one Hyperscan database over every recogniser's patterns and context words, then
validators, context scores and overlap resolution, on normalised text whose spans map back to the caller's.

A second, tiny database finds the characters normalisation folds, faster than a regex can. Hyperscan is
required: a platform without it, or a pattern it cannot compile, fails at construction with a ``ConfigError``
naming the pattern. There is no slower fallback that would quietly change what is found.
"""

from __future__ import annotations

import functools
import heapq
import re
import threading
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

import hyperscan

from bastion.errors import ConfigError
from bastion.protect.detect.finding import Finding
from bastion.protect.detect.recognizer import CONTEXT_BOOST, Recognizer, whole
from bastion.protect.detect.recognizers import RECOGNIZERS
from bastion.protect.normalize import DROPPED, MARKS, ONE_FOR_ONE, Normalized, fold_runs, normalize, substitute

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

BEFORE, AFTER = 48, 24  # how many characters before and after a value are searched for context words
_DECIMAL = re.compile(r"\d+\.\d+")
_Hit = tuple[int, int, int]  # pattern id, start, end
_Rank = tuple[int, float, int, int]  # minus priority, minus score, minus length, start: smallest wins
_Queued = tuple[_Rank, int, int, "_Candidate | Finding"]  # rank, kind, order of arrival, item
# What each value validated to (recogniser index, value) -> base score or None, kept by the caller for the scans
# of one request: a value of the prompt comes back in the answer (restored from its placeholder), and a stream's
# answer is scanned again as it grows. Validation is a pure function of the value, so findings are unchanged.
Validations = dict[tuple[int, str], "float | None"]
_FINDING, _CANDIDATE = 0, 1  # at equal rank a finding goes first, so that it can spare a candidate's check
_ONE_FOR_ONE, _DROPPED, _MARKED = 0, 1, 2  # pattern ids in the normalisation database
_NO_EXTENSION = (0, 0, 0, 0, 0, 0)


class _Nearby:
    """Where one text mentions each recogniser's context words (kind ``2i``) and negative words (``2i + 1``)."""

    def __init__(self, hits: Iterable[tuple[int, int, int]]) -> None:
        found: dict[int, list[tuple[int, int]]] = {}
        for kind, start, end in hits:
            found.setdefault(kind, []).append((start, end))
        self._spans = {kind: sorted(spans) for kind, spans in found.items()}
        self._starts = {kind: [start for start, _ in spans] for kind, spans in self._spans.items()}

    def mentions(self, kind: int) -> bool:
        """True when the text holds a word of ``kind`` anywhere."""
        return kind in self._spans

    def within(self, kind: int, low: int, high: int) -> bool:
        """True when a word of ``kind`` lies wholly inside ``[low, high)``."""
        spans = self._spans.get(kind)
        if not spans:
            return False
        for start, end in spans[bisect_left(self._starts[kind], low) :]:
            if start >= high:
                return False
            if end <= high:
                return True
        return False


@dataclass(frozen=True, slots=True)
class _Rule:
    """A recogniser and the kind numbers of its context words in ``_Nearby``."""

    recognizer: Recognizer
    kind: int

    def possible(self, nearby: _Nearby) -> bool:
        """False when the recogniser needs context words and the text has none of them anywhere."""
        recognizer = self.recognizer
        needs = recognizer.needs_context or recognizer.ceiling < recognizer.min_score
        return not needs or nearby.mentions(self.kind)

    def bound(self, nearby: _Nearby, start: int, end: int) -> float | None:
        """The best score any value inside the candidate ``[start, end)`` could reach (context words anywhere
        near it count, negative ones do not), or ``None`` when none could reach the minimum."""
        recognizer = self.recognizer
        found = nearby.within(self.kind, start - BEFORE, end + AFTER)
        if recognizer.needs_context and not found:
            return None
        best = min(1.0, recognizer.ceiling + CONTEXT_BOOST * found)
        return best if best >= recognizer.min_score else None

    def score(self, nearby: _Nearby, start: int, end: int, base: float) -> float | None:
        """The base score moved by context words around ``[start, end)``; ``None`` when below the minimum."""
        found = nearby.within(self.kind, start - BEFORE, start) or nearby.within(self.kind, end, end + AFTER)
        if self.recognizer.needs_context and not found:
            return None
        negative = nearby.within(self.kind + 1, start - BEFORE, start) or nearby.within(self.kind + 1, end, end + AFTER)
        score = round(min(1.0, base + CONTEXT_BOOST * (found - negative)), 2)
        return score if score >= self.recognizer.min_score else None


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A span a recogniser's pattern matched, not yet validated."""

    owner: int
    start: int
    end: int


class _Kept:
    """The findings accepted so far: never overlapping, sorted by start."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.findings: list[Finding] = []

    def overlaps(self, start: int, end: int) -> bool:
        """True when an accepted finding shares a character with ``[start, end)``."""
        index = bisect_right(self.starts, start)
        if index > 0 and self.findings[index - 1].end > start:
            return True
        return index < len(self.starts) and self.starts[index] < end

    def covers(self, start: int, end: int) -> bool:
        """True when one finding holds all of ``[start, end)``."""
        index = bisect_right(self.starts, start)
        return index > 0 and self.findings[index - 1].end >= end

    def add(self, finding: Finding) -> None:
        index = bisect_right(self.starts, finding.start)
        self.starts.insert(index, finding.start)
        self.findings.insert(index, finding)


class _Hits(list[_Hit]):
    """The matches of one scan, and Hyperscan's match callback that notes them."""

    def __call__(self, pattern: int, start: int, end: int, flags: int, context: object) -> None:
        self.append((pattern, start, end))


def _char_offsets(data: bytes, hits: list[_Hit]) -> list[_Hit]:
    """Turn UTF-8 byte offsets into character offsets (patterns match at character boundaries), decoding
    each stretch between consecutive offsets once."""
    chars: dict[int, int] = {}
    count = previous = 0
    for offset in sorted({offset for _, start, end in hits for offset in (start, end)}):
        count += len(data[previous:offset].decode("utf-8"))
        previous = offset
        chars[offset] = count
    return [(pattern, chars[start], chars[end]) for pattern, start, end in hits]


def _loose(recognizer: Recognizer, text: str, start: int, end: int) -> bool:
    """True when a numeric value is no value: a decimal number, or one that runs on into more digits."""
    glue = recognizer.glue
    return glue is not None and (_DECIMAL.fullmatch(text, start, end) is not None or glue(text, start, end))


def _dismissed(recognizer: Recognizer, text: str, start: int, end: int) -> bool:
    """True for a numeric candidate no part of which can be a value: a decimal number, or, where only the
    whole candidate is ever checked, a number that runs on into more digits."""
    if recognizer.glue is None:
        return False
    if recognizer.spans is whole:
        return _loose(recognizer, text, start, end)
    return _DECIMAL.fullmatch(text, start, end) is not None


class Detector:
    """Finds sensitive values in text. Build one at start and share it: construction compiles the patterns
    (about half a second); ``scan`` is pure and safe to call from several threads at once."""

    def __init__(self, recognizers: Sequence[Recognizer] = RECOGNIZERS) -> None:
        self._rules = tuple(_Rule(rec, 2 * index) for index, rec in enumerate(recognizers))
        self._owners = tuple(index for index, rec in enumerate(recognizers) for _ in rec.patterns)
        self._database = _compile(_expressions(recognizers))
        self._foldable = _compile_foldable()
        self._threads = threading.local()

    @property
    def recognizers(self) -> tuple[Recognizer, ...]:
        """The recognisers this detector runs, in the order given."""
        return tuple(rule.recognizer for rule in self._rules)

    def scan(self, text: str, memo: Validations | None = None) -> list[Finding]:
        """Every sensitive value in ``text``, sorted by start, with spans in ``text``'s own characters.

        ``memo`` keeps what each value validated to across the scans of one request (see :data:`Validations`).
        """
        normalized = self.normalize(text)
        candidates, nearby = self._match(normalized.text)
        kept = self._select(normalized.text, candidates, nearby, memo)
        return [_to_original(finding, normalized) for finding in kept]

    def scan_many(self, texts: Iterable[str], memo: Validations | None = None) -> list[list[Finding]]:
        """``scan`` over each text: the findings of each, in order."""
        return [self.scan(text, memo) for text in texts]

    def normalize(self, text: str) -> Normalized:
        """What ``scan`` reads: ``normalize(text)``, with Hyperscan finding the characters to fold in NFKC
        text (a tiny database that scans at memory speed where a regex walks the text one character at a time)."""
        if text.isascii() or not unicodedata.is_normalized("NFKC", text):
            return normalize(text)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: the careful path replaces them
            return normalize(text)
        hits = _Hits()
        self._foldable.scan(data, match_event_handler=hits, scratch=self._scratch("fold"))
        spans = sorted((start, end) for _, start, end in _char_offsets(data, hits))
        if all(pattern == _ONE_FOR_ONE for pattern, _, _ in hits):
            return substitute(text, [start for start, _ in spans])
        return fold_runs(text, spans)

    def _match(self, text: str) -> tuple[dict[tuple[int, int], int], _Nearby]:
        """One scan: the longest match of each recogniser at each start (Hyperscan reports every end, with
        its leftmost start), and where context words are."""
        data = text.encode("utf-8")
        hits = _Hits()
        self._database.scan(data, match_event_handler=hits, scratch=self._scratch("match"))
        patterns, owners = len(self._owners), self._owners
        longest: dict[tuple[int, int], int] = {}
        words: list[_Hit] = []
        for pattern, start, end in hits:
            if pattern >= patterns:
                words.append((pattern - patterns, start, end))
            elif end > longest.get((owners[pattern], start), -1):
                longest[owners[pattern], start] = end
        if len(data) != len(text):  # byte offsets to characters, once the longest matches are known
            count = len(longest)
            kept = _char_offsets(data, [(owner, start, end) for (owner, start), end in longest.items()] + words)
            longest = {(owner, start): end for owner, start, end in kept[:count]}
            words = kept[count:]
        return longest, _Nearby(words)

    def _select(
        self, text: str, candidates: dict[tuple[int, int], int], nearby: _Nearby, memo: Validations | None
    ) -> list[Finding]:
        """Keep one finding per stretch of text: higher priority, then higher score, then longer, then earlier.

        Greedy in that order, validating lazily: a candidate enters the queue ranked by the best its
        recogniser could score, is validated when it comes first, and goes back ranked by what it scored.
        What a surer finding already holds is never validated (phone numbers inside card numbers, say).
        """
        queue = self._queue(text, candidates, nearby)
        kept = _Kept()
        order = len(queue)
        while queue:
            _, _, _, item = heapq.heappop(queue)
            if isinstance(item, _Candidate):
                judged = self._judge(item, text, kept, nearby, memo)
                if judged is not None:
                    order += 1
                    heapq.heappush(queue, (judged[0], _FINDING, order, judged[1]))
            elif not kept.overlaps(item.start, item.end):
                kept.add(item)
        return kept.findings

    def _queue(self, text: str, candidates: dict[tuple[int, int], int], nearby: _Nearby) -> list[_Queued]:
        """The candidates, widened, once each, as a heap ranked by the best each could score. Left out: those
        that could not reach their minimum score, and numbers that are no values as matched."""
        widened = set()
        for (owner, matched), matched_end in candidates.items():
            if self._rules[owner].possible(nearby):
                widened.add((owner, *self._rules[owner].recognizer.widen(text, matched, matched_end)))
        queue: list[_Queued] = []
        for owner, start, end in widened:
            rule = self._rules[owner]
            if _dismissed(rule.recognizer, text, start, end):
                continue
            best = rule.bound(nearby, start, end)
            if best is not None:
                rank = (-rule.recognizer.priority, -best, start - end, start)
                queue.append((rank, _CANDIDATE, len(queue), _Candidate(owner, start, end)))
        heapq.heapify(queue)
        return queue

    def _judge(
        self, item: _Candidate, text: str, kept: _Kept, nearby: _Nearby, memo: Validations | None
    ) -> tuple[_Rank, Finding] | None:
        """The first span the recogniser proposes inside the candidate that is free and validates, scored."""
        rule = self._rules[item.owner]
        recognizer = rule.recognizer
        if kept.covers(item.start, item.end):
            return None
        candidate = text[item.start : item.end]
        for left, right in recognizer.spans(candidate):
            start, end = item.start + left, item.start + right
            if kept.overlaps(start, end) or _loose(recognizer, text, start, end):
                continue
            value = candidate[left:right]
            if memo is None:
                base = recognizer.validate(value)
            elif (item.owner, value) in memo:
                base = memo[item.owner, value]
            else:
                base = memo[item.owner, value] = recognizer.validate(value)
            if base is None:
                continue
            score = rule.score(nearby, start, end, min(base, recognizer.ceiling))
            if score is None:
                return None
            finding = Finding(recognizer.entity, start, end, score, recognizer.name)
            return (-recognizer.priority, -score, start - end, start), finding
        return None

    def _scratch(self, name: str) -> hyperscan.Scratch:
        """Hyperscan's scratch space is per database and thread: made the first time a thread scans."""
        scratch = getattr(self._threads, name, None)
        if scratch is None:
            scratch = hyperscan.Scratch(self._foldable if name == "fold" else self._database)
            setattr(self._threads, name, scratch)
        return scratch


@functools.cache
def shared_detector() -> Detector:
    """The process's detector with Bastion's recognisers: compiled once (most of a second), then shared by every
    gateway and command in the process. A detector never changes after it is built and scans from any thread."""
    return Detector()


def _to_original(finding: Finding, normalized: Normalized) -> Finding:
    start, end = normalized.to_original(finding.start, finding.end)
    return Finding(finding.type, start, end, finding.score, finding.recognizer)


@dataclass(frozen=True, slots=True)
class _Expression:
    """One pattern for Hyperscan, with its id, flags and extended parameters, and who it belongs to."""

    id: int
    label: str
    pattern: str
    flags: int
    extension: tuple[int, int, int, int, int, int] = _NO_EXTENSION


def _expressions(recognizers: Sequence[Recognizer]) -> list[_Expression]:
    """Every recogniser's candidate patterns (ids ``0..P-1``), then each one's context and negative words
    (ids ``P + 2i`` and ``P + 2i + 1``, for the lists that are not empty)."""
    som, caseless = hyperscan.HS_FLAG_SOM_LEFTMOST, hyperscan.HS_FLAG_CASELESS
    patterns = [(rec, pattern) for rec in recognizers for pattern in rec.patterns]
    expressions = [
        _Expression(number, f"recogniser {rec.name!r}", pattern, som | caseless * rec.caseless, _extension(rec))
        for number, (rec, pattern) in enumerate(patterns)
    ]
    for index, rec in enumerate(recognizers):
        for offset, (label, words) in enumerate((("context", rec.context), ("negative", rec.negative))):
            if words:
                number = len(patterns) + 2 * index + offset
                expressions.append(_Expression(number, f"{label} words of {rec.name!r}", _words(words), som | caseless))
    return expressions


def _words(words: Sequence[str]) -> str:
    """Whole words and phrases, each with an optional plural "s" ("card" finds "cards", not "discard");
    letters beyond ASCII are matched as their UTF-8 bytes, in the case written."""
    return "|".join(_word(word) for word in sorted(words, key=len, reverse=True))


def _word(word: str) -> str:
    body = "".join(re.escape(char) if char.isascii() else _utf8(char) for char in word)
    head = r"\b" if word[0].isascii() and word[0].isalnum() else ""
    tail = r"s?\b" if word[-1].isascii() and word[-1].isalnum() else ""
    return f"(?:{head}{body}{tail})"


def _utf8(char: str) -> str:
    return "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8"))


def _extension(recognizer: Recognizer) -> tuple[int, int, int, int, int, int]:
    """Hyperscan's extended parameters: flags, min and max offset, min length, edit and Hamming distance."""
    if recognizer.min_length:
        return hyperscan.HS_EXT_FLAG_MIN_LENGTH, 0, 0, recognizer.min_length, 0, 0
    return _NO_EXTENSION


def _compile(expressions: Sequence[_Expression]) -> hyperscan.Database:
    """One block-mode database of all ``expressions``."""
    for expression in expressions:
        if not expression.pattern.isascii():
            raise ConfigError(f"The {expression.label} has a non-ASCII pattern; write it with ASCII escapes.")
    try:
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        database.compile(
            expressions=[expression.pattern.encode("ascii") for expression in expressions],
            ids=[expression.id for expression in expressions],
            elements=len(expressions),
            flags=[expression.flags for expression in expressions],
            ext=[expression.extension for expression in expressions],
        )
    except hyperscan.error as exc:
        raise ConfigError(f"Detection patterns do not compile: {_culprit(expressions)}{exc}") from exc
    return database


def _culprit(expressions: Sequence[_Expression]) -> str:
    """Compile the patterns one by one to name the first that fails (only on the error path)."""
    for expression in expressions:
        try:
            hyperscan.Database().compile(
                expressions=[expression.pattern.encode("ascii")], ids=[0], elements=1, flags=[expression.flags]
            )
        except hyperscan.error:
            return f"the {expression.label}, pattern {expression.pattern!r}: "
    return ""


def _compile_foldable() -> hyperscan.Database:
    """Where ``normalize`` has work in NFKC text: characters that fold one for one, invisible characters, and
    a combining mark right after an ASCII character or an invisible one (``fold_runs`` takes in the rest of
    the cluster). Marks are this Python's, not Hyperscan's older Unicode tables'."""
    flags = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_SOM_LEFTMOST
    dropped, marks = _utf8_class(DROPPED), _utf8_class(MARKS)
    expressions = [
        _Expression(_ONE_FOR_ONE, "normalisation pattern", _utf8_class(ONE_FOR_ONE), flags),
        _Expression(_DROPPED, "normalisation pattern", dropped, flags),
        _Expression(_MARKED, "normalisation pattern", rf"[\x00-\x7f]{marks}", flags),
        _Expression(_MARKED, "normalisation pattern", f"{dropped}{marks}", flags),
    ]
    return _compile(expressions)


def _utf8_class(codes: Sequence[int]) -> str:
    """A Hyperscan UTF-8 character class of ``codes`` (sorted), as ranges."""
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "[" + "".join(f"\\x{{{low:x}}}-\\x{{{high:x}}}" for low, high in ranges) + "]"
