"""The caller cache on the request path: a dict in front of the store, emptied when the change feed moves.

Keyed by the key's keyed hash; a hit costs one dict lookup and one feed check. Unknown keys are cached
too (as ``None``) so that a flood of bad keys does not become a flood of queries. The cache is
bounded; when full it starts again empty rather than tracking recency.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING

from bastion.identity.keys import KeyRecord

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.identity.keys import Caller
    from bastion.store.changes import ChangeFeed

MAX_ENTRIES = 100_000
REVISION = "org"


class CallerCache:
    def __init__(
        self, lookup: Callable[[str], Caller | KeyRecord | None], feed: ChangeFeed, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._lookup = lookup
        self._feed = feed
        self._max = max_entries
        self._entries: dict[str, Caller | KeyRecord | None] = {}
        self._token: int | None = None

    async def get(self, digest: str) -> Caller | KeyRecord | None:
        """The caller whose key has the keyed hash ``digest``, or None; the store is read only on a miss."""
        token = self._feed.token(REVISION)
        if token != self._token:
            self._entries.clear()
            self._token = token
        try:
            caller = self._entries[digest]
        except KeyError:
            caller = await asyncio.to_thread(self._lookup, digest)
            if len(self._entries) >= self._max:
                self._entries.clear()
            if token == self._token:
                self._entries[digest] = caller
        if caller is None:
            return None
        stored = caller.hash if isinstance(caller, KeyRecord) else caller.key.hash
        return caller if hmac.compare_digest(stored, digest) else None
