"""Detection: find sensitive values in text as typed, scored spans (``Detector().scan(text)``), with names
from the optional NER tier for projects that turn it on (``Detection.detect_texts``)."""

from __future__ import annotations

from bastion.protect.detect.engine import Detector, shared_detector
from bastion.protect.detect.finding import Finding, merge
from bastion.protect.detect.ner import NerTier, load_ner, ner_available
from bastion.protect.detect.recognizer import Recognizer
from bastion.protect.detect.recognizers import ENTITIES, RECOGNIZERS
from bastion.protect.detect.tiers import Detection

__all__ = [
    "ENTITIES",
    "RECOGNIZERS",
    "Detection",
    "Detector",
    "Finding",
    "NerTier",
    "Recognizer",
    "load_ner",
    "merge",
    "ner_available",
    "shared_detector",
]
