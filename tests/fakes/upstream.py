"""A fake OpenAI-compatible upstream for end-to-end tests, run in its own process.

    python -m tests.fakes.upstream --port 9999

The model name it receives picks the behaviour (``BEHAVIOURS``): ``fake-ok`` answers, ``fake-400`` refuses,
``fake-429`` is rate-limited, ``fake-500`` fails, ``fake-slow`` answers too late, ``fake-reset`` resets the
connection, ``fake-cut`` drops the connection mid-stream, ``fake-truncate`` ends the stream without ``[DONE]``,
``fake-stall`` stops sending mid-stream. Every request is recorded (``GET``/``DELETE /_received``) and every request
whose client went away before the answer was complete is counted, in all and by model (``GET /_events``).
Answers are pure functions of the request (``completion``, ``chunks``, ``embeddings``), so a test can compute
exactly what its client must get back.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

CREATED = 1_700_000_000
VENDOR = {"x_vendor_field": {"region": "fake-1", "trace": ["a", 1, None]}}
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
ERROR_400 = {
    "error": {
        "message": "Invalid value for 'temperature': fake-400 refuses every request.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "invalid_value",
    }
}
ERROR_429 = {
    "error": {
        "message": "Rate limit reached for fake-429 on requests per min (RPM): Limit 1, Used 1, Requested 1.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
# What a crashing upstream might send; none of it may reach a client.
FAILURE_500 = (
    'Traceback (most recent call last):\n  File "upstream.py", line 1\nRuntimeError: fake upstream internals\n'
)
PIECE = 8  # characters of content per streamed chunk
PREFIX_EVENTS = 3  # events that fake-cut, fake-truncate and fake-stall send before they fail
SLOW_SECONDS = 30.0

RECEIVED = web.AppKey("received", list)
EVENTS = web.AppKey("events", dict)
Answer = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def reply_text(body: dict[str, Any], index: int) -> str:
    """The assistant's answer for choice ``index``: it quotes the last message, so each test gets its own."""
    content = body["messages"][-1].get("content")
    quoted = content if isinstance(content, str) else json.dumps(content)
    return f"fake says: {quoted} (choice {index})"


def _tool_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    name = body["tools"][0]["function"]["name"]
    return [{"id": "call_fake_0", "type": "function", "function": {"name": name, "arguments": '{"city": "Paris"}'}}]


def _message(body: dict[str, Any], index: int) -> dict[str, Any]:
    if body.get("tools"):
        return {"role": "assistant", "content": None, "tool_calls": _tool_calls(body), "x_message_note": "kept"}
    return {"role": "assistant", "content": reply_text(body, index), "x_message_note": "kept"}


def completion(body: dict[str, Any]) -> dict[str, Any]:
    """The non-streaming answer to a chat completion request."""
    finish = "tool_calls" if body.get("tools") else "stop"
    choices = [
        {"index": i, "message": _message(body, i), "logprobs": None, "finish_reason": finish}
        for i in range(body.get("n") or 1)
    ]
    head = {"id": "chatcmpl-fake", "object": "chat.completion", "created": CREATED, "model": body["model"]}
    return {**head, "choices": choices, "usage": USAGE, **VENDOR}


def chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The events' data of a streamed answer, in order, without the final ``[DONE]``."""
    head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": CREATED, "model": body["model"]}
    indexes = range(body.get("n") or 1)

    def chunk(deltas: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
        choices = [{"index": i, "delta": deltas[i], "logprobs": None, "finish_reason": finish} for i in indexes]
        return {**head, "choices": choices, **VENDOR}

    texts = [reply_text(body, i) for i in indexes]
    out = [chunk([{"role": "assistant", "content": ""} for _ in indexes])]
    for start in range(0, max(len(text) for text in texts), PIECE):
        out.append(chunk([{"content": text[start : start + PIECE]} for text in texts]))
    out.append(chunk([{} for _ in indexes], "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append({**head, "choices": [], "usage": USAGE, **VENDOR})
    return out


def vector(text: str, index: int) -> list[float]:
    """An embedding whose values are exact in float32, so a base64 round trip loses nothing."""
    return [float(len(text)), float(index), 0.5, -1.25]


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    value = body["input"]
    inputs = [value] if isinstance(value, str) else value
    data = []
    for index, item in enumerate(inputs):
        values = vector(str(item), index)
        encoded: Any = values
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    usage = {"prompt_tokens": 5, "total_tokens": 5}
    return {"object": "list", "data": data, "model": body["model"], "usage": usage, **VENDOR}


def _event(data: dict[str, Any] | str) -> bytes:
    return b"data: " + (data if isinstance(data, str) else json.dumps(data)).encode() + b"\n\n"


async def _open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    return response


async def _write_events(response: web.StreamResponse, events: list[dict[str, Any]]) -> None:
    # Each event goes out in two writes so that the gateway has to join split events.
    for data in events:
        raw = _event(data)
        await response.write(raw[: len(raw) // 2])
        await response.write(raw[len(raw) // 2 :])


async def _hang() -> None:
    """Wait until the server cancels the handler because the connection went away."""
    await asyncio.Event().wait()


async def _answer_chat(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    if not body.get("stream"):
        return web.json_response(completion(body))
    response = await _open_stream(request)
    await _write_events(response, chunks(body))
    await response.write(_event("[DONE]"))
    await response.write_eof()
    return response


async def _answer_embeddings(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return web.json_response(embeddings(body))


async def _ok(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    return await answer(request, body)


async def _refuse(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    return web.json_response(ERROR_400, status=400)


async def _rate_limit(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    return web.json_response(ERROR_429, status=429, headers={"Retry-After": "7"})


async def _fail(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    return web.Response(status=500, text=FAILURE_500, content_type="text/plain")


async def _slow(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    await asyncio.sleep(SLOW_SECONDS)
    return await answer(request, body)


async def _reset(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    transport = request.transport
    assert transport is not None
    # Linger 0 makes close() send a TCP RST instead of a FIN: a reset, not an orderly end.
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await _hang()
    raise AssertionError("unreachable")


async def _cut(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    response = await _open_stream(request)
    await _write_events(response, chunks(body)[:PREFIX_EVENTS])
    assert request.transport is not None
    request.transport.close()  # the events written so far go out, then a FIN in the middle of the chunked body
    await _hang()
    return response


async def _truncate(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    response = await _open_stream(request)
    await _write_events(response, chunks(body)[:PREFIX_EVENTS])
    await response.write_eof()  # a well-formed end of the body, but the stream never said [DONE]
    return response


async def _stall(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    response = await _open_stream(request)
    await _write_events(response, chunks(body)[:PREFIX_EVENTS])
    await _hang()
    return response


Behaviour = Callable[[web.Request, dict[str, Any], Answer], Awaitable[web.StreamResponse]]
BEHAVIOURS: dict[str, Behaviour] = {
    "fake-ok": _ok,
    "fake-400": _refuse,
    "fake-429": _rate_limit,
    "fake-500": _fail,
    "fake-slow": _slow,
    "fake-reset": _reset,
    "fake-cut": _cut,
    "fake-truncate": _truncate,
    "fake-stall": _stall,
}


async def _record(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    request.app[RECEIVED].append(
        {
            "method": request.method,
            "path": request.path,
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "body": body,
        }
    )
    return body if isinstance(body, dict) else {}


def _endpoint(answer: Answer) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await _record(request)
        behaviour = BEHAVIOURS.get(str(body.get("model")))
        if behaviour is None:
            error = {"message": f"The model '{body.get('model')}' does not exist", "code": "model_not_found"}
            return web.json_response({"error": error}, status=404)
        try:
            return await behaviour(request, body, answer)
        except asyncio.CancelledError:
            # The server cancels a handler when its connection goes away: the client gave up on this request.
            _abandoned(request.app, body["model"])
            raise
        except ConnectionResetError as exc:  # the client went away while the handler was still writing
            _abandoned(request.app, body["model"])
            raise asyncio.CancelledError from exc

    return handle


def _abandoned(app: web.Application, model: str) -> None:
    events = app[EVENTS]
    events["cancelled"] += 1
    events["cancelled_models"][model] = events["cancelled_models"].get(model, 0) + 1


async def _received(request: web.Request) -> web.Response:
    return web.json_response(request.app[RECEIVED])


async def _clear(request: web.Request) -> web.Response:
    request.app[RECEIVED].clear()
    return web.Response(status=204)


async def _events(request: web.Request) -> web.Response:
    return web.json_response(request.app[EVENTS])


def make_app() -> web.Application:
    app = web.Application()
    app[RECEIVED] = []
    app[EVENTS] = {"cancelled": 0, "cancelled_models": {}}
    app.router.add_post("/v1/chat/completions", _endpoint(_answer_chat))
    app.router.add_post("/v1/embeddings", _endpoint(_answer_embeddings))
    app.router.add_get("/_received", _received)
    app.router.add_delete("/_received", _clear)
    app.router.add_get("/_events", _events)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible upstream for Bastion's tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # handler_cancellation: a handler is cancelled when its client goes away, which is how fake-stall notices.
    web.run_app(
        make_app(),
        host=args.host,
        port=args.port,
        handler_cancellation=True,
        shutdown_timeout=1.0,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
