"""Relay an upstream's SSE events to the client as they arrive, and stop the upstream when the client leaves."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from bastion.api.errors import envelope
from bastion.errors import ClientDisconnected, UpstreamError
from bastion.gateway.sse import frame

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

T = TypeVar("T")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def relay(
    send: Any,
    receive: Any,
    events: AsyncGenerator[bytes, None],
    on_error: Callable[[UpstreamError], None],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send ``events``; a failure mid-stream becomes an SSE error event, then the stream ends.

    A client that disconnects cancels the relay, which closes ``events`` and so the upstream
    connection: no task or socket outlives the request.
    """
    await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *(headers or ())]})
    pump = asyncio.ensure_future(_pump(send, events, on_error))
    watch = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, watch):
            task.cancel()
        await asyncio.gather(pump, watch, return_exceptions=True)
        await events.aclose()
    if pump.done() and not pump.cancelled() and (failure := pump.exception()) is not None:
        raise failure


async def unless_disconnected(receive: Any, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it (and so the upstream call) if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)
    if task.cancelled():
        raise ClientDisconnected("The client disconnected before the answer was ready.")
    return task.result()


async def _pump(send: Any, events: AsyncGenerator[bytes, None], on_error: Callable[[UpstreamError], None]) -> None:
    try:
        async for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
    except UpstreamError as exc:
        on_error(exc)
        await send({"type": "http.response.body", "body": frame(envelope(exc)), "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        continue
