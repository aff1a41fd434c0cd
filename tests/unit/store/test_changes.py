from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bastion.store.changes import bump, open_feed

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.services import Services


def wait_for(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_feed_moves_when_another_connection_bumps(make_services: Callable[..., Services], database_url: str) -> None:
    engine = make_services(database_url).engine
    feed = open_feed(engine)
    try:
        before = feed.token("keys")
        assert feed.token("keys") == before  # no change, same token: the cache stays warm
        with engine.begin() as connection:
            bump(connection, "keys")
        assert wait_for(lambda: feed.token("keys") != before)
        with engine.begin() as connection:
            bump(connection, "brand-new-kind")  # a kind without a row yet is created
        assert wait_for(lambda: feed.token("brand-new-kind") != 0)
    finally:
        feed.close()
