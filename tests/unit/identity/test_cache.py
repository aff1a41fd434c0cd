from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bastion.identity.cache import KeyCache
from bastion.identity.keys import KeyRecord


class Feed:
    def __init__(self) -> None:
        self.value = 0

    def token(self, name: str) -> int:
        return self.value

    def close(self) -> None:
        """Nothing to close."""


def make_record(digest: str) -> KeyRecord:
    return KeyRecord("key_1", "p", "n", "bst_x", digest, "active", datetime(2026, 1, 1, tzinfo=UTC), None, None)


class Store:
    def __init__(self) -> None:
        self.rows = {"a" * 64: make_record("a" * 64)}
        self.lookups: list[str] = []

    def lookup(self, digest: str) -> KeyRecord | None:
        self.lookups.append(digest)
        return self.rows.get(digest)


@pytest.mark.anyio
async def test_hits_do_not_query_the_store_and_misses_are_cached_too() -> None:
    store, feed = Store(), Feed()
    cache = KeyCache(store.lookup, feed)
    assert await cache.get("a" * 64) == store.rows["a" * 64]
    assert await cache.get("a" * 64) == store.rows["a" * 64]
    assert await cache.get("b" * 64) is None
    assert await cache.get("b" * 64) is None
    assert store.lookups == ["a" * 64, "b" * 64]


@pytest.mark.anyio
async def test_a_moved_feed_empties_the_cache() -> None:
    store, feed = Store(), Feed()
    cache = KeyCache(store.lookup, feed)
    await cache.get("a" * 64)
    store.rows["a" * 64] = replace(store.rows["a" * 64], status="revoked")
    assert (await cache.get("a" * 64)).status == "active"  # type: ignore[union-attr]
    feed.value += 1
    assert (await cache.get("a" * 64)).status == "revoked"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_cache_is_bounded() -> None:
    store = Store()
    cache = KeyCache(store.lookup, Feed(), max_entries=2)
    for digest in ("1", "2", "3", "1"):
        await cache.get(digest)
    assert store.lookups == ["1", "2", "3", "1"]
