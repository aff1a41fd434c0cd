"""The key cache on the request path: a dict in front of the store, emptied when the change feed moves.

Unknown keys are cached too (as ``None``) so that a flood of bad keys does not become a flood of
queries. The cache is bounded; when full it starts again empty rather than tracking recency.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.identity.keys import KeyRecord
    from bastion.store.changes import ChangeFeed

MAX_ENTRIES = 100_000


class KeyCache:
    def __init__(
        self, lookup: Callable[[str], KeyRecord | None], feed: ChangeFeed, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._lookup = lookup
        self._feed = feed
        self._max = max_entries
        self._entries: dict[str, KeyRecord | None] = {}
        self._token: int | None = None

    async def get(self, digest: str) -> KeyRecord | None:
        """The key whose keyed hash is ``digest``, or None; consults the store only on a miss."""
        token = self._feed.token("keys")
        if token != self._token:
            self._entries.clear()
            self._token = token
        try:
            record = self._entries[digest]
        except KeyError:
            record = await asyncio.to_thread(self._lookup, digest)
            if len(self._entries) >= self._max:
                self._entries.clear()
            if token == self._token:
                self._entries[digest] = record
        if record is not None and not hmac.compare_digest(record.hash, digest):
            return None
        return record

    def invalidate(self) -> None:
        self._entries.clear()
