from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.protect.answer import protect_completion
from bastion.protect.detect.finding import Finding
from bastion.protect.output import OutputMasker
from bastion.protect.tokenize import Vault

EMAIL = re.compile(r"[a-z.]+@[a-z]+\.[a-z]{2,}")
QUOTED = 'Bob "B" \\ Jones'  # quotes and a backslash: JSON source must escape them


def detect(text: str) -> list[Finding]:
    """A stand-in detector that finds e-mail addresses."""
    return [Finding("EMAIL_ADDRESS", m.start(), m.end(), 1.0, "fake") for m in EMAIL.finditer(text)]


def make_vault() -> Vault:
    vault = Vault()
    assert vault.placeholder("EMAIL_ADDRESS", "alice@x.com") == "[EMAIL_ADDRESS_1]"
    assert vault.placeholder("PERSON", QUOTED) == "[PERSON_1]"
    return vault


VAULT = make_vault()
MASKER = OutputMasker(detect, supplied=VAULT.supplied())


def body(*messages: dict[str, Any], logprobs: Any = None, **extra: Any) -> bytes:
    choices = [
        {"index": i, "message": message, "logprobs": logprobs, "finish_reason": "stop"}
        for i, message in enumerate(messages)
    ]
    return orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion", "choices": choices, **extra})


def messages_of(data: bytes) -> list[dict[str, Any]]:
    return [choice["message"] for choice in orjson.loads(data)["choices"]]


def call(arguments: str) -> dict[str, Any]:
    return {"id": "call_1", "type": "function", "function": {"name": "send", "arguments": arguments}}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"role": "assistant", "content": "Hi [EMAIL_ADDRESS_1]"}, {"content": "Hi alice@x.com"}),
        ({"content": "[person_1] and [ PERSON_1 ] and PERSON_1"}, {"content": f"{QUOTED} and {QUOTED} and {QUOTED}"}),
        ({"content": "[EMAIL_ADDRESS_2] PERSON_1x"}, {"content": "[EMAIL_ADDRESS_2] PERSON_1x"}),  # never handed out
        ({"refusal": "Not for [PERSON_1]."}, {"refusal": f"Not for {QUOTED}."}),
        ({"reasoning_content": "[EMAIL_ADDRESS_1]?"}, {"reasoning_content": "alice@x.com?"}),
        ({"content": "mail eve@evil.example"}, {"content": "mail [REDACTED_EMAIL_ADDRESS]"}),
        ({"content": "[EMAIL_ADDRESS_1], not bob@y.org"}, {"content": "alice@x.com, not [REDACTED_EMAIL_ADDRESS]"}),
        ({"content": "ALICE@x.com again"}, {"content": "ALICE@x.com again"}),  # supplied, however written
        (
            {"content": None, "tool_calls": [call('{"to": "[PERSON_1]"}')]},
            {"tool_calls": [call(json.dumps({"to": QUOTED}))]},
        ),
        (
            {"function_call": {"name": "f", "arguments": '{"who": "[PERSON_1]"}'}},
            {"function_call": {"name": "f", "arguments": json.dumps({"who": QUOTED})}},
        ),
        (
            {"tool_calls": [call('{"cc": "eve@evil.example"}')]},
            {"tool_calls": [call('{"cc": "[REDACTED_EMAIL_ADDRESS]"}')]},
        ),
    ],
    ids=[
        "content",
        "spellings",
        "unknown-names",
        "refusal",
        "reasoning",
        "unsupplied-masked",
        "restored-then-masked",
        "supplied-not-masked",
        "tool-arguments-json-escaped",
        "legacy-function-call",
        "arguments-masked",
    ],
)
def test_each_text_of_the_message_is_restored_then_masked(message: dict[str, Any], expected: dict[str, Any]) -> None:
    (out,) = messages_of(protect_completion(body(message), VAULT, MASKER))
    assert out == {**message, **expected}


def test_every_choice_is_rewritten_and_other_fields_are_kept() -> None:
    data = body({"content": "[EMAIL_ADDRESS_1]", "x_note": 1}, {"content": "PERSON_1"}, usage={"total_tokens": 3})
    out = orjson.loads(protect_completion(data, VAULT, None))
    assert [choice["message"] for choice in out["choices"]] == [
        {"content": "alice@x.com", "x_note": 1},
        {"content": QUOTED},
    ]
    assert out["usage"] == {"total_tokens": 3}
    assert [choice["finish_reason"] for choice in out["choices"]] == ["stop", "stop"]


def test_restored_arguments_stay_valid_json() -> None:
    arguments = '{"to": "[PERSON_1]", "list": ["PERSON_1", "[ person_1 ]"]}'
    (out,) = messages_of(protect_completion(body({"tool_calls": [call(arguments)]}), VAULT, MASKER))
    assert json.loads(out["tool_calls"][0]["function"]["arguments"]) == {"to": QUOTED, "list": [QUOTED, QUOTED]}


def test_logprobs_become_null_because_their_tokens_spell_placeholders() -> None:
    logprobs = {"content": [{"token": "[EMAIL", "logprob": -0.1}]}
    out = orjson.loads(protect_completion(body({"content": "plain"}, logprobs=logprobs), VAULT, None))
    assert out["choices"][0]["logprobs"] is None


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1, 2]",
        b'{"error": {"message": "[EMAIL_ADDRESS_1]"}}',
        b'{"choices": "[EMAIL_ADDRESS_1]"}',
        b'{"choices": [1, {"message": "[EMAIL_ADDRESS_1]"}, {"text": "[EMAIL_ADDRESS_1]"}]}',
        b'{"choices":[{"message":{"content":"nothing to do","refusal":null},"logprobs":null}],  "usage" :{}}',
        b'{"choices":[{"message":{"content":7,"tool_calls":[{"function":{"arguments":{"a":1}}},"x"]}}]}',
    ],
    ids=["not-json", "not-an-object", "no-choices", "choices-not-a-list", "no-message", "unchanged", "odd-shapes"],
)
def test_a_body_with_nothing_to_rewrite_is_returned_as_it_came(data: bytes) -> None:
    assert protect_completion(data, VAULT, MASKER) is data


def test_without_a_masker_only_placeholders_change() -> None:
    (out,) = messages_of(protect_completion(body({"content": "[PERSON_1] <eve@evil.example>"}), VAULT, None))
    assert out["content"] == f"{QUOTED} <eve@evil.example>"


def test_an_empty_vault_with_a_masker_only_masks() -> None:
    data = body({"content": "[EMAIL_ADDRESS_1] alice@x.com eve@evil.example"})
    (out,) = messages_of(protect_completion(data, Vault(), MASKER))
    assert out["content"] == "[EMAIL_ADDRESS_1] alice@x.com [REDACTED_EMAIL_ADDRESS]"


original = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)
filler = st.text(st.sampled_from('ab _[]"\\\n'), max_size=12)


@given(original, st.lists(filler, min_size=1, max_size=5))
def test_any_value_restored_into_arguments_parses_back_to_itself(value: str, gaps: list[str]) -> None:
    vault = Vault()
    placeholder = vault.placeholder("PERSON", value)
    texts = [gap + placeholder for gap in gaps]
    arguments = json.dumps({"items": texts})
    (out,) = messages_of(protect_completion(body({"tool_calls": [call(arguments)]}), vault, None))
    parsed = json.loads(out["tool_calls"][0]["function"]["arguments"])
    assert parsed == {"items": [gap + value for gap in gaps]}


@given(original, st.lists(filler, min_size=1, max_size=5))
def test_content_is_restored_exactly(value: str, gaps: list[str]) -> None:
    vault = Vault()
    placeholder = vault.placeholder("PERSON", value)
    content = "|".join(gap + placeholder for gap in gaps)
    (out,) = messages_of(protect_completion(body({"content": content}), vault, None))
    assert out["content"] == "|".join(gap + value for gap in gaps)
