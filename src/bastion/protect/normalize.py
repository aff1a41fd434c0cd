"""Fold the Unicode tricks that hide a value from detection, and map spans back to the original text.

``normalize(text)`` applies NFKC, turns every decimal digit into its ASCII digit, drops invisible
characters (zero-width, bidi controls, tag characters, variation selectors, soft hyphens), maps look-alike
dashes to ``-`` and odd spaces to `` ``, and strips combining marks stacked on ASCII characters. Detection
runs on ``Normalized.text``; ``Normalized.to_original`` turns a span found there into the span of the
characters the caller sent.

NFKC is applied cluster by cluster (a character and its combining marks), so Hangul jamo written apart stay
apart; letters that only look alike (a Cyrillic "\u043e" in an address) are not folded. ``fold_runs`` and
``substitute`` are for callers that find the characters to fold themselves (the detector, with Hyperscan).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

# Default-ignorable and format characters that render as nothing: removed outright.
_INVISIBLE = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark (bidi)
    (0x115F, 0x1160),  # Hangul fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space, non-joiner, joiner; LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated format characters
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero-width no-break space (BOM)
    (0xFFA0, 0xFFA0),  # half-width Hangul filler
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0000, 0xE007F),  # Unicode tag characters
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
_DASHES = (
    *(0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2043, 0x2212),
    *(0x02D7, 0x058A, 0x1806, 0x2E3A, 0x2E3B, 0xFE58, 0xFE63, 0xFF0D),
)
_SPACES = (0x00A0, 0x1680, 0x202F, 0x205F, 0x3000, *range(0x2000, 0x200B))
_LINE_BREAKS = (0x0085, 0x2028, 0x2029)
_SURROGATES = (0xD800, 0xDFFF)


def _table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for low, high in _INVISIBLE:
        table.update(dict.fromkeys(range(low, high + 1)))
    table.update(dict.fromkeys(_DASHES, "-"))
    table.update(dict.fromkeys(_SPACES, " "))
    table.update(dict.fromkeys(_LINE_BREAKS, "\n"))
    table.update(dict.fromkeys(range(_SURROGATES[0], _SURROGATES[1] + 1), "\ufffd"))
    return table


_TABLE = MappingProxyType(_table())


def _class(codes: list[int]) -> str:
    """A regex character class body for ``codes`` (sorted), as ranges: a long list of single characters,
    astral ones above all, makes Python's matcher test them one by one."""
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(f"{re.escape(chr(low))}-{re.escape(chr(high))}" for low, high in ranges)


# Runs of non-ASCII characters: everything outside them is already normal.
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# Decimal digits other than ASCII's (Arabic-Indic, Devanagari, full-width...) and combining marks, as this
# Python's Unicode database has them: all below U+20000 but for variation selectors, which are dropped anyway.
_CATEGORIES = [(code, unicodedata.category(chr(code))) for code in range(0x80, 0x20000)]
_FOREIGN_DIGITS = [code for code, category in _CATEGORIES if category == "Nd"]

# Invisible characters: dropped, and transparent when marks are gathered onto the character before them.
DROPPED = tuple(sorted(code for code, value in _TABLE.items() if value is None))
_DROPPED = frozenset(DROPPED)
# Combining marks that are not dropped (variation selectors are marks too).
MARKS = tuple(code for code, category in _CATEGORIES if category.startswith("M") and code not in _DROPPED)
# What folds one character for one (dashes, spaces, line breaks, digits), in place.
_ONE_FOR_ONE = MappingProxyType(
    {code: value for code, value in _TABLE.items() if value and value != "\ufffd"}
    | {code: str(unicodedata.decimal(chr(code))) for code in _FOREIGN_DIGITS}
)
ONE_FOR_ONE = tuple(sorted(_ONE_FOR_ONE))
# Characters whose fold, standing alone, is the table's: dropped or replaced one for one.
_SIMPLE = MappingProxyType({code: value for code, value in _TABLE.items() if value != "\ufffd"} | _ONE_FOR_ONE)
_SPECIAL = re.compile("[" + _class(sorted(_SIMPLE)) + r"\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Normalized:
    """Text ready for detection, and how each of its characters maps back to the original.

    The map is stored as pieces: an exact piece copies a stretch of the original one character for one; a
    folded piece is the output of one original cluster, and each of its characters maps to the whole cluster.
    Dropped characters belong to no piece, so a span never starts or ends on one, except that a span touching
    either end of the text extends to that end of the original.
    """

    text: str
    original: str
    starts: tuple[int, ...] = field(repr=False)  # where each piece starts in ``text``
    origins: tuple[int, ...] = field(repr=False)  # where it starts in ``original``
    origin_ends: tuple[int, ...] = field(repr=False)  # where it ends in ``original``
    exact: tuple[bool, ...] = field(repr=False)  # True: one for one; False: all of it maps to the whole piece

    def origin(self, index: int) -> tuple[int, int]:
        """The range of original characters that normalised character ``index`` came from."""
        if not 0 <= index < len(self.text):
            raise IndexError(f"index {index} is outside the normalised text (length {len(self.text)})")
        piece = bisect_right(self.starts, index) - 1
        if self.exact[piece]:
            at = self.origins[piece] + index - self.starts[piece]
            return at, at + 1
        return self.origins[piece], self.origin_ends[piece]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the span ``[start, end)`` of the normalised text to the span of the original it covers."""
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(f"span [{start}, {end}) is outside the normalised text (length {len(self.text)})")
        left = self._left(start)
        if end == len(self.text):
            return left, len(self.original)
        return left, left if start == end else self.origin(end - 1)[1]

    def _left(self, start: int) -> int:
        if start == 0:
            return 0
        if start == len(self.text):
            return len(self.original)
        return self.origin(start)[0]


class _Builder:
    """Accumulates normalised text and its pieces, merging adjacent exact pieces."""

    def __init__(self, original: str) -> None:
        self.original = original
        self.parts: list[str] = []
        self.length = 0
        self.starts: list[int] = []
        self.origins: list[int] = []
        self.origin_ends: list[int] = []
        self.exact: list[bool] = []

    def keep(self, start: int, end: int, text: str | None = None) -> None:
        """Copy ``original[start:end]``, or put ``text`` of the same length in its place, one for one."""
        if start == end:
            return
        self.parts.append(self.original[start:end] if text is None else text)
        if self.exact and self.exact[-1] and self.origin_ends[-1] == start:
            self.origin_ends[-1] = end
        else:
            self._piece(start, end, exact=True)
        self.length += end - start

    def fold(self, start: int, end: int) -> None:
        """Normalise ``original[start:end]``, cluster by cluster (a base character and its combining marks)."""
        if end - start == 1 and ord(self.original[start]) in _SIMPLE:
            replacement = _SIMPLE[ord(self.original[start])]
            if replacement is not None:
                self.keep(start, end, replacement)
            return
        run = self.original[start:end]
        # A run starts with an ASCII character only when marks follow it: those are always folded.
        if not run[0].isascii() and unicodedata.is_normalized("NFKC", run) and not _SPECIAL.search(run):
            self.keep(start, end)
            return
        cluster = start
        for index in range(start + 1, end):
            char = self.original[index]
            if not _is_mark(char) and ord(char) not in _DROPPED:
                self._cluster(cluster, index)
                cluster = index
        self._cluster(cluster, end)

    def _cluster(self, start: int, end: int) -> None:
        folded = _fold(self.original[start:end])
        if len(folded) == 1 and end - start == 1:
            self.keep(start, end, folded)  # a dash, a space, a digit: still one for one
        elif folded == self.original[start:end]:
            self.keep(start, end)
        elif folded:
            self.parts.append(folded)
            self._piece(start, end, exact=False)
            self.length += len(folded)

    def _piece(self, start: int, end: int, *, exact: bool) -> None:
        self.starts.append(self.length)
        self.origins.append(start)
        self.origin_ends.append(end)
        self.exact.append(exact)

    def build(self) -> Normalized:
        text = "".join(self.parts)
        pieces = (tuple(self.starts), tuple(self.origins), tuple(self.origin_ends), tuple(self.exact))
        return Normalized(text, self.original, *pieces)


def _cluster_end(text: str, end: int) -> int:
    """Past the marks and invisible characters that follow ``end``: they fold with the run before them."""
    while end < len(text) and (_is_mark(text[end]) or ord(text[end]) in _DROPPED):
        end += 1
    return end


def _marked(text: str, start: int, end: int) -> bool:
    """True when the first visible character of the run is a combining mark."""
    for char in text[start:end]:
        if ord(char) not in _DROPPED:
            return _is_mark(char)
    return False


def _merged(runs: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Touching or overlapping runs as one: a dash and the mark after it fold together."""
    current: tuple[int, int] | None = None
    for start, end in runs:
        if current is not None and current[1] >= start:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


def _fold(cluster: str) -> str:
    folded = unicodedata.normalize("NFKC", cluster).translate(_TABLE)
    if len(folded) > 1 and folded[0].isascii():
        # A mark stacked on an ASCII character (a strike-through 4, a keycap 1) only disguises it.
        folded = folded[0] + "".join(char for char in folded[1:] if not _is_mark(char))
    return "".join(_ascii_digit(char) for char in folded)


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


def _ascii_digit(char: str) -> str:
    if char.isascii():
        return char
    digit = unicodedata.decimal(char, None)
    return char if digit is None else str(digit)


def normalize(text: str) -> Normalized:
    """Normalise ``text`` for detection: pure ASCII text costs one check; other text is folded run by run of
    non-ASCII characters. (The detector finds what to fold in NFKC text faster, and calls ``fold_runs``.)"""
    if text.isascii():
        return fold_runs(text, ())
    return fold_runs(text, (run.span() for run in _NON_ASCII.finditer(text)))


def substitute(text: str, positions: Iterable[int]) -> Normalized:
    """Normalise NFKC ``text`` whose foldable characters are all in ``ONE_FOR_ONE`` and at ``positions``
    (sorted): each character stays where it is, so the map is the identity."""
    parts: list[str] = []
    done = 0
    for index in positions:
        parts += (text[done:index], _ONE_FOR_ONE[ord(text[index])])
        done = index + 1
    parts.append(text[done:])
    return Normalized("".join(parts), text, (0,), (0,), (len(text),), (True,))


def fold_runs(text: str, runs: Iterable[tuple[int, int]]) -> Normalized:
    """Normalise ``text`` folding only ``runs`` (sorted spans of characters) and copying the rest.

    Right when nothing outside the runs needs folding: for NFKC text, when the runs hold every character of
    ``ONE_FOR_ONE`` and ``DROPPED`` and every combining mark after an ASCII character (invisibles between
    them allowed), with that character. The detector finds those with Hyperscan and calls this.
    """
    builder = _Builder(text)
    done = 0
    for run_start, run_end in _merged(runs):
        if run_end <= done:
            continue  # taken in with the cluster before it
        start = max(run_start, done)
        if start > done and _marked(text, start, run_end):
            start -= 1  # the marks belong to the character before them
        end = _cluster_end(text, run_end)
        builder.keep(done, start)
        builder.fold(start, end)
        done = end
    builder.keep(done, len(text))
    return builder.build()
