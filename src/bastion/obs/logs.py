"""Structured logs: one JSON object per line; fields are identifiers and numbers, never content."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

ACCESS = logging.getLogger("bastion.access")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


class JSONFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        # The access log writes a line per request; the time stamp only changes once a second.
        self._stamp: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return orjson.dumps(entry).decode()

    def _time(self, created: float) -> str:
        """``formatTime(record, TIME_FORMAT)``, formatted once per second."""
        second = int(created)
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (second, time.strftime(TIME_FORMAT, self.converter(created)))
        return stamp[1]


def configure(level: str = "INFO") -> None:
    """Send Bastion's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger("bastion")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def access_enabled() -> bool:
    """Whether :func:`access` writes anything, so callers can skip gathering its fields."""
    return ACCESS.isEnabledFor(logging.INFO)


def access(fields: dict[str, Any]) -> None:
    """One line per request. The record is made directly: the caller's file and line, which
    ``Logger.info`` would look up on every request, are not part of an access line."""
    if ACCESS.isEnabledFor(logging.INFO):
        record = ACCESS.makeRecord(ACCESS.name, logging.INFO, "", 0, "request", (), None, extra={"fields": fields})
        ACCESS.handle(record)
