from __future__ import annotations

import functools
import itertools
import json
import re
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bastion.gateway.sse import EventSplitter, data_of, frame
from bastion.protect.detect.finding import Finding
from bastion.protect.output import RUN, OutputMasker
from bastion.protect.restore import restore, restore_json_string
from bastion.protect.stream import ChunkTransformer
from bastion.protect.tokenize import Vault

PATTERNS = (
    ("EMAIL_ADDRESS", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("CREDIT_CARD", re.compile(r"(?<![\d-])\d{4}(?:[ -]?\d{4}){3}(?![\d-])")),
    ("SECRET", re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9]{20,}")),
)


def detect(text: str) -> list[Finding]:
    """A stand-in detector: emails, cards and keys."""
    return [Finding(type_, m.start(), m.end(), 1.0, "fake") for type_, p in PATTERNS for m in p.finditer(text)]


def make_vault() -> Vault:
    vault = Vault()
    vault.placeholder("PERSON", 'Bob "B" Jones')
    vault.placeholder("EMAIL_ADDRESS", "alice@x.com")
    return vault


VAULT = make_vault()
MASKER = OutputMasker(detect, supplied=VAULT.supplied())
PROMPT = functools.partial(MASKER.stream, after=0)  # no context margin: releases as soon as restoring allows
ENVELOPE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def event(data: dict[str, Any] | str) -> bytes:
    return frame(data.encode() if isinstance(data, str) else json.dumps(data).encode())


def chunk(delta: dict[str, Any], *, index: int = 0, finish: str | None = None, **extra: Any) -> bytes:
    return event({**ENVELOPE, "choices": [{"index": index, "delta": delta, "finish_reason": finish}], **extra})


def tool(arguments: str, *, call: int = 0, **first: Any) -> dict[str, Any]:
    return {"tool_calls": [{"index": call, **first, "function": {"arguments": arguments, **first.pop("fn", {})}}]}


USAGE = event({**ENVELOPE, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})
DONE = event("[DONE]")


def run(events: list[bytes], transformer: ChunkTransformer | None = None) -> list[bytes]:
    transformer = transformer or ChunkTransformer(VAULT, MASKER.stream)
    return [out for item in events for out in transformer.feed(item)] + transformer.close()


def chunks_of(events: list[bytes]) -> list[dict[str, Any]]:
    datas = [data_of(item) for item in events]
    return [json.loads(data) for data in datas if data is not None and data != b"[DONE]"]


def texts(events: list[bytes]) -> dict[tuple[int, str, int], str]:
    """The text each choice received, per field and tool call, joined."""
    joined: dict[tuple[int, str, int], str] = {}
    for body in chunks_of(events):
        for choice in body.get("choices", []):
            delta = choice["delta"]
            if isinstance(delta.get("content"), str):
                key = (choice["index"], "content", -1)
                joined[key] = joined.get(key, "") + delta["content"]
            for call in delta.get("tool_calls", []):
                key = (choice["index"], "tool", call["index"])
                joined[key] = joined.get(key, "") + call["function"].get("arguments", "")
    return joined


def test_a_placeholder_split_across_events_is_restored() -> None:
    out = run(
        [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi [PER"}), chunk({"content": "SON_1]!"})]
    )
    assert texts(out)[0, "content", -1] == 'Hi Bob "B" Jones!'
    assert out[0] == chunk({"role": "assistant", "content": ""})  # untouched events go out as they came


def test_held_text_goes_out_in_the_finishing_chunk() -> None:
    finish = chunk({}, finish="stop")
    events = [chunk({"content": "Write to [EMAIL_ADDRESS"}), chunk({"content": "_1] or bob@evil.com"}), finish]
    out = run(events, ChunkTransformer(VAULT, PROMPT))
    bodies = chunks_of(out)
    assert len(out) == len(events)  # a stream keeps its number of chunks
    assert [body["choices"][0]["delta"].get("content") for body in bodies] == [
        "Write ",
        "to alice@x.com ",
        "or [REDACTED_EMAIL_ADDRESS]",
    ]
    assert bodies[2]["id"] == "chatcmpl-1"
    assert bodies[2]["choices"][0]["finish_reason"] == "stop"


def test_text_in_the_finishing_chunk_goes_out_with_it() -> None:
    out = run(
        [chunk({"content": "Good bye PERSON_"}), chunk({"content": "1."}, finish="stop")],
        ChunkTransformer(VAULT, PROMPT),
    )
    bodies = chunks_of(out)
    assert [body["choices"][0]["delta"]["content"] for body in bodies] == ["Good ", 'bye Bob "B" Jones.']
    assert bodies[-1]["choices"][0]["finish_reason"] == "stop"


def test_the_usage_chunk_and_done_come_last_and_intact() -> None:
    out = run([chunk({"content": "mail [EMAIL_ADDRESS_1]"}), USAGE, DONE])
    assert out[-2:] == [USAGE, DONE]
    assert texts(out)[0, "content", -1] == "mail alice@x.com"
    assert chunks_of(out)[-2]["usage"] is None  # the chunk that flushed is not mistaken for the usage chunk


def test_done_flushes_what_is_held() -> None:
    out = run([chunk({"content": "to [PERSON_"}), DONE])
    assert texts(out)[0, "content", -1] == "to [PERSON_"
    assert out[-1] == DONE


def test_close_flushes_a_stream_that_ended_without_done() -> None:
    transformer = ChunkTransformer(VAULT, PROMPT)
    assert chunks_of(transformer.feed(chunk({"content": "a b PERSON_1"})))[0]["choices"][0]["delta"]["content"] == "a "
    assert chunks_of(transformer.close())[0]["choices"][0]["delta"]["content"] == 'b Bob "B" Jones'
    assert transformer.close() == []


def test_an_error_event_flushes_first() -> None:
    error = event({"error": {"message": "upstream failed", "type": "server_error"}})
    out = run([chunk({"content": "partial [PERSON_1]"}), error])
    assert out[-1] == error
    assert texts(out)[0, "content", -1] == 'partial Bob "B" Jones'


def test_comments_and_foreign_data_pass_through() -> None:
    comment, foreign = b": keep-alive\n\n", b"data: not json\n\n"
    transformer = ChunkTransformer(VAULT, MASKER.stream)
    assert transformer.feed(comment) == [comment]
    assert transformer.feed(foreign) == [foreign]
    assert transformer.feed(event({"type": "ping"})) == [event({"type": "ping"})]


def test_other_lines_of_a_rewritten_event_are_kept() -> None:
    original = b"event: message\nid: 7\n" + chunk({"content": "[PERSON_1] ok and more than enough text to pass"})
    [out] = ChunkTransformer(VAULT).feed(original)
    assert out.startswith(b"event: message\nid: 7\ndata: {")
    assert out.endswith(b"\n\n")


def test_logprobs_are_dropped() -> None:
    logprobs = {"content": [{"token": "[PERSON_1]", "logprob": -0.1, "bytes": None, "top_logprobs": []}]}
    body = {
        **ENVELOPE,
        "choices": [{"index": 0, "delta": {"content": ""}, "logprobs": logprobs, "finish_reason": None}],
    }
    [out] = ChunkTransformer(VAULT).feed(event(body))
    assert chunks_of([out])[0]["choices"][0]["logprobs"] is None


def test_tool_call_arguments_are_restored_as_valid_json() -> None:
    first = tool("", id="call_1", type="function", fn={"name": "send"})
    out = run([chunk(first), chunk(tool('{"to": "[PERS')), chunk(tool('ON_1]", "cc": "EMAIL_ADDRESS_1"}')), DONE])
    arguments = texts(out)[0, "tool", 0]
    assert json.loads(arguments) == {"to": 'Bob "B" Jones', "cc": "alice@x.com"}
    assert chunks_of(out)[0]["choices"][0]["delta"]["tool_calls"][0]["id"] == "call_1"


def test_choices_and_tool_calls_are_kept_apart() -> None:
    out = run(
        [
            chunk({"content": "[PERS"}, index=0),
            chunk({"content": "[EMAIL_"}, index=1),
            chunk(tool('"[PERSON', call=0)),
            chunk(tool('"[EMAIL_ADDRESS', call=1)),
            chunk({"content": "ON_1]"}, index=0),
            chunk({"content": "ADDRESS_1]"}, index=1),
            chunk(tool('_1]"', call=0)),
            chunk(tool('_1]"', call=1)),
            DONE,
        ]
    )
    assert texts(out) == {
        (0, "content", -1): 'Bob "B" Jones',
        (1, "content", -1): "alice@x.com",
        (0, "tool", 0): '"Bob \\"B\\" Jones"',
        (0, "tool", 1): '"alice@x.com"',
    }


def test_without_a_masker_only_placeholders_change() -> None:
    out = run([chunk({"content": "[PERSON_1] at bob@evil.com"}), DONE], ChunkTransformer(VAULT))
    assert texts(out)[0, "content", -1] == 'Bob "B" Jones at bob@evil.com'


WORDS = ["Hi", "[PERSON_1]", "[person_1]", "PERSON_1", "[EMAIL_ADDRESS_1]", "[PERSON_9]", "alice@x.com", "é", '"']
LEAKS = ["bob@evil.com", "5500 0000 0000 0004", "sk-LEAKabcdefghijklmnopqrst", "6011-0009-9013-9424"]
SEPARATORS = [" ", " ", "\n", ", ", "", "  "]
TEXT = st.lists(st.tuples(st.sampled_from(WORDS + LEAKS), st.sampled_from(SEPARATORS)), max_size=25).map(
    lambda pairs: "".join(word + sep for word, sep in pairs)
)


def split(text: str, cuts: list[int]) -> list[str]:
    edges = [0, *sorted({min(cut, len(text)) for cut in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


def answer_events(content: list[str], other: list[str], arguments: list[str], order: list[bool]) -> list[bytes]:
    """Choice 0 streams ``content`` then a tool call with ``arguments``; choice 1 streams ``other``; interleaved."""
    zero = [chunk({"role": "assistant", "content": ""})] + [chunk({"content": part}) for part in content]
    zero += [chunk(tool("", id="call_1", type="function", fn={"name": "f"}))]
    zero += [chunk(tool(part)) for part in arguments] + [chunk({}, finish="tool_calls")]
    one = [chunk({"content": part}, index=1) for part in other] + [chunk({}, index=1, finish="stop")]
    merged = []
    for take_zero in itertools.chain(order, itertools.repeat(True)):
        if not zero and not one:
            break
        source = zero if (take_zero and zero) or not one else one
        merged.append(source.pop(0))
    return [b": hi\n\n", *merged, USAGE, DONE]


@settings(max_examples=150, deadline=None)
@given(
    TEXT,
    TEXT,
    st.lists(st.integers(min_value=0, max_value=700), max_size=40),
    st.lists(st.integers(min_value=0, max_value=700), max_size=40),
    st.lists(st.booleans(), max_size=60),
)
def test_any_rechunking_gives_the_restored_and_masked_whole(
    text: str, other: str, cuts: list[int], more_cuts: list[int], order: list[bool]
) -> None:
    assume(all(len(run) < 200 for run in RUN.findall(text + "  " + other)))  # the masker's cap is 256
    arguments = json.dumps({"note": other, "to": "[PERSON_1]"})
    events = answer_events(split(text, cuts), split(other, more_cuts), split(arguments, cuts), order)
    out = run(events)
    assert texts(out) == {
        (0, "content", -1): MASKER.mask(restore(text, VAULT)),
        (1, "content", -1): MASKER.mask(restore(other, VAULT)),
        (0, "tool", 0): MASKER.mask(restore_json_string(arguments, VAULT), json_string=True),
    }
    assert json.loads(texts(out)[0, "tool", 0])["to"] == 'Bob "B" Jones'
    assert_valid_framing(events, out)


def assert_valid_framing(events: list[bytes], out: list[bytes]) -> None:
    """Whole events, [DONE] last, the usage chunk intact just before it, each choice's text before its finish."""
    splitter = EventSplitter()
    assert list(splitter.feed(b"".join(out))) == out
    assert splitter.pending == b""
    assert out[-2:] == [USAGE, DONE]
    assert out.count(DONE) == 1
    finished: set[int] = set()
    for body in chunks_of(out[:-2]):
        for choice in body["choices"]:
            assert choice["index"] not in finished
            if choice["finish_reason"] is not None:
                finished.add(choice["index"])
    assert finished == {0, 1}
    assert len(out) >= len(events)


@settings(deadline=None)
@given(TEXT)
def test_one_character_per_event(text: str) -> None:
    assume(all(len(run) < 200 for run in RUN.findall(text)))
    out = run([chunk({"content": char}) for char in text] + [chunk({}, finish="stop"), DONE])
    assert texts(out).get((0, "content", -1), "") == MASKER.mask(restore(text, VAULT))
