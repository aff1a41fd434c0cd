"""Detection: find sensitive values in text as typed, scored spans (``Detector().scan(text)``)."""

from __future__ import annotations

from bastion.protect.detect.engine import Detector
from bastion.protect.detect.finding import Finding
from bastion.protect.detect.recognizer import Recognizer
from bastion.protect.detect.recognizers import ENTITIES, RECOGNIZERS

__all__ = ["ENTITIES", "RECOGNIZERS", "Detector", "Finding", "Recognizer"]
