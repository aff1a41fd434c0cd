from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from bastion.config import ProviderConfig
from bastion.gateway.sse import EventSplitter, data_of
from bastion.routing.providers.base import Call
from bastion.routing.providers.echo import EchoProvider, estimate_tokens

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "héllo there"}]


def make_call(endpoint: str = "chat.completions", stream: bool = False, **body: Any) -> Call:
    body = {"model": "echo-1", **body}
    return Call(endpoint, "echo-1", body, orjson.dumps(body), stream, "req_1")


def provider() -> EchoProvider:
    return EchoProvider(ProviderConfig(name="local", kind="echo", models={"echo-1": "echo-1"}))


@pytest.mark.anyio
async def test_answers_with_exactly_the_messages_it_received() -> None:
    reply = await provider().send(make_call(messages=MESSAGES, n=2))
    body = orjson.loads(reply.body)
    assert reply.status == 200
    assert [orjson.loads(choice["message"]["content"]) for choice in body["choices"]] == [MESSAGES, MESSAGES]
    assert body["object"] == "chat.completion"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


@pytest.mark.anyio
async def test_stream_reassembles_to_the_messages_and_ends_with_usage_and_done() -> None:
    call = make_call(stream=True, messages=MESSAGES, stream_options={"include_usage": True})
    stream = await provider().open_stream(call)
    raw = b"".join([event async for event in stream])
    events = [data_of(event) for event in EventSplitter().feed(raw)]
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(data) for data in events[:-1] if data]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert orjson.loads(text) == MESSAGES
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] > 0
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.anyio
async def test_stream_without_usage_has_no_usage_chunk() -> None:
    stream = await provider().open_stream(make_call(stream=True, messages=MESSAGES))
    events = [event async for event in stream]
    assert len(events) > 3
    assert not any(b'"usage"' in event for event in events)


@pytest.mark.anyio
@pytest.mark.parametrize(("value", "count"), [("one", 1), (["a", "b", "a"], 3), ([1, 2, 3], 1), ([[1, 2], [3]], 2)])
async def test_embeddings_are_deterministic_unit_vectors(value: Any, count: int) -> None:
    body = orjson.loads((await provider().send(make_call("embeddings", input=value))).body)
    vectors = [item["embedding"] for item in body["data"]]
    assert len(vectors) == count
    assert all(abs(sum(x * x for x in vector) - 1) < 1e-9 for vector in vectors)
    if value == ["a", "b", "a"]:
        assert vectors[0] == vectors[2] != vectors[1]


@pytest.mark.anyio
async def test_embeddings_in_base64_decode_to_the_float_vector() -> None:
    floats = orjson.loads((await provider().send(make_call("embeddings", input="x", dimensions=8))).body)
    packed = orjson.loads(
        (await provider().send(make_call("embeddings", input="x", dimensions=8, encoding_format="base64"))).body
    )
    decoded = struct.unpack("<8f", base64.b64decode(packed["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], rel=1e-6)


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2)])
def test_token_estimate(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens
