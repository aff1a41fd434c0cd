"""Both tiers together: the pattern tier always, the NER tier for projects that turn it on, merged so that a
validated pattern finding wins over a name that overlaps it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bastion.protect.detect.finding import merge
from bastion.protect.detect.ner import load_ner

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from bastion.protect.detect.engine import Detector, Validations
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

    def detect_texts(self, texts: Sequence[str], *, ner: bool, memo: Validations | None = None) -> list[list[Finding]]:
        """The findings of each text, in order, each list sorted by start and free of overlaps.

        A pattern finding was validated (a checksum, a phone-number plan, a key format), so it wins over a name
        that overlaps it: "Visa 4111 1111 1111 1111" stays a card number however the NER tier reads it.
        """
        patterns = self.detector.scan_many(texts, memo)
        if not ner:
            return patterns
        names = self._ner().scan_many(texts)
        return [merge(found, named) for found, named in zip(patterns, names, strict=True)]
