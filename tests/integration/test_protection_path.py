"""The protection step on the whole app in-process, with an upstream that answers what the test scripts: values the
caller never sent (output masking), placeholders in tool-call arguments and in every spelling a model might use,
another caller's placeholders, and streams that end in awkward places.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from tests.harness import in_process, runtime_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

    from bastion.app import BastionApp
    from bastion.config import Settings

pytestmark = pytest.mark.anyio

EMAIL = "dana.whitfield@example.com"
PHONE = "+44 20 7946 0958"
EVE_EMAIL = "eve.mallory@evil.example"
EVE_PHONE = "+1 415 555 2671"
USAGE = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
CUT_AFTER = 7  # events "up-cut" sends: the role, then "Hi [EM" of "Hi [EMAIL_ADDRESS_1]"
Answer = Callable[[dict[str, Any]], dict[str, Any]]


def says(content: str | None = None, tool_arguments: str | None = None, logprobs: Any = None) -> Answer:
    """An upstream whose message is ``content`` (and a tool call with ``tool_arguments``) whatever it is asked."""

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_arguments is not None:
            message["tool_calls"] = [
                {"id": "call_1", "type": "function", "function": {"name": "send", "arguments": tool_arguments}}
            ]
        return {"message": message, "logprobs": logprobs}

    return answer


def echoes(body: dict[str, Any]) -> dict[str, Any]:
    """An upstream that answers with the last message it was sent."""
    return {"message": {"role": "assistant", "content": body["messages"][-1]["content"]}, "logprobs": None}


def completion(choice: dict[str, Any]) -> dict[str, Any]:
    finish = "tool_calls" if choice["message"].get("tool_calls") else "stop"
    head = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "up"}
    return {**head, "choices": [{"index": 0, **choice, "finish_reason": finish}], "usage": USAGE}


def chunks(choice: dict[str, Any], *, usage: bool, done: bool = True) -> list[bytes]:
    """The same answer streamed one character a delta (content, then each tool call's arguments)."""
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "up"}
    message = choice["message"]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": char} for char in message.get("content") or ""]
    for call in message.get("tool_calls") or ():
        first = {"index": 0, "id": call["id"], "type": "function", "function": {"name": "send", "arguments": ""}}
        deltas.append({"tool_calls": [first]})
        arguments = call["function"]["arguments"]
        deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": char}}]} for char in arguments]
    datas = [{**head, "choices": [{"index": 0, "delta": d, "logprobs": choice["logprobs"]}]} for d in deltas]
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    datas.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage:
        datas.append({**head, "choices": [], "usage": USAGE})
    events = [b"data: " + json.dumps(data).encode() + b"\n\n" for data in datas]
    return [*events, b"data: [DONE]\n\n"] if done else events


@dataclass
class Upstream:
    url: str
    answer: Answer = echoes
    received: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(body)
        await asyncio.sleep(self.delay)
        choice = self.answer(body)
        if not body.get("stream"):
            return web.json_response(completion(choice))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = chunks(choice, usage=usage, done=body["model"] != "up-no-done")
        for event in events[: CUT_AFTER if body["model"] == "up-cut" else None]:
            await response.write(event)
        return response


@asynccontextmanager
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream("")
    app = web.Application()
    app.router.add_post("/v1/chat/completions", up.chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    up.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    try:
        yield up
    finally:
        await runner.cleanup()


@dataclass
class Gateway:
    app: BastionApp
    http: httpx.AsyncClient
    upstream: Upstream

    def key(self, project: str = "p") -> str:
        _, key = runtime_of(self.app).services.keys.create(project)
        return key

    async def chat(self, key: str, text: str | list[dict[str, Any]], **body: Any) -> httpx.Response:
        messages = [{"role": "user", "content": text}] if isinstance(text, str) else text
        payload = {"model": "gpt-test", "messages": messages, **body}
        return await self.http.post("/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {key}"})


@asynccontextmanager
async def gateway(make_settings: Callable[..., Settings], **data_policy: Any) -> AsyncIterator[Gateway]:
    """Project ``p`` has ``data_policy``; project ``vaulted`` persists its placeholders."""
    async with upstream() as up:
        providers = [
            {
                "name": "up",
                "kind": "openai",
                "base_url": up.url,
                "models": {"gpt-test": "up", "no-done": "up-no-done", "cut": "up-cut"},
            }
        ]
        projects = [
            {"name": "p", "data_policy": data_policy},
            {"name": "vaulted", "data_policy": {"vault": {"persist": True}}},
        ]
        async with in_process(make_settings(providers=providers, projects=projects)) as (app, http):
            yield Gateway(app, http, up)


def content_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


def streamed(response: httpx.Response) -> tuple[str, list[dict[str, Any]]]:
    """The content a client reassembles from an SSE answer, and its chunks (the body must end with [DONE])."""
    assert response.status_code == 200, response.text
    assert response.text.endswith("data: [DONE]\n\n")
    datas = [event.removeprefix("data: ") for event in response.text.split("\n\n") if event]
    chunks = [json.loads(data) for data in datas[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    return text, chunks


# Output masking ---------------------------------------------------------------------------------------------------

ANSWER = f"Eve is {EVE_EMAIL}, phone {EVE_PHONE}."
MASKED = "Eve is [REDACTED_EMAIL_ADDRESS], phone [REDACTED_PHONE_NUMBER]."


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({}, MASKED),
        ({"output": {"mask_unsupplied": False}}, ANSWER),
        ({"output": {"entities": {"PHONE_NUMBER": "allow"}}}, f"Eve is [REDACTED_EMAIL_ADDRESS], phone {EVE_PHONE}."),
        ({"entities": {"EMAIL_ADDRESS": "allow"}}, f"Eve is {EVE_EMAIL}, phone [REDACTED_PHONE_NUMBER]."),
        (
            {"output": {"mask_unsupplied": False, "entities": {"EMAIL_ADDRESS": "redact"}}},
            f"Eve is [REDACTED_EMAIL_ADDRESS], phone {EVE_PHONE}.",
        ),
    ],
    ids=["default", "unmasked", "phones-allowed", "emails-allowed-on-input", "only-emails-masked"],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_values_the_caller_did_not_send_are_masked_as_the_policy_says(
    make_settings: Callable[..., Settings], policy: dict[str, Any], expected: str, stream: bool
) -> None:
    async with gateway(make_settings, **policy) as gw:
        gw.upstream.answer = says(ANSWER)
        response = await gw.chat(gw.key(), "Who is Eve?", stream=stream)
    # A stream only appends: text equal to the masked answer means no fragment of a value went out first.
    text = streamed(response)[0] if stream else content_of(response)
    assert text == expected


@pytest.mark.parametrize("stream", [False, True])
async def test_a_card_number_or_key_the_model_makes_up_is_masked(
    make_settings: Callable[..., Settings], stream: bool
) -> None:
    async with gateway(make_settings) as gw:
        gw.upstream.answer = says("Use card 4111 1111 1111 1111 and key AKIAIOSFODNN7EXAMPLE.")
        response = await gw.chat(gw.key(), "Give me test credentials.", stream=stream)
    text = streamed(response)[0] if stream else content_of(response)
    assert text == "Use card [REDACTED_CREDIT_CARD] and key [REDACTED_SECRET]."
    assert "AKIA" not in response.text
    assert "4111" not in response.text


async def test_a_value_the_caller_sent_is_not_masked_however_the_model_writes_it(
    make_settings: Callable[..., Settings],
) -> None:
    async with gateway(make_settings) as gw:
        gw.upstream.answer = says(f"Noted [PHONE_NUMBER_1], also written +442079460958 or {EMAIL.upper()}.")
        response = await gw.chat(gw.key(), f"Call {PHONE} or mail {EMAIL}.")
    assert content_of(response) == f"Noted {PHONE}, also written +442079460958 or {EMAIL.upper()}."


# Restoration ------------------------------------------------------------------------------------------------------

SPELLINGS = "[email_address_1] / [ EMAIL_ADDRESS_1 ] / EMAIL_ADDRESS_1 / [EMAIL_ADDRESS_9] / EMAIL_ADDRESS_1x"


@pytest.mark.parametrize("stream", [False, True])
async def test_every_spelling_of_a_handed_out_placeholder_is_restored_and_no_other(
    make_settings: Callable[..., Settings], stream: bool
) -> None:
    async with gateway(make_settings) as gw:
        gw.upstream.answer = says(SPELLINGS)
        response = await gw.chat(gw.key(), f"mail {EMAIL}", stream=stream)
    text = streamed(response)[0] if stream else content_of(response)
    assert text == f"{EMAIL} / {EMAIL} / {EMAIL} / [EMAIL_ADDRESS_9] / EMAIL_ADDRESS_1x"


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_arguments_are_restored_as_valid_json(
    make_settings: Callable[..., Settings], stream: bool
) -> None:
    arguments = json.dumps({"to": "[EMAIL_ADDRESS_1]", "sms": "[ phone_number_1 ]", "cc": "[EMAIL_ADDRESS_2]"})
    async with gateway(make_settings) as gw:
        gw.upstream.answer = says(None, tool_arguments=arguments)
        response = await gw.chat(gw.key(), f"Send it to {EMAIL}, text {PHONE}.", stream=stream)
    assert response.status_code == 200, response.text
    if stream:
        _, chunks = streamed(response)
        calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls") or ()]
        text = "".join(call["function"].get("arguments") or "" for call in calls)
        assert "[" not in text.replace("[EMAIL_ADDRESS_2]", "")
    else:
        (call,) = response.json()["choices"][0]["message"]["tool_calls"]
        text = call["function"]["arguments"]
    assert json.loads(text) == {"to": EMAIL, "sms": PHONE, "cc": "[EMAIL_ADDRESS_2]"}


@pytest.mark.parametrize("stream", [False, True])
async def test_logprobs_are_dropped_because_their_tokens_spell_placeholders(
    make_settings: Callable[..., Settings], stream: bool
) -> None:
    logprobs = {"content": [{"token": "[EMAIL", "logprob": -0.1, "bytes": None, "top_logprobs": []}]}
    async with gateway(make_settings) as gw:
        gw.upstream.answer = says("Hi [EMAIL_ADDRESS_1]", logprobs=logprobs)
        response = await gw.chat(gw.key(), f"I am {EMAIL}", stream=stream, logprobs=True)
    if stream:
        text, chunks = streamed(response)
        assert all(choice.get("logprobs") is None for c in chunks for choice in c["choices"])
    else:
        text = content_of(response)
        assert response.json()["choices"][0]["logprobs"] is None
    assert text == f"Hi {EMAIL}"
    assert "[EMAIL" not in response.text


async def test_held_text_is_released_before_usage_and_done(make_settings: Callable[..., Settings]) -> None:
    async with gateway(make_settings) as gw:
        gw.upstream.answer = says("Ends with [EMAIL_ADDRESS_1]")
        response = await gw.chat(gw.key(), f"I am {EMAIL}", stream=True, stream_options={"include_usage": True})
    text, chunks = streamed(response)
    assert text == f"Ends with {EMAIL}"
    assert chunks[-1]["usage"] == USAGE
    assert [c["usage"] for c in chunks if c.get("usage")] == [USAGE]


def events_of(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    """The content of an SSE answer that ended in an error event, and that error."""
    assert response.status_code == 200, response.text
    datas = [json.loads(event.removeprefix("data: ")) for event in response.text.split("\n\n") if event]
    *chunks, last = datas
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    error: dict[str, Any] = last["error"]
    return text, error


async def test_a_stream_cut_mid_placeholder_sends_no_fragment(make_settings: Callable[..., Settings]) -> None:
    async with gateway(make_settings) as gw:
        gw.upstream.answer = says("Hi [EMAIL_ADDRESS_1]")
        response = await gw.chat(gw.key(), f"I am {EMAIL}", model="cut", stream=True)
    text, error = events_of(response)
    assert "Hi ".startswith(text), text  # what was held back is dropped, never released unfinished
    assert error["code"]


async def test_a_stream_that_finished_but_never_said_done_was_restored_first(
    make_settings: Callable[..., Settings],
) -> None:
    async with gateway(make_settings) as gw:
        gw.upstream.answer = says("Hi [EMAIL_ADDRESS_1]")
        response = await gw.chat(gw.key(), f"I am {EMAIL}", model="no-done", stream=True)
    text, error = events_of(response)
    assert text == f"Hi {EMAIL}"
    assert error["code"]


# Callers and requests ---------------------------------------------------------------------------------------------


async def test_another_callers_placeholder_is_never_restored(make_settings: Callable[..., Settings]) -> None:
    async with gateway(make_settings) as gw:
        alice, bob = gw.key("vaulted"), gw.key("vaulted")
        content_of(await gw.chat(alice, "I am alice.private@example.net"))
        assert gw.upstream.received[-1]["messages"][0]["content"] == "I am [EMAIL_ADDRESS_1]"
        gw.upstream.answer = says("You are [EMAIL_ADDRESS_2], not [EMAIL_ADDRESS_1] or EMAIL_ADDRESS_1.")
        answer = content_of(await gw.chat(bob, f"I am {EMAIL}"))
    assert gw.upstream.received[-1]["messages"][0]["content"] == "I am [EMAIL_ADDRESS_2]"
    assert answer == f"You are {EMAIL}, not [EMAIL_ADDRESS_1] or EMAIL_ADDRESS_1."


async def test_concurrent_requests_each_get_their_own_values_back(make_settings: Callable[..., Settings]) -> None:
    async with gateway(make_settings) as gw:
        gw.upstream.delay = 0.01
        key = gw.key()
        addresses = [f"user{i}@example.com" for i in range(24)]
        responses = await asyncio.gather(*(gw.chat(key, f"I am {address}.") for address in addresses))
    assert [content_of(response) for response in responses] == [f"I am {address}." for address in addresses]
    assert {body["messages"][0]["content"] for body in gw.upstream.received} == {"I am [EMAIL_ADDRESS_1]."}


async def test_a_persisted_vault_keeps_numbers_for_concurrent_requests(make_settings: Callable[..., Settings]) -> None:
    """Values first seen in concurrent requests keep their numbers in the next requests."""
    async with gateway(make_settings) as gw:
        key = gw.key("vaulted")
        addresses = [f"user{i}@example.com" for i in range(24)]
        await asyncio.gather(*(gw.chat(key, f"I am {address}.") for address in addresses))
        first = {body["messages"][0]["content"] for body in gw.upstream.received}
        gw.upstream.received.clear()
        for address in addresses:
            content_of(await gw.chat(key, f"I am {address}."))
        again = {body["messages"][0]["content"] for body in gw.upstream.received}
    assert all(re.fullmatch(r"I am \[EMAIL_ADDRESS_\d+\]\.", sent) for sent in first | again)
    assert len(first) == len(addresses)  # one number per value, none for two
    assert again == first


async def test_a_long_request_is_scanned_off_the_event_loop_and_protected(
    make_settings: Callable[..., Settings],
) -> None:
    filler = "lorem ipsum dolor sit amet " * 2000  # 54,000 characters: over the worker-thread threshold
    async with gateway(make_settings) as gw:
        gw.upstream.answer = says("Mail [EMAIL_ADDRESS_1].")
        response = await gw.chat(gw.key(), f"{filler}Mail {EMAIL}.")
    assert gw.upstream.received[-1]["messages"][0]["content"] == f"{filler}Mail [EMAIL_ADDRESS_1]."
    assert content_of(response) == f"Mail {EMAIL}."
