"""Outermost ASGI layer: a request id on every response, one access log line, and the last-resort handler."""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from bastion.api.http import send_error
from bastion.errors import BastionError
from bastion.obs import logs

if TYPE_CHECKING:
    from bastion.gateway.context import RequestContext

log = logging.getLogger(__name__)
HEADER = b"x-bastion-request-id"


class RequestIdMiddleware:
    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        scope["bastion.request_id"] = request_id
        header = (HEADER, request_id.encode())
        state = {"status": 0}
        started = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
                state["status"] = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        except Exception:  # the outermost handler: whatever escaped becomes a 500 envelope, never a traceback
            log.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            if state["status"] == 0:
                await send_error(
                    send_with_id,
                    BastionError("Bastion failed to handle the request; the error is logged under this request id."),
                )
        finally:
            _log_access(scope, request_id, state["status"], started)


def _log_access(scope: dict[str, Any], request_id: str, status: int, started: float) -> None:
    """The request's access line; its fields are only gathered when the access log is on."""
    if not logs.access_enabled():
        return
    logs.access(
        {
            "request_id": request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 3),
            **_fields(scope.get("bastion.context")),
        }
    )


def _fields(ctx: RequestContext | None) -> dict[str, Any]:
    """What the access log may say about a request: identifiers and numbers, never content."""
    if ctx is None:
        return {}
    return {
        "project": ctx.project,
        "key": ctx.key_prefix,
        "client_ip": str(ctx.client_ip) if ctx.client_ip else None,
        "model": ctx.model or None,
        "provider": ctx.provider,
        "stream": ctx.stream,
    }
