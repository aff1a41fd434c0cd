"""The official openai SDK, sync and async, works unchanged through Bastion; the upstream gets the client's body."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.e2e.conftest import LIMITED_PROJECT, SDK, UPSTREAM_KEY
from tests.fakes import upstream as fake

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway, Upstream

pytestmark = pytest.mark.e2e

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
            "required": ["answer", "confidence"],
            "additionalProperties": False,
        },
    },
}
VENDOR = fake.VENDOR["x_vendor_field"]


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def assert_forwarded(upstream: Upstream, sdk: SDK, path: str = "/v1/chat/completions") -> dict[str, Any]:
    """One request reached the upstream: the client's exact body with our model name mapped to the upstream's,
    under the upstream's own key and never the client's Bastion key. Returns the body it received."""
    (record,) = upstream.received()
    sent = sdk.sent[-1]
    assert sent["model"] in {"gpt-test", "text-embedding-test"}
    assert record["path"] == path
    assert record["body"] == {**sent, "model": "fake-ok"}
    assert record["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert not [name for name, value in record["headers"].items() if sdk.api_key in value]
    body: dict[str, Any] = record["body"]
    return body


def test_chat_completion_reaches_the_client_exactly_as_the_upstream_answered(sdk: SDK, upstream: Upstream) -> None:
    headers, raw, completion = sdk.raw_chat(
        model="gpt-test", messages=ask("plain question"), temperature=0.25, max_tokens=64, user="e2e-user"
    )
    received = assert_forwarded(upstream, sdk)
    assert raw == fake.completion(received)
    assert headers["x-bastion-request-id"].startswith("req_")
    assert completion.choices[0].message.content == "fake says: plain question (choice 0)"
    assert completion.model == "fake-ok"
    assert completion.usage.total_tokens == fake.USAGE["total_tokens"]
    # Fields Bastion and the SDK do not know still reach the client, at the top and inside a message.
    assert completion.model_extra["x_vendor_field"] == VENDOR
    assert completion.choices[0].message.model_extra["x_message_note"] == "kept"


@pytest.mark.parametrize("n", [1, 2])
def test_streamed_chat_reassembles_content_and_ends_with_usage(sdk: SDK, upstream: Upstream, n: int) -> None:
    chunks = sdk.stream(model="gpt-test", messages=ask("stream this"), n=n, stream_options={"include_usage": True})
    received = assert_forwarded(upstream, sdk)
    assert received["stream"] is True
    assert received["stream_options"] == {"include_usage": True}
    assert len(chunks) == len(fake.chunks(received))
    for index in range(n):
        text = "".join(c.choices[index].delta.content or "" for c in chunks if c.choices)
        assert text == fake.reply_text(received, index)
    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert usage is not None
    assert {name: getattr(usage, name) for name in fake.USAGE} == fake.USAGE
    assert all(chunk.model_extra["x_vendor_field"] == VENDOR for chunk in chunks)


def test_tools_come_back_as_tool_calls(sdk: SDK, upstream: Upstream) -> None:
    completion = sdk.chat(model="gpt-test", messages=ask("weather in Paris?"), tools=TOOLS, tool_choice="auto")
    received = assert_forwarded(upstream, sdk)
    assert received["tools"] == TOOLS
    assert received["tool_choice"] == "auto"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert (call.id, call.type, call.function.name) == ("call_fake_0", "function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_response_format_reaches_the_upstream_unchanged(sdk: SDK, upstream: Upstream) -> None:
    sdk.chat(model="gpt-test", messages=ask("answer in JSON"), response_format=RESPONSE_FORMAT)
    received = assert_forwarded(upstream, sdk)
    assert received["response_format"] == RESPONSE_FORMAT


def test_n_gives_that_many_choices(sdk: SDK, upstream: Upstream) -> None:
    completion = sdk.chat(model="gpt-test", messages=ask("three ways"), n=3)
    received = assert_forwarded(upstream, sdk)
    assert received["n"] == 3
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert [choice.message.content for choice in completion.choices] == [
        fake.reply_text(received, index) for index in range(3)
    ]


@pytest.mark.parametrize(
    ("encoding_format", "on_the_wire"),
    [(None, "base64"), ("float", "float")],
    ids=["sdk-default-base64", "float"],
)
def test_embeddings_give_the_upstream_vectors(
    sdk: SDK, upstream: Upstream, encoding_format: str | None, on_the_wire: str
) -> None:
    inputs = ["alpha", "beta gamma"]
    params: dict[str, Any] = {"model": "text-embedding-test", "input": inputs}
    if encoding_format:
        params["encoding_format"] = encoding_format
    result = sdk.embed(**params)
    received = assert_forwarded(upstream, sdk, "/v1/embeddings")
    assert received["encoding_format"] == on_the_wire
    assert [item.embedding for item in result.data] == [fake.vector(text, i) for i, text in enumerate(inputs)]
    assert result.model_extra["x_vendor_field"] == VENDOR


def test_models_list_shows_every_configured_model(sdk: SDK, gateway: Gateway, upstream: Upstream) -> None:
    assert sorted(sdk.models()) == sorted(gateway.models)
    assert upstream.received() == []


def test_models_retrieve_names_the_serving_provider(sdk: SDK) -> None:
    model = sdk.run(lambda client: client.models.retrieve("gpt-slow"))
    assert (model.id, model.object, model.owned_by) == ("gpt-slow", "model", "fake-slow")
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.run(lambda client: client.models.retrieve("gpt-unknown"))
    assert missing.value.code == "model_not_found"


def test_a_project_sees_and_uses_only_its_allowed_models(gateway: Gateway, upstream: Upstream) -> None:
    client = SDK("sync", f"{gateway.url}/v1", gateway.create_key(LIMITED_PROJECT))
    assert client.models() == ["echo-1"]
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat(model="gpt-test", messages=ask("not for you"))
    assert refused.value.status_code == 403
    assert refused.value.code == "model_not_allowed"
    assert upstream.received() == []


def test_echo_model_answers_with_what_it_received(sdk: SDK, upstream: Upstream) -> None:
    messages = ask("echo me")
    completion = sdk.chat(model="echo-1", messages=messages)
    assert json.loads(completion.choices[0].message.content) == messages
    chunks = sdk.stream(model="echo-1", messages=messages, stream_options={"include_usage": True})
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)) == messages
    assert chunks[-1].usage is not None
    assert upstream.received() == []
