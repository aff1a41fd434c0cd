"""A finding: which kind of sensitive value sits where in a text, how sure we are, and who said so; and how two
lists of findings merge when one takes precedence."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True, slots=True)
class Finding:
    """A span ``[start, end)`` of the caller's text that holds a value of ``type`` (``EMAIL_ADDRESS``, ``SECRET``).

    The value itself is not kept: the caller has the text, and a finding can then be logged or audited
    without carrying what it found. ``recognizer`` names the rule that matched (``credit_card``,
    ``aws_access_key``), which says more than the type for secrets.
    """

    type: str
    start: int
    end: int
    score: float
    recognizer: str


def merge(first: Sequence[Finding], second: Sequence[Finding]) -> list[Finding]:
    """The findings of ``first`` and those of ``second`` that share no character with any of them, sorted by
    start: ``first`` takes precedence. Both lists must be sorted by start and free of overlaps."""
    starts = [finding.start for finding in first]
    kept = [finding for finding in second if not _overlaps(first, starts, finding)]
    return sorted([*first, *kept], key=lambda finding: (finding.start, finding.end))


def _overlaps(first: Sequence[Finding], starts: list[int], finding: Finding) -> bool:
    index = bisect_right(starts, finding.start)
    if index > 0 and first[index - 1].end > finding.start:
        return True
    return index < len(starts) and starts[index] < finding.end
