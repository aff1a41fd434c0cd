"""Upstream failures become clear OpenAI errors, never a hang or a traceback; a client leaving stops the upstream."""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from bastion.protect.output import HOLD as HOLD_BACK
from tests.e2e.conftest import FIRST_BYTE, wait_until
from tests.fakes import upstream as fake

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from tests.e2e.conftest import SDK, Gateway, Upstream

pytestmark = pytest.mark.e2e

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "tell me something"}]
# Nothing an upstream or Bastion might say about its own insides may reach a client.
INTERNALS = ("Traceback", "RuntimeError", "fake upstream internals", 'File "')


def chat(model: str, *, stream: bool = False) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, "stream": stream}


def sse_data(body: bytes) -> list[bytes]:
    """The data of each event of an SSE body, in order."""
    return [event.removeprefix(b"data: ") for event in body.split(b"\n\n") if event]


def assert_no_internals(text: str) -> None:
    assert not [marker for marker in INTERNALS if marker in text], text


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    ("model", "status", "reaches_upstream"),
    [
        ("gpt-500", 502, True),
        ("gpt-slow", 504, True),
        ("gpt-down", 502, False),
        ("gpt-reset", 502, True),
    ],
    ids=["upstream-500", "too-slow", "connection-refused", "connection-reset"],
)
def test_upstream_failure_is_upstream_unavailable(
    http: httpx.Client,
    auth: dict[str, str],
    upstream: Upstream,
    model: str,
    status: int,
    reaches_upstream: bool,
    stream: bool,
) -> None:
    started = time.monotonic()
    response = http.post(CHAT, headers=auth, json=chat(model, stream=stream))
    elapsed = time.monotonic() - started
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "upstream_unavailable")
    assert error["message"]
    assert response.headers["x-bastion-request-id"].startswith("req_")
    assert_no_internals(response.text)
    assert elapsed < FIRST_BYTE + 3
    assert bool(upstream.received()) is reaches_upstream


def test_timed_out_upstream_request_is_dropped_not_left_open(
    http: httpx.Client, auth: dict[str, str], upstream: Upstream
) -> None:
    before = upstream.cancelled("fake-slow")
    assert http.post(CHAT, headers=auth, json=chat("gpt-slow")).status_code == 504
    wait_until(lambda: upstream.cancelled("fake-slow") > before, 2.0, "the upstream to see the request dropped")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    ("model", "status", "body"),
    [("gpt-400", 400, fake.ERROR_400), ("gpt-429", 429, fake.ERROR_429)],
    ids=["bad-request", "rate-limited"],
)
def test_upstream_4xx_passes_through_unchanged(
    http: httpx.Client,
    auth: dict[str, str],
    upstream: Upstream,
    model: str,
    status: int,
    body: dict[str, Any],
    stream: bool,
) -> None:
    response = http.post(CHAT, headers=auth, json=chat(model, stream=stream))
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == body
    assert response.headers["x-bastion-request-id"].startswith("req_")
    assert upstream.last()["body"]["model"] == model.replace("gpt-", "fake-")


def test_sdk_raises_the_matching_errors(sdk: SDK, upstream: Upstream) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat(model="gpt-400", messages=MESSAGES)
    assert refused.value.status_code == 400
    assert (refused.value.code, refused.value.param) == ("invalid_value", "temperature")
    assert fake.ERROR_400["error"]["message"] in refused.value.message
    with pytest.raises(openai.InternalServerError) as failed:
        sdk.chat(model="gpt-500", messages=MESSAGES)
    assert failed.value.status_code == 502
    assert failed.value.code == "upstream_unavailable"
    assert_no_internals(failed.value.message)


@pytest.mark.parametrize("model", ["gpt-cut", "gpt-truncate"], ids=["connection-dropped", "ended-without-done"])
def test_stream_cut_midway_ends_with_an_error_event(
    http: httpx.Client, auth: dict[str, str], upstream: Upstream, model: str
) -> None:
    with http.stream("POST", CHAT, headers=auth, json=chat(model, stream=True)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-bastion-request-id"].startswith("req_")
        body = response.read()  # returns only because Bastion closes the stream after the error event
    *events, last = sse_data(body)
    received = upstream.last()["body"]
    # The events that arrived, one for one; the text still held back for output masking when the stream broke
    # (at most the last few words) is dropped, never released unjudged.
    sent = fake.chunks(received)[: fake.PREFIX_EVENTS]
    assert len(events) == len(sent)
    assert_prefix(content_of(json.loads(event) for event in events), content_of(sent))
    error = json.loads(last)["error"]
    assert (error["type"], error["code"]) == ("server_error", "upstream_unavailable")
    assert error["message"]
    assert b"[DONE]" not in body
    assert_no_internals(body.decode())


@pytest.mark.parametrize("model", ["gpt-cut", "gpt-truncate"], ids=["connection-dropped", "ended-without-done"])
def test_sdk_stream_cut_midway_raises_after_the_events_so_far(sdk: SDK, upstream: Upstream, model: str) -> None:
    chunks: list[Any] = []
    with pytest.raises(openai.APIError) as broken:
        sdk.stream(into=chunks, model=model, messages=MESSAGES)
    # An error event from Bastion, not a connection error (APIConnectionError is an APIError too).
    assert type(broken.value) is openai.APIError
    assert isinstance(broken.value.body, dict)
    assert broken.value.body["code"] == "upstream_unavailable"
    expected = fake.chunks(upstream.last()["body"])[: fake.PREFIX_EVENTS]
    assert len(chunks) == len(expected)
    assert_prefix("".join(chunk.choices[0].delta.content or "" for chunk in chunks), content_of(expected))


def content_of(events: Iterable[dict[str, Any]]) -> str:
    return "".join(event["choices"][0]["delta"].get("content") or "" for event in events)


def assert_prefix(got: str, sent: str) -> None:
    """What the client got is what was sent, less at most the output masker's hold-back at the end."""
    assert sent.startswith(got)
    assert len(sent) - len(got) <= HOLD_BACK


def abandon_with_httpx(gateway: Gateway, api_key: str, body: dict[str, Any]) -> bytes:
    """Start a stream, read the events the upstream sends before it stalls, then drop the connection."""
    headers = {"Authorization": f"Bearer {api_key}"}
    seen = b""
    with (
        httpx.Client(base_url=gateway.url, timeout=10.0) as client,
        client.stream("POST", CHAT, headers=headers, json=body) as response,
    ):
        assert response.status_code == 200
        for piece in response.iter_raw():
            seen += piece
            if seen.count(b"\n\n") >= fake.PREFIX_EVENTS:
                break
    return seen


def abandon_with_socket(gateway: Gateway, api_key: str, body: dict[str, Any]) -> bytes:
    """The same over a raw socket: send the request, read until the upstream stalls, close."""
    host, port = httpx.URL(gateway.url).host, httpx.URL(gateway.url).port
    assert port is not None
    payload = json.dumps(body).encode()
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    seen = b""
    with socket.create_connection((host, port), timeout=10.0) as sock:
        sock.sendall(head.encode() + payload)
        while seen.partition(b"\r\n\r\n")[2].count(b"\n\n") < fake.PREFIX_EVENTS:
            piece = sock.recv(65536)
            if not piece:
                break
            seen += piece
    return seen


@pytest.mark.parametrize("abandon", [abandon_with_httpx, abandon_with_socket], ids=["httpx", "socket"])
def test_client_leaving_mid_stream_cancels_the_upstream_request(
    gateway: Gateway,
    api_key: str,
    upstream: Upstream,
    abandon: Callable[[Gateway, str, dict[str, Any]], bytes],
) -> None:
    before = upstream.cancelled("fake-stall")
    seen = abandon(gateway, api_key, chat("gpt-stall", stream=True))
    assert seen.count(b'"chatcmpl-fake"') == fake.PREFIX_EVENTS  # the upstream is now waiting, mid-stream
    assert upstream.last()["body"]["model"] == "fake-stall"
    wait_until(lambda: upstream.cancelled("fake-stall") > before, 2.0, "the upstream to see its request cancelled")
    assert upstream.cancelled("fake-stall") == before + 1
