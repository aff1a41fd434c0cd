"""When each key was last used: remembered in memory on the request path, written to the store in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

log = logging.getLogger(__name__)


class KeyUsage:
    def __init__(self, write: Callable[[dict[str, datetime]], None], interval: float = 5.0) -> None:
        self._write = write
        self._interval = interval
        self._used: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, key_id: str, at: datetime) -> None:
        self._used[key_id] = at

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        used, self._used = self._used, {}
        if not used:
            return
        try:
            await asyncio.to_thread(self._write, used)
        except SQLAlchemyError as exc:
            log.warning("could not record key use: %s", type(exc).__name__)
            self._used = {**used, **self._used}

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
