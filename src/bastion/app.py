"""The ASGI application: routes, the outermost middleware and the lifespan; no logic of its own."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bastion.api.admin import PREFIX as ADMIN
from bastion.api.audit import PREFIX as AUDIT
from bastion.api.http import send_error
from bastion.api.middleware import RequestIdMiddleware
from bastion.config import Settings, load_settings
from bastion.errors import BastionError, NotFound, Unavailable
from bastion.runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)


class BastionApp:
    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self._env = env
        self.runtime: Runtime | None = None
        self._handler = RequestIdMiddleware(self._dispatch)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._handler(scope, receive, send)

    async def startup(self) -> None:
        self.runtime = await Runtime.start(self.settings, self._env)

    async def shutdown(self) -> None:
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except BastionError as exc:
                    await send({"type": "lifespan.startup.failed", "message": exc.message})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _dispatch(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        runtime = self.runtime
        if runtime is None:
            await send_error(send, Unavailable("Bastion is starting or stopping; try again in a moment."))
            return
        path: str = scope["path"]
        if path.startswith("/v1/"):
            await runtime.openai(scope, receive, send)
            return
        if path == ADMIN or path.startswith(ADMIN + "/"):
            await runtime.admin(scope, receive, send)
            return
        if path == AUDIT or path.startswith(AUDIT + "/"):
            await runtime.audit_api(scope, receive, send)
            return
        plain: dict[str, Callable[[dict[str, Any], Any, Any], Awaitable[None]]] = {
            "/healthz": runtime.health.healthz,
            "/readyz": runtime.health.readyz,
            "/metrics": runtime.health.metrics,
        }
        handler = plain.get(path)
        if handler is None:
            served = "the OpenAI API is under /v1, the admin API under /admin/v1, the audit API under /audit/v1"
            await send_error(send, NotFound(f"Bastion does not serve {path}; {served}."))
            return
        await handler(scope, receive, send)


def create_app(settings: Settings, env: Mapping[str, str] | None = None) -> BastionApp:
    """The gateway for ``settings``; provider keys are read from ``env`` (default: the process environment)."""
    return BastionApp(settings, env)


def app_from_env() -> BastionApp:
    """Factory for ``uvicorn --factory`` with several workers: settings from ``BASTION_CONFIG``."""
    return create_app(load_settings())
