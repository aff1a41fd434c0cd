"""The whole app in-process: ASGI through httpx, the upstream an aiohttp server on loopback in the same loop."""

from __future__ import annotations

import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from aiohttp import web
from tests.conftest import SECRET

from bastion.app import BastionApp, create_app
from bastion.identity.keys import KeyService

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from bastion.config import Settings

pytestmark = pytest.mark.anyio
CHAT = {"messages": [{"role": "user", "content": "hello"}], "temperature": 0.2, "x_unknown": {"kept": True}}


@dataclass
class Upstream:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


def _sse(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + payload + b"\n\n" for payload in payloads)


async def _chat(request: web.Request, received: list[dict[str, Any]]) -> web.StreamResponse:
    body = await request.json()
    received.append({"body": body, "authorization": request.headers.get("Authorization")})
    model = body["model"]
    if model == "up-400":
        return web.json_response({"error": {"message": "bad temperature", "code": "invalid_value"}}, status=400)
    if model == "up-429":
        error = {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}
        return web.json_response(error, status=429, headers={"Retry-After": "7", "x-ratelimit-limit-requests": "60"})
    if model == "up-401":
        return web.json_response({"error": {"message": "Incorrect API key provided: sk-ab***yz"}}, status=401)
    if model == "up-500":
        return web.Response(status=500, text="Traceback (most recent call last): boom")
    if body.get("stream"):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(
            _sse(b'{"choices":[{"delta":{"content":"Hi"}}]}', b'{"choices":[{"delta":{"content":"!"}}]}')
        )
        if model != "up-cut":
            await response.write(_sse(b"[DONE]"))
        return response
    return web.json_response({"id": "cmpl-1", "object": "chat.completion", "model": model, "vendor_extra": [1, 2]})


@asynccontextmanager
async def upstream() -> AsyncIterator[Upstream]:
    received: list[dict[str, Any]] = []
    app = web.Application()

    async def chat(request: web.Request) -> web.StreamResponse:
        return await _chat(request, received)

    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Upstream(f"http://127.0.0.1:{port}/v1", received)
    finally:
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    app: BastionApp
    client: httpx.AsyncClient
    key: str
    upstream: Upstream

    async def chat(self, key: str | None = "default", **body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key if key == 'default' else key}"} if key else {}
        return await self.client.post("/v1/chat/completions", json={**CHAT, **body}, headers=headers)


@asynccontextmanager
async def gateway(make_settings: Callable[..., Settings], **file: Any) -> AsyncIterator[Gateway]:
    async with upstream() as up:
        providers = [
            {
                "name": "up",
                "kind": "openai",
                "base_url": up.url,
                "api_key_env": "UP_KEY",
                "models": {
                    "gpt-test": "up-ok",
                    "bad": "up-400",
                    "fail": "up-500",
                    "cut": "up-cut",
                    "busy": "up-429",
                    "creds": "up-401",
                },
            },
            {
                "name": "down",
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{closed_port()}/v1",
                "models": ["down-1"],
            },
            {"name": "local", "kind": "echo", "models": ["echo-1"]},
        ]
        file = {"providers": providers, "projects": [{"name": "p"}, {"name": "narrow", "models": ["echo-1"]}], **file}
        app = create_app(make_settings(**file), env={"UP_KEY": "upstream-secret"})
        await app.startup()
        assert app.runtime is not None
        _, key = app.runtime.services.keys.create("p")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bastion") as client:
            yield Gateway(app, client, key, up)
        await app.shutdown()


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def test_forwards_the_body_with_the_upstream_model_and_key(make_settings: Callable[..., Settings]) -> None:
    async with gateway(make_settings) as gw:
        response = await gw.chat(model="gpt-test")
    assert response.status_code == 200
    assert response.json()["vendor_extra"] == [1, 2]
    assert response.headers["x-bastion-request-id"].startswith("req_")
    (received,) = gw.upstream.received
    assert received["body"] == {**CHAT, "model": "up-ok"}
    assert received["authorization"] == "Bearer upstream-secret"


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [(None, 401, "invalid_api_key"), ("bst_not-a-real-key", 401, "invalid_api_key"), ("", 401, "invalid_api_key")],
)
async def test_requests_without_a_valid_key_are_refused(
    make_settings: Callable[..., Settings], key: str | None, status: int, code: str
) -> None:
    async with gateway(make_settings) as gw:
        response = await gw.chat(key=key, model="gpt-test")
    assert (response.status_code, error_of(response)["code"]) == (status, code)
    assert gw.upstream.received == []


async def test_azure_style_api_key_header_is_accepted(make_settings: Callable[..., Settings]) -> None:
    async with gateway(make_settings) as gw:
        response = await gw.client.post(
            "/v1/chat/completions", json={**CHAT, "model": "echo-1"}, headers={"api-key": gw.key}
        )
    assert response.status_code == 200


async def test_revoked_and_expired_keys(make_settings: Callable[..., Settings]) -> None:
    async with gateway(make_settings) as gw:
        assert gw.app.runtime is not None
        keys = gw.app.runtime.services.keys
        record, _ = keys.create("p")
        assert (await gw.chat(model="echo-1")).status_code == 200
        keys.revoke(keys.list_keys("p")[0].id)
        revoked = await gw.chat(model="echo-1")
        past = KeyService(
            gw.app.runtime.services.engine, SECRET.encode(), clock=lambda: datetime.now(UTC) - timedelta(days=2)
        )
        _, old = past.create("p", expires_in=timedelta(days=1))
        expired = await gw.chat(key=old, model="echo-1")
    assert (revoked.status_code, error_of(revoked)["code"]) == (401, "key_revoked")
    assert (expired.status_code, error_of(expired)["code"]) == (401, "key_expired")
    assert record.id not in revoked.text


async def test_project_model_allowlist(make_settings: Callable[..., Settings]) -> None:
    async with gateway(make_settings) as gw:
        assert gw.app.runtime is not None
        _, narrow = gw.app.runtime.services.keys.create("narrow")
        refused = await gw.chat(key=narrow, model="gpt-test")
        allowed = await gw.chat(key=narrow, model="echo-1")
        models = await gw.client.get("/v1/models", headers={"Authorization": f"Bearer {narrow}"})
        everything = await gw.client.get("/v1/models", headers={"Authorization": f"Bearer {gw.key}"})
        one = await gw.client.get("/v1/models/echo-1", headers={"Authorization": f"Bearer {narrow}"})
        hidden = await gw.client.get("/v1/models/gpt-test", headers={"Authorization": f"Bearer {narrow}"})
    assert (refused.status_code, error_of(refused)["code"], error_of(refused)["param"]) == (
        403,
        "model_not_allowed",
        "model",
    )
    assert allowed.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == ["echo-1"]
    assert {m["id"] for m in everything.json()["data"]} == {
        "gpt-test",
        "bad",
        "fail",
        "cut",
        "busy",
        "creds",
        "down-1",
        "echo-1",
    }
    assert one.json()["owned_by"] == "local"
    assert (hidden.status_code, error_of(hidden)["code"]) == (404, "model_not_found")


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [("fail", 502, "upstream_unavailable"), ("down-1", 502, "upstream_unavailable"), ("nope", 404, "model_not_found")],
)
async def test_upstream_failures_become_clear_errors(
    make_settings: Callable[..., Settings], model: str, status: int, code: str
) -> None:
    async with gateway(make_settings) as gw:
        response = await gw.chat(model=model)
        metrics = (await gw.client.get("/metrics")).text
    assert (response.status_code, error_of(response)["code"]) == (status, code)
    assert "Traceback" not in response.text
    if status == 502:
        assert 'bastion_upstream_errors_total{provider="' in metrics


async def test_upstream_4xx_passes_through_unchanged(make_settings: Callable[..., Settings]) -> None:
    # One attempt: with more, the 429's Retry-After (7 s) is honoured on the same endpoint before it is relayed.
    async with gateway(make_settings, routing={"attempts": 1}) as gw:
        response = await gw.chat(model="bad")
        busy = await gw.chat(model="busy")
    assert response.status_code == 400
    assert response.json() == {"error": {"message": "bad temperature", "code": "invalid_value"}}
    assert busy.status_code == 429
    assert (busy.headers["retry-after"], busy.headers["x-ratelimit-limit-requests"]) == ("7", "60")


async def test_upstream_refusing_our_credentials_is_not_the_clients_fault(
    make_settings: Callable[..., Settings],
) -> None:
    async with gateway(make_settings) as gw:
        response = await gw.chat(model="creds")
    assert (response.status_code, error_of(response)["code"]) == (502, "upstream_unavailable")
    assert "api_key_env" in error_of(response)["message"]
    assert "sk-ab" not in response.text


async def test_stream_is_relayed_and_a_cut_stream_ends_with_an_error_event(
    make_settings: Callable[..., Settings],
) -> None:
    async with gateway(make_settings) as gw:
        whole = await gw.chat(model="gpt-test", stream=True)
        cut = await gw.chat(model="cut", stream=True)
    assert whole.headers["content-type"].startswith("text/event-stream")
    *events, done, end = whole.content.split(b"\n\n")
    chunks = [orjson.loads(event.removeprefix(b"data: ")) for event in events]
    assert "".join(chunk["choices"][0]["delta"]["content"] for chunk in chunks) == "Hi!"
    assert (done, end) == (b"data: [DONE]", b"")
    events = cut.content.split(b"\n\n")
    assert len(events) == 4  # two chunks, the error event, and the end
    assert orjson.loads(events[2].removeprefix(b"data: "))["error"]["code"] == "upstream_unavailable"
    assert b"[DONE]" not in cut.content


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "invalid_json"),
        (b'{"model": "echo-1"}', {"content-type": "application/json"}, 400, "missing_required_parameter"),
        (b'{"model": "echo-1", "messages": "hi"}', {"content-type": "application/json"}, 400, "invalid_parameter"),
        (b"hello", {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (b"{}", {}, 415, "unsupported_media_type"),
        (b'{"model": "' + b"x" * 5000 + b'"}', {"content-type": "application/json"}, 413, "request_too_large"),
    ],
)
async def test_bad_input_gets_a_clear_4xx(
    make_settings: Callable[..., Settings], content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    async with gateway(make_settings, server={"max_body_bytes": 4096}) as gw:
        response = await gw.client.post(
            "/v1/chat/completions", content=content, headers={**headers, "Authorization": f"Bearer {gw.key}"}
        )
    assert (response.status_code, error_of(response)["code"]) == (status, code)
    assert response.headers["x-bastion-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/chat/completions", 405, "method_not_allowed"),
        ("GET", "/v1/files", 404, "not_found"),
        ("GET", "/nope", 404, "not_found"),
    ],
)
async def test_unknown_routes(
    make_settings: Callable[..., Settings], method: str, path: str, status: int, code: str
) -> None:
    async with gateway(make_settings) as gw:
        response = await gw.client.request(method, path)
    assert (response.status_code, error_of(response)["code"]) == (status, code)


async def test_health_readiness_and_metrics(make_settings: Callable[..., Settings]) -> None:
    async with gateway(make_settings) as gw:
        await gw.chat(model="echo-1")
        health = await gw.client.get("/healthz")
        ready = await gw.client.get("/readyz")
        metrics = await gw.client.get("/metrics")
    assert health.json() == {"status": "ok"}
    circuits = {"down": "closed", "local": "closed", "up": "closed"}
    assert ready.json() == {"status": "ready", "checks": {"store": "ok", "upstreams": 3, "circuits": circuits}}
    assert 'bastion_requests_total{endpoint="chat.completions",status="200"} 1.0' in metrics.text
    assert "bastion_request_duration_seconds_bucket" in metrics.text
    assert all(r.headers["x-bastion-request-id"] for r in (health, ready, metrics))


async def test_not_ready_without_upstreams(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(projects=[{"name": "p"}]))
    await app.startup()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as client:
        ready = await client.get("/readyz")
    await app.shutdown()
    assert ready.status_code == 503
    assert ready.json()["checks"]["upstreams"] == 0


async def test_the_echo_model_shows_what_left_unrestored(make_settings: Callable[..., Settings]) -> None:
    message = {"role": "user", "content": "Write to jane.doe@acme.com or jane.doe@acme.com"}
    async with gateway(make_settings) as gw:
        response = await gw.chat(model="echo-1", messages=[message])
    assert response.status_code == 200
    assert response.headers["x-bastion-data-class"] == "confidential"
    content = response.json()["choices"][0]["message"]["content"]
    assert "Write to [EMAIL_ADDRESS_1] or [EMAIL_ADDRESS_1]" in content
    assert "jane.doe" not in content
