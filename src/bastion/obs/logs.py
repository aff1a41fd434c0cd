"""Structured logs: one JSON object per line; fields are identifiers and numbers, never content."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

ACCESS = logging.getLogger("bastion.access")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return orjson.dumps(entry).decode()


def configure(level: str = "INFO") -> None:
    """Send Bastion's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger("bastion")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def access(fields: dict[str, Any]) -> None:
    if ACCESS.isEnabledFor(logging.INFO):
        ACCESS.info("request", extra={"fields": fields})
