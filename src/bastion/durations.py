"""Human durations (``30d``, ``24h``, ``90m``, ``45s``) as used by the CLI and the config file."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """Parse ``<number><unit>`` with unit one of s, m, h, d, w; raise ValueError with the fix."""
    match = _PATTERN.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"'{text}' is not a duration; write a positive number and a unit, e.g. 30d, 24h, 90m or 45s")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def format_duration(value: timedelta) -> str:
    """The shortest exact form: ``timedelta(days=30)`` -> ``30d``, ``timedelta(hours=36)`` -> ``36h``."""
    seconds = int(value.total_seconds())
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
