"""One detector for the whole session: compiling the patterns takes a moment, and scanning is pure."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bastion.protect.detect import Detector

Found = Callable[[str], list[tuple[str, str, str]]]


@pytest.fixture(scope="session")
def detector() -> Detector:
    return Detector()


@pytest.fixture(scope="session")
def found(detector: Detector) -> Found:
    """A factory: ``found(text)`` gives (type, value, recognizer) for each finding in ``text``."""

    def scan(text: str) -> list[tuple[str, str, str]]:
        return [(f.type, text[f.start : f.end], f.recognizer) for f in detector.scan(text)]

    return scan
