"""Run the whole gateway in-process for a test: ASGI through httpx, lifespan steps called directly."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx

from bastion.app import BastionApp, create_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from bastion.config import Settings
    from bastion.runtime import Runtime


@asynccontextmanager
async def in_process(
    settings: Settings, env: Mapping[str, str] | None = None, client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[tuple[BastionApp, httpx.AsyncClient]]:
    app = create_app(settings, env={} if env is None else env)
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://bastion") as http:
            yield app, http
    finally:
        await app.shutdown()


def runtime_of(app: BastionApp) -> Runtime:
    if app.runtime is None:
        raise RuntimeError("the app has not started")
    return app.runtime
