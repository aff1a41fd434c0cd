"""Server-sent events: cut a byte stream into whole events, read their data, frame new ones.

Upstreams deliver events split at arbitrary byte offsets; Bastion forwards only whole events so that
whatever it adds (an error event, later restored text) never lands inside someone else's event.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE = re.compile(rb"\r\n|\n|\r")
DONE = b"[DONE]"


class EventSplitter:
    """Feed bytes in any pieces; get back each complete event (with its blank-line terminator)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        start = 0
        # A terminator may straddle two chunks ("\r\n" + "\r\n"), so search the joined buffer.
        for match in _END.finditer(buffer):
            yield buffer[start : match.end()]
            start = match.end()
        self._buffer = buffer[start:]

    @property
    def pending(self) -> bytes:
        """Bytes of an event that has not ended yet."""
        return self._buffer


def data_of(event: bytes) -> bytes | None:
    """The event's data (``data:`` lines joined by newlines), or None when it carries none."""
    parts = [line[5:].removeprefix(b" ") for line in _LINE.split(event) if line.startswith(b"data:")]
    return b"\n".join(parts) if parts else None


def is_done(event: bytes) -> bool:
    return data_of(event) == DONE


def frame(data: bytes) -> bytes:
    """An event carrying ``data`` (one ``data:`` line per line of it)."""
    return b"".join(b"data: " + line + b"\n" for line in data.split(b"\n")) + b"\n"
