"""A fake OpenAI-compatible (and Azure OpenAI) upstream for end-to-end tests, run in its own process.

    python -m tests.fakes.upstream --port 9999 [--name east] [--fault '{"error_rate": 0.5}']

The model name it receives picks the behaviour (``BEHAVIOURS``): ``fake-ok`` answers, ``fake-chars`` answers
streaming one character a delta, ``fake-400`` refuses, ``fake-429`` is rate-limited, ``fake-500`` fails,
``fake-azure-429`` and ``fake-content-filter`` refuse as Azure does, ``fake-slow`` answers too late, ``fake-reset``
resets the connection, ``fake-cut`` drops the connection mid-stream, ``fake-truncate`` ends the stream without
``[DONE]``, ``fake-stall`` stops sending mid-stream. On Azure's routes (``/openai/deployments/{deployment}/...``)
the deployment plays the model's part. A fault set with ``POST /_fault`` (see ``tests/fakes/faults.py``)
overrides these behaviours for every request until ``DELETE /_fault``.

Every request is recorded (``GET``/``DELETE /_received``: method, path, query, headers, ``auth`` kind,
deployment and body), every request whose client went away before the answer was complete is counted
(``GET /_events``), and ``GET``/``DELETE /_stats`` count requests served and failed. With ``--name`` every
answer carries an ``x-fake-upstream`` header and completions a ``system_fingerprint`` with that name.
Answers are pure functions of the request and the name (``completion``, ``chunks``, ``embeddings``), so a
test can compute exactly what its client must get back.
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

from tests.fakes.faults import Fault, Faults, Stats, parse, pieces, rng_for

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
AZURE_429 = {
    "error": {
        "code": "429",
        "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 "
        "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds.",
    }
}
CONTENT_FILTER_400 = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": True, "severity": "medium"},
                "self_harm": {"filtered": False, "severity": "safe"},
                "sexual": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": False, "severity": "safe"},
            },
        },
    }
}
AZURE_401 = {
    "error": {
        "code": "401",
        "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
        "valid key for an active subscription and use a correct regional API endpoint for your resource.",
    }
}
AZURE_404 = {"error": {"code": "404", "message": "Resource not found"}}
# What a crashing upstream might send; none of it may reach a client.
FAILURE_500 = (
    'Traceback (most recent call last):\n  File "upstream.py", line 1\nRuntimeError: fake upstream internals\n'
)
PIECE = 8  # characters of content per streamed chunk
PREFIX_EVENTS = 3  # events that fake-cut, fake-truncate, fake-stall and stall_during send before they fail
SLOW_SECONDS = 30.0
CHARS_MODEL = "fake-chars"  # streams one character of content a delta

RECEIVED = web.AppKey("received", list)
EVENTS = web.AppKey("events", dict)
FAULTS = web.AppKey("faults", Faults)
STATS = web.AppKey("stats", Stats)
FAULT = web.RequestKey("fault", Fault)  # the fault in force when the request arrived
Answer = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


def _head(body: dict[str, Any], kind: str, name: str | None) -> dict[str, Any]:
    head = {"id": "chatcmpl-fake", "object": kind, "created": CREATED, "model": body["model"]}
    return {**head, "system_fingerprint": name} if name else head


def completion(body: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The non-streaming answer to a chat completion request, from the fake started with ``--name name``."""
    finish = "tool_calls" if body.get("tools") else "stop"
    choices = [
        {"index": i, "message": _message(body, i), "logprobs": None, "finish_reason": finish}
        for i in range(body.get("n") or 1)
    ]
    return {**_head(body, "chat.completion", name), "choices": choices, "usage": USAGE, **VENDOR}


def chunks(body: dict[str, Any], name: str | None = None) -> list[dict[str, Any]]:
    """The events' data of a streamed answer, in order, without the final ``[DONE]``."""
    head = _head(body, "chat.completion.chunk", name)
    indexes = range(body.get("n") or 1)
    piece = 1 if body["model"] == CHARS_MODEL else PIECE

    def chunk(deltas: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
        choices = [{"index": i, "delta": deltas[i], "logprobs": None, "finish_reason": finish} for i in indexes]
        return {**head, "choices": choices, **VENDOR}

    texts = [reply_text(body, i) for i in indexes]
    out = [chunk([{"role": "assistant", "content": ""} for _ in indexes])]
    for start in range(0, max(len(text) for text in texts), piece):
        out.append(chunk([{"content": text[start : start + piece]} for text in texts]))
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


def models(name: str | None, azure: bool = False) -> dict[str, Any]:
    """``GET /v1/models`` (or Azure's ``/openai/models``): every model name the fake knows."""
    if azure:
        extra: dict[str, Any] = {"status": "succeeded", "created_at": CREATED, "capabilities": {"inference": True}}
    else:
        extra = {"created": CREATED, "owned_by": name or "fake"}
    return {"object": "list", "data": [{"id": model, "object": "model", **extra} for model in BEHAVIOURS]}


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


async def _stream(request: web.Request, events: list[dict[str, Any]]) -> web.StreamResponse:
    """Write a whole stream, the way the fault in force (if any) says: split, trickled or stalled midway."""
    fault: Fault = request.get(FAULT) or Fault()
    rng = rng_for(request.path, await request.read())
    response = await _open_stream(request)
    if fault.stall_after_headers:
        await _hang()
    datas: list[dict[str, Any] | str] = [*events[:PREFIX_EVENTS]] if fault.stall_during else [*events, "[DONE]"]
    for index, data in enumerate(datas):
        if index and fault.trickle:
            await asyncio.sleep(fault.trickle)
        for piece in pieces(_event(data), fault.split, rng):
            await response.write(piece)
    if fault.stall_during:
        await _hang()
    await response.write_eof()
    return response


async def _json(request: web.Request, data: dict[str, Any]) -> web.StreamResponse:
    fault: Fault | None = request.get(FAULT)
    if fault is None or not fault.stall_during:
        return web.json_response(data)
    raw = json.dumps(data).encode()
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(raw)
    await response.prepare(request)
    await response.write(raw[: len(raw) // 2])
    await _hang()
    return response


async def _answer_chat(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    name = request.app[STATS].name
    if not body.get("stream"):
        return await _json(request, completion(body, name))
    return await _stream(request, chunks(body, name))


async def _answer_embeddings(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return await _json(request, embeddings(body))


async def _answer_models(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return await _json(request, models(request.app[STATS].name))


async def _answer_azure_models(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return await _json(request, models(request.app[STATS].name, azure=True))


async def _ok(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    return await answer(request, body)


async def _refuse(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    return web.json_response(ERROR_400, status=400)


async def _rate_limit(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    return web.json_response(ERROR_429, status=429, headers={"Retry-After": "7"})


async def _azure_rate_limit(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    return web.json_response(AZURE_429, status=429, headers={"Retry-After": "7", "retry-after-ms": "7000"})


async def _content_filter(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    return web.json_response(CONTENT_FILTER_400, status=400)


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
    CHARS_MODEL: _ok,
    "fake-400": _refuse,
    "fake-429": _rate_limit,
    "fake-azure-429": _azure_rate_limit,
    "fake-content-filter": _content_filter,
    "fake-500": _fail,
    "fake-slow": _slow,
    "fake-reset": _reset,
    "fake-cut": _cut,
    "fake-truncate": _truncate,
    "fake-stall": _stall,
}


def _injected(fault: Fault) -> web.Response:
    """The error a fault's ``error_rate`` picked this request for."""
    if fault.status == 429:
        return web.json_response(ERROR_429, status=429, headers={"Retry-After": str(fault.retry_after)})
    kind = "server_error" if fault.status >= 500 else "invalid_request_error"
    error = {"message": f"The fake upstream injected HTTP {fault.status}.", "type": kind, "param": None}
    headers = {"Retry-After": str(fault.retry_after)} if fault.status == 503 else None
    return web.json_response({"error": {**error, "code": "injected_fault"}}, status=fault.status, headers=headers)


async def _faulty(request: web.Request, body: dict[str, Any], answer: Answer) -> web.StreamResponse:
    """What every request meets while a fault is in force, whatever its model."""
    fault: Fault = request[FAULT]
    if fault.down:
        return await _reset(request, body, answer)
    if fault.latency:
        await asyncio.sleep(fault.latency)
    if fault.stall_before:
        await _hang()
    if request.app[FAULTS].fails(fault):
        return _injected(fault)
    return await answer(request, body)


def _auth_kind(request: web.Request) -> str:
    if "api-key" in request.headers:
        return "api-key"
    return "bearer" if request.headers.get("Authorization", "").startswith("Bearer ") else "none"


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
            "query": dict(request.query),
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "auth": _auth_kind(request),
            "deployment": request.match_info.get("deployment"),
            "body": body,
        }
    )
    return body if isinstance(body, dict) else {}


def _azure_refusal(request: web.Request) -> web.Response | None:
    """Azure's answer to a request without an ``api-version`` or an ``api-key`` (Entra tokens are not modelled)."""
    if "api-version" not in request.query:
        return web.json_response(AZURE_404, status=404)
    if "api-key" not in request.headers:
        return web.json_response(AZURE_401, status=401)
    return None


async def _serve(request: web.Request, body: dict[str, Any], answer: Answer, by_model: bool) -> web.StreamResponse:
    fault = request.app[FAULTS].fault
    if fault is not None:
        request[FAULT] = fault
        return await _faulty(request, body, answer)
    if not by_model:
        return await answer(request, body)
    behaviour = BEHAVIOURS.get(str(body.get("model")))
    if behaviour is None:
        error = {"message": f"The model '{body.get('model')}' does not exist", "code": "model_not_found"}
        return web.json_response({"error": error}, status=404)
    return await behaviour(request, body, answer)


def _endpoint(answer: Answer, *, by_model: bool = True, azure: bool = False) -> Handler:
    """An API route: record the request, count it, then answer it as its model or the fault in force says."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await _record(request)
        if "deployment" in request.match_info:
            body = {**body, "model": request.match_info["deployment"]}
        stats = request.app[STATS]
        stats.requests += 1
        refusal = _azure_refusal(request) if azure else None
        try:
            response = refusal if refusal is not None else await _serve(request, body, answer, by_model)
        except asyncio.CancelledError:
            # The server cancels a handler when its connection goes away: the client gave up on this request.
            _abandoned(request.app, str(body.get("model")))
            raise
        except ConnectionResetError as exc:  # the client went away while the handler was still writing
            _abandoned(request.app, str(body.get("model")))
            raise asyncio.CancelledError from exc
        stats.finished(response.status)
        return response

    return handle


def _abandoned(app: web.Application, model: str) -> None:
    app[STATS].finished(None)
    events = app[EVENTS]
    events["cancelled"] += 1
    events["cancelled_models"][model] = events["cancelled_models"].get(model, 0) + 1


async def _unknown(request: web.Request) -> web.Response:
    """Any other path: recorded like the rest, so a test sees where a misconfigured client went."""
    await _record(request)
    error = {"message": f"Unknown request URL: {request.method} {request.path}.", "code": "unknown_url"}
    return web.json_response({"error": {**error, "type": "invalid_request_error", "param": None}}, status=404)


async def _received(request: web.Request) -> web.Response:
    return web.json_response(request.app[RECEIVED])


async def _clear(request: web.Request) -> web.Response:
    request.app[RECEIVED].clear()
    return web.Response(status=204)


async def _events(request: web.Request) -> web.Response:
    return web.json_response(request.app[EVENTS])


async def _fault(request: web.Request) -> web.Response:
    current = request.app[FAULTS].fault
    return web.json_response(current.as_json() if current else None)


async def _set_fault(request: web.Request) -> web.Response:
    try:
        fault = parse(await request.json())
    except ValueError as exc:
        return web.json_response({"error": {"message": str(exc), "code": "invalid_fault"}}, status=400)
    request.app[FAULTS].set(fault)
    return web.json_response(fault.as_json())


async def _clear_fault(request: web.Request) -> web.Response:
    request.app[FAULTS].set(None)
    return web.Response(status=204)


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS].as_json())


async def _clear_stats(request: web.Request) -> web.Response:
    request.app[STATS].clear()
    return web.Response(status=204)


async def _sign(request: web.Request, response: web.StreamResponse) -> None:
    """Name the fake on every answer, so that a test sees which of several served a request."""
    name = request.app[STATS].name
    if name:
        response.headers["x-fake-upstream"] = name


def _api_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", _endpoint(_answer_chat))
    app.router.add_post("/v1/embeddings", _endpoint(_answer_embeddings))
    app.router.add_get("/v1/models", _endpoint(_answer_models, by_model=False))
    deployment = "/openai/deployments/{deployment}"
    app.router.add_post(f"{deployment}/chat/completions", _endpoint(_answer_chat, azure=True))
    app.router.add_post(f"{deployment}/embeddings", _endpoint(_answer_embeddings, azure=True))
    app.router.add_get("/openai/models", _endpoint(_answer_azure_models, by_model=False, azure=True))


def _control_routes(app: web.Application) -> None:
    app.router.add_get("/_received", _received)
    app.router.add_delete("/_received", _clear)
    app.router.add_get("/_events", _events)
    app.router.add_get("/_fault", _fault)
    app.router.add_post("/_fault", _set_fault)
    app.router.add_delete("/_fault", _clear_fault)
    app.router.add_get("/_stats", _stats)
    app.router.add_delete("/_stats", _clear_stats)


def make_app(name: str | None = None, fault: Fault | None = None) -> web.Application:
    app = web.Application()
    app[RECEIVED] = []
    app[EVENTS] = {"cancelled": 0, "cancelled_models": {}}
    app[FAULTS] = Faults(fault)
    app[STATS] = Stats(name)
    app.on_response_prepare.append(_sign)
    _api_routes(app)
    _control_routes(app)
    app.router.add_route("*", "/{tail:.*}", _unknown)  # last: only what no route above matched
    return app


def _fault_arg(text: str) -> Fault:
    try:
        return parse(json.loads(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible upstream for Bastion's tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", help="named on every answer (x-fake-upstream, system_fingerprint)")
    parser.add_argument("--fault", type=_fault_arg, help="a fault in force from the start, e.g. '{\"down\": true}'")
    args = parser.parse_args()
    # handler_cancellation: a handler is cancelled when its client goes away, which is how fake-stall notices.
    web.run_app(
        make_app(args.name, args.fault),
        host=args.host,
        port=args.port,
        handler_cancellation=True,
        shutdown_timeout=1.0,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
