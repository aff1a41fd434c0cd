"""What a recogniser is: an entity, candidate patterns, context words and a validator, as data.

The engine compiles every recogniser's ``patterns`` into one Hyperscan database. A pattern only proposes
candidates; ``spans`` cuts a candidate into the sub-spans worth checking (longest first), ``validate`` gives
the first one that holds a score (or ``None``), and context words near it raise or lower that score.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Span = tuple[int, int]
Validator = Callable[[str], "float | None"]
Splitter = Callable[[str], Sequence[Span]]
Widener = Callable[[str, int, int], Span]
Glue = Callable[[str, int, int], bool]

CONTEXT_BOOST = 0.35
_GROUP = re.compile(r"[A-Za-z0-9]+")


def as_matched(text: str, start: int, end: int) -> Span:
    """The candidate as the pattern matched it."""
    return start, end


def whole(candidate: str) -> Sequence[Span]:
    """The candidate as it was matched."""
    return ((0, len(candidate)),)


def grouped(fewest: int, most: int, *, from_start: bool = False) -> Splitter:
    """Split on separators: each run of consecutive letter-and-digit groups holding ``fewest`` to ``most``
    characters, longest first; with ``from_start``, only runs from the first group (an IBAN starts with its
    country). A value inside a longer candidate (a card number before a year) is still found."""

    def spans(candidate: str) -> Sequence[Span]:
        if candidate.isalnum():
            return ((0, len(candidate)),) if fewest <= len(candidate) <= most else ()
        groups = [match.span() for match in _GROUP.finditer(candidate)]
        found: list[Span] = []
        for first, (start, _) in enumerate(groups[:1] if from_start else groups):
            count = 0
            for group_start, group_end in groups[first:]:
                count += group_end - group_start
                if count > most:
                    break
                if count >= fewest:
                    found.append((start, group_end))
        return sorted(found, key=lambda span: span[0] - span[1])

    return spans


def runs_on(*, spaced: int = 0) -> Glue:
    """A test for a number that is only part of a longer one: a letter or digit right next to it, a digit
    just past a '.' or '-' (``1.2.3.4`` inside ``1.2.3.4.5``) and, with ``spaced``, a group of that many
    digits just past a space (a phone number inside a row of numbers)."""

    def test(text: str, start: int, end: int) -> bool:
        return _continues(text, start - 1, -1, spaced) or _continues(text, end, 1, spaced)

    return test


def _continues(text: str, at: int, step: int, spaced: int) -> bool:
    """Whether the text at ``at`` (walking away from the value by ``step``) carries the number on."""
    if not 0 <= at < len(text):
        return False
    near = text[at]
    if near.isascii() and near.isalnum():
        return True
    length = 1 if near in ".-" else spaced if near == " " else 0
    group = text[at + step : at + step + length] if step > 0 else text[max(0, at - length) : at]
    return length > 0 and len(group) == length and group.isascii() and group.isdigit()


def after(marker: str, trim: str = "") -> Splitter:
    """The value after the first match of ``marker`` (a Python regex), less any trailing ``trim`` characters:
    the password in ``password = "..."``, the key in ``AccountKey=...``."""
    found = re.compile(marker)

    def spans(candidate: str) -> Sequence[Span]:
        match = found.search(candidate)
        end = len(candidate.rstrip(trim))
        return ((match.end(), end),) if match is not None and end > match.end() else ()

    return spans


def trailing(chars: str) -> Splitter:
    """The run of ``chars`` that ends the candidate: the 40 characters after ``aws_secret_access_key = ``."""
    allowed = frozenset(chars)

    def spans(candidate: str) -> Sequence[Span]:
        start = len(candidate)
        while start > 0 and candidate[start - 1] in allowed:
            start -= 1
        return ((start, len(candidate)),) if start < len(candidate) else ()

    return spans


@dataclass(frozen=True, slots=True)
class Recognizer:
    """One kind of sensitive value: what it is called, how to spot it and how to confirm it.

    ``patterns`` are Hyperscan expressions (ASCII only, no look-around, no negated classes); ``widen`` may
    grow a match where a pattern would be slow to (an email's local part, a phone extension). ``validate``
    returns the base score of a value or ``None`` to reject it. ``context`` words (whole words or phrases, in
    any case; letters beyond ASCII as written) shortly before or after a value add ``CONTEXT_BOOST`` to its
    score, ``negative`` words take it away; a value whose score ends below ``min_score`` is dropped, and with
    ``needs_context`` one without context is too.
    A numeric recogniser has a ``glue`` test (``runs_on``): a candidate that is a decimal number, or a value
    that the test finds running on into more digits, is not a value.

    On overlaps the higher ``priority`` wins, then the higher score, then the longer span. ``ceiling`` is the
    highest score ``validate`` gives (higher ones are cut to it): the engine validates the recognisers that
    could score highest first, and never validates a candidate where a surer finding already holds the text.
    """

    name: str
    entity: str
    patterns: tuple[str, ...]
    validate: Validator
    spans: Splitter = whole
    widen: Widener = as_matched
    context: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    min_score: float = 0.5
    needs_context: bool = False
    glue: Glue | None = None
    caseless: bool = False
    min_length: int = 0
    priority: int = 0
    ceiling: float = 1.0
