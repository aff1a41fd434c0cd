from __future__ import annotations

from typing import Any

import pytest

from bastion.errors import InvalidJSON, InvalidParameter, MissingParameter
from bastion.gateway.request import check_chat, check_embeddings, parse_body

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("raw", "error"),
    [(b"{", InvalidJSON), (b"[1, 2]", InvalidJSON), (b"", InvalidJSON), (b'"text"', InvalidJSON)],
)
def test_body_must_be_a_json_object(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_body(raw)


def test_body_parses_once_into_a_dict() -> None:
    assert parse_body(b'{"model": "m", "x": [1]}') == {"model": "m", "x": [1]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": "m", "messages": MESSAGES}, ("m", False)),
        ({"model": "m", "messages": MESSAGES, "stream": True}, ("m", True)),
        ({"model": "m", "messages": MESSAGES, "stream": None, "n": 2}, ("m", False)),
    ],
)
def test_valid_chat(body: dict[str, Any], expected: tuple[str, bool]) -> None:
    assert check_chat(body) == expected


@pytest.mark.parametrize(
    ("body", "error", "param"),
    [
        ({"messages": MESSAGES}, MissingParameter, "model"),
        ({"model": 3, "messages": MESSAGES}, InvalidParameter, "model"),
        ({"model": "", "messages": MESSAGES}, InvalidParameter, "model"),
        ({"model": "m"}, MissingParameter, "messages"),
        ({"model": "m", "messages": "hi"}, InvalidParameter, "messages"),
        ({"model": "m", "messages": []}, InvalidParameter, "messages"),
        ({"model": "m", "messages": [{"content": "no role"}]}, InvalidParameter, "messages[0]"),
        ({"model": "m", "messages": MESSAGES, "stream": "yes"}, InvalidParameter, "stream"),
        ({"model": "m", "messages": MESSAGES, "n": 0}, InvalidParameter, "n"),
        ({"model": "m", "messages": MESSAGES, "n": True}, InvalidParameter, "n"),
    ],
)
def test_invalid_chat_names_the_parameter(body: dict[str, Any], error: type[Exception], param: str) -> None:
    with pytest.raises(error) as caught:
        check_chat(body)
    assert getattr(caught.value, "param", None) == param


@pytest.mark.parametrize("value", ["text", ["a", "b"], [1, 2, 3], [[1, 2], [3]]])
def test_valid_embeddings_input(value: Any) -> None:
    assert check_embeddings({"model": "e", "input": value}) == ("e", False)


@pytest.mark.parametrize("value", [None, 3, [], [None], ["a", 1], [[]], [True]])
def test_invalid_embeddings_input(value: Any) -> None:
    with pytest.raises(InvalidParameter):
        check_embeddings({"model": "e", "input": value})


def test_embeddings_need_input() -> None:
    with pytest.raises(MissingParameter):
        check_embeddings({"model": "e"})
