"""A finding: which kind of sensitive value sits where in a text, how sure we are, and who said so."""

from __future__ import annotations

from dataclasses import dataclass


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
