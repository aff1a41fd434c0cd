from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from bastion.api.streaming import relay, unless_disconnected
from bastion.errors import ClientDisconnected, UpstreamError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

pytestmark = pytest.mark.anyio


class Client:
    """Records what the gateway sends; says it disconnected once ``leave`` is set."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.leave = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def receive(self) -> dict[str, Any]:
        await self.leave.wait()
        return {"type": "http.disconnect"}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def test_events_are_sent_as_they_come_and_the_response_ends() -> None:
    async def events() -> AsyncGenerator[bytes, None]:
        yield b"data: 1\n\n"
        yield b"data: [DONE]\n\n"

    client = Client()
    await relay(client.send, client.receive, events(), lambda exc: None)
    assert client.sent[0]["status"] == 200
    assert client.body == b"data: 1\n\ndata: [DONE]\n\n"
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_an_upstream_failure_mid_stream_becomes_an_error_event() -> None:
    failures: list[UpstreamError] = []

    async def events() -> AsyncGenerator[bytes, None]:
        yield b"data: 1\n\n"
        raise UpstreamError("The upstream provider 'x' ended the stream before it finished.")

    client = Client()
    await relay(client.send, client.receive, events(), failures.append)
    first, error, _ = client.body.split(b"\n\n")
    assert first == b"data: 1"
    assert orjson.loads(error.removeprefix(b"data: "))["error"]["code"] == "upstream_unavailable"
    assert len(failures) == 1


async def test_a_client_that_leaves_closes_the_upstream_stream() -> None:
    state = {"closed": False, "sent": 0}
    client = Client()

    async def events() -> AsyncGenerator[bytes, None]:
        try:
            while True:
                state["sent"] += 1
                if state["sent"] == 3:
                    client.leave.set()
                yield b"data: x\n\n"
                await asyncio.sleep(0.01)
        finally:
            state["closed"] = True

    await asyncio.wait_for(relay(client.send, client.receive, events(), lambda exc: None), timeout=2)
    assert state["closed"]
    assert state["sent"] <= 4


async def test_a_client_that_leaves_before_the_answer_cancels_the_work() -> None:
    client = Client()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def upstream_call() -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "answer"

    async def leave() -> None:
        await started.wait()
        client.leave.set()

    leaving = asyncio.ensure_future(leave())
    with pytest.raises(ClientDisconnected):
        await asyncio.wait_for(unless_disconnected(client.receive, upstream_call()), timeout=2)
    await leaving
    assert cancelled.is_set()


async def test_work_that_finishes_first_returns_its_result() -> None:
    async def quick() -> str:
        return "answer"

    assert await unless_disconnected(Client().receive, quick()) == "answer"
