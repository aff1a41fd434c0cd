"""Both tiers together: the pattern tier always, the NER tier for projects that turn it on, merged so that a
validated pattern finding wins over a name that overlaps it."""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

from bastion.protect.detect.ner import load_ner

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from bastion.protect.detect.engine import Detector
    from bastion.protect.detect.finding import Finding
    from bastion.protect.detect.ner import NerTier


class Detection:
    """What the request path calls, once per request: ``detect_texts(texts, ner=policy.ner)``.

    Build one at start and share it; it is safe to call from worker threads. The NER tier is asked for
    only when a request needs it, so a gateway whose projects all leave NER off never loads spaCy; one
    that has such a project should call ``load_ner()`` at start, which fails there if the model is missing.
    """

    def __init__(self, detector: Detector, ner: Callable[[], NerTier] = load_ner) -> None:
        self.detector = detector
        self._ner = ner

    def detect_texts(self, texts: Sequence[str], *, ner: bool) -> list[list[Finding]]:
        """The findings of each text, in order, each list sorted by start and free of overlaps."""
        patterns = self.detector.scan_many(texts)
        if not ner:
            return patterns
        names = self._ner().scan_many(texts)
        return [merge(found, named) for found, named in zip(patterns, names, strict=True)]


def merge(patterns: Sequence[Finding], names: Sequence[Finding]) -> list[Finding]:
    """The pattern tier's findings and the names that share no character with any of them, sorted by start.

    A pattern finding was validated (a checksum, a phone-number plan, a key format), so it wins: "Visa
    4111 1111 1111 1111" stays a card number however the NER tier reads it. Both lists must be sorted by
    start and free of overlaps, as each tier returns them.
    """
    starts = [finding.start for finding in patterns]
    kept = [name for name in names if not _overlaps(patterns, starts, name)]
    return sorted([*patterns, *kept], key=lambda finding: (finding.start, finding.end))


def _overlaps(patterns: Sequence[Finding], starts: list[int], name: Finding) -> bool:
    index = bisect_right(starts, name.start)
    if index > 0 and patterns[index - 1].end > name.start:
        return True
    return index < len(starts) and starts[index] < name.end
