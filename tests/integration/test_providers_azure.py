"""The azure, openai and openai_compatible providers against the fake upstream, which runs in its own process."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import pytest
from tests.fakes import upstream as fake
from tests.fakes.control import FakeUpstream, running

from bastion.config import ProviderConfig
from bastion.errors import UpstreamError, UpstreamRejected, UpstreamTimeout
from bastion.gateway.sse import data_of
from bastion.routing.providers import build_provider
from bastion.routing.providers.base import Call

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from bastion.routing.providers.base import Provider

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

NAME = "azure-east"
KEY = "azure-key-7c41e0"
VERSION = "2024-10-21"
MODELS = {
    "gpt-4o": "fake-ok",
    "gpt-4o-chars": "fake-chars",
    "embed-small": "fake-ok",
    "gpt-filtered": "fake-content-filter",
    "gpt-limited": "fake-azure-429",
}
MESSAGES = [{"role": "user", "content": "where is my parcel?"}]


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    with running(tmp_path_factory.mktemp("azure"), name=NAME) as server:
        yield server


@pytest.fixture
def upstream(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.reset()
    return fake_server


def config(base_url: str, kind: str = "azure", **extra: Any) -> ProviderConfig:
    version = {"api_version": VERSION} if kind == "azure" else {}
    fields = {"name": NAME, "kind": kind, "base_url": base_url, "api_key_env": "AZ_KEY", "models": MODELS}
    return ProviderConfig.model_validate({**fields, **version, **extra})


@asynccontextmanager
async def provider(settings: ProviderConfig) -> AsyncIterator[Provider]:
    async with aiohttp.ClientSession() as session:
        yield build_provider(settings, session, {"AZ_KEY": KEY})


def call(ours: str, endpoint: str = "chat.completions", stream: bool = False, **body: Any) -> Call:
    """A call as the gateway makes it: for the upstream's name of our model, which for Azure is the deployment."""
    deployment = MODELS[ours]
    body = {"model": deployment, **body, **({"stream": True} if stream else {})}
    return Call(endpoint, deployment, body, orjson.dumps(body), stream, "req_azure_1")


async def test_a_chat_goes_to_the_deployment_with_the_api_version_and_the_api_key(upstream: FakeUpstream) -> None:
    async with provider(config(upstream.url)) as azure:
        reply = await azure.send(call("gpt-4o", messages=MESSAGES))
    received = upstream.last()
    assert (received["method"], received["path"]) == ("POST", "/openai/deployments/fake-ok/chat/completions")
    assert received["query"] == {"api-version": VERSION}
    assert (received["auth"], received["headers"]["api-key"]) == ("api-key", KEY)
    assert "authorization" not in received["headers"]
    assert received["deployment"] == "fake-ok"
    assert orjson.loads(reply.body) == fake.completion({"model": "fake-ok", "messages": MESSAGES}, NAME)


async def test_embeddings_go_to_the_deployments_embeddings_route(upstream: FakeUpstream) -> None:
    async with provider(config(upstream.url)) as azure:
        reply = await azure.send(call("embed-small", "embeddings", input=["a", "bcd"]))
    received = upstream.last()
    assert (received["path"], received["query"]) == ("/openai/deployments/fake-ok/embeddings", {"api-version": VERSION})
    assert [item["embedding"] for item in orjson.loads(reply.body)["data"]] == [
        fake.vector("a", 0),
        fake.vector("bcd", 1),
    ]


async def test_a_stream_arrives_whole_even_one_character_a_delta(upstream: FakeUpstream) -> None:
    upstream.set_fault(split="random", trickle=0.001)
    async with provider(config(upstream.url)) as azure:
        stream = await azure.open_stream(call("gpt-4o-chars", stream=True, messages=MESSAGES))
        events = [event async for event in stream]
    expected = fake.chunks({"model": "fake-chars", "messages": MESSAGES, "stream": True}, NAME)
    assert [json.loads(data_of(event) or b"") for event in events[:-1]] == expected
    assert data_of(events[-1]) == b"[DONE]"
    deltas = [chunk["choices"][0]["delta"].get("content") for chunk in expected[1:-1]]
    assert deltas == list(fake.reply_text({"messages": MESSAGES}, 0))


@pytest.mark.parametrize(
    ("ours", "status", "error", "relayed"),
    [
        ("gpt-filtered", 400, fake.CONTENT_FILTER_400, {}),
        ("gpt-limited", 429, fake.AZURE_429, {b"retry-after": b"7", b"retry-after-ms": b"7000"}),
    ],
)
async def test_azure_refusals_reach_the_client_as_they_came(
    upstream: FakeUpstream, ours: str, status: int, error: dict[str, Any], relayed: dict[bytes, bytes]
) -> None:
    async with provider(config(upstream.url)) as azure:
        with pytest.raises(UpstreamRejected) as refused:
            await azure.send(call(ours, messages=MESSAGES))
    assert (refused.value.status, json.loads(refused.value.body)) == (status, error)
    assert {name: value for name, value in refused.value.headers if name in relayed} == relayed


async def test_the_probe_lists_the_resources_models_with_the_key(upstream: FakeUpstream) -> None:
    async with provider(config(upstream.url)) as azure:
        await azure.probe()
    received = upstream.last()
    assert (received["method"], received["path"], received["query"]) == (
        "GET",
        "/openai/models",
        {"api-version": VERSION},
    )
    assert received["auth"] == "api-key"


@pytest.mark.parametrize(
    ("fault", "error", "says"),
    [
        ({"down": True}, UpstreamError, "connection"),
        ({"error_rate": 1, "status": 503}, UpstreamError, "HTTP 503"),
        ({"stall_before": True}, UpstreamTimeout, "did not answer within 0.5s"),
    ],
)
async def test_the_probe_fails_while_the_endpoint_is_unhealthy(
    upstream: FakeUpstream, fault: dict[str, Any], error: type[UpstreamError], says: str
) -> None:
    upstream.set_fault(**fault)
    async with provider(config(upstream.url, timeouts={"first_byte": 0.5})) as azure:
        with pytest.raises(error, match=says):
            await azure.probe()


@pytest.mark.parametrize(
    ("kind", "path", "healthy"),
    [
        ("openai", "/v1", True),
        ("openai_compatible", "/v1", True),
        ("openai", "/no-models/v1", False),  # OpenAI always lists its models: a 404 means a wrong base_url
        ("openai_compatible", "/no-models/v1", True),  # not every compatible server lists models; it answered
    ],
)
async def test_openai_kinds_probe_get_models_with_a_bearer_key(
    upstream: FakeUpstream, kind: str, path: str, healthy: bool
) -> None:
    async with provider(config(upstream.url + path, kind)) as openai:
        if healthy:
            await openai.probe()
        else:
            with pytest.raises(UpstreamError, match=r"\(HTTP 404\); check its base_url"):
                await openai.probe()
    received = upstream.last()
    assert (received["method"], received["path"], received["auth"]) == ("GET", f"{path}/models", "bearer")


async def test_openai_compatible_calls_go_exactly_as_to_openai(upstream: FakeUpstream) -> None:
    body = {"model": "fake-ok", "messages": MESSAGES, "stream_options": {"include_usage": True}, "stream": True}
    async with provider(config(f"{upstream.url}/v1", "openai_compatible")) as compatible:
        stream = await compatible.open_stream(Call("chat.completions", "fake-ok", body, orjson.dumps(body), True, "r"))
        events = [event async for event in stream]
    received = upstream.last()
    assert (received["path"], received["headers"]["authorization"], received["body"]) == (
        "/v1/chat/completions",
        f"Bearer {KEY}",
        body,
    )
    assert len(events) == len(fake.chunks(body, NAME)) + 1
