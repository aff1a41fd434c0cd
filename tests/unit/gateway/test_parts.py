from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.gateway.parts import parts, replaced

CHAT: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "name": "ann",
            "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "result text"},
    ],
}


def test_every_text_of_a_chat_request_with_its_place() -> None:
    assert [(p.where, p.text) for p in parts("chat.completions", CHAT)] == [
        ("messages[0].content", "be brief"),
        ("messages[1].name", "ann"),
        ("messages[1].content[0].text", "hi"),
        ("messages[2].tool_calls[0].function.arguments", '{"a": 1}'),
        ("messages[3].content", "result text"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("one", [("input", "one")]), (["a", "", "b"], [("input[0]", "a"), ("input[2]", "b")]), ([1, 2], []), (None, [])],
)
def test_embeddings_input(value: Any, expected: list[tuple[str, str]]) -> None:
    assert [(p.where, p.text) for p in parts("embeddings", {"input": value})] == expected


def test_replaced_changes_a_copy_only() -> None:
    found = parts("chat.completions", CHAT)
    new = replaced(CHAT, {part.path: part.text.upper() for part in found})
    assert [p.text for p in parts("chat.completions", new)] == ["BE BRIEF", "ANN", "HI", '{"A": 1}', "RESULT TEXT"]
    assert CHAT["messages"][0]["content"] == "be brief"
    assert new["messages"][1]["content"][1] == CHAT["messages"][1]["content"][1]
    assert replaced(CHAT, {}) is CHAT


@given(st.lists(st.text(min_size=1), min_size=1, max_size=6))
def test_parts_and_replaced_round_trip(texts: list[str]) -> None:
    body = {"messages": [{"role": "user", "content": text} for text in texts]}
    found = parts("chat.completions", body)
    assert [p.text for p in found] == texts
    assert replaced(body, {p.path: p.text for p in found}) == body
