"""Checks of OpenAI request bodies: only what the pipeline relies on, everything else passes untouched."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from bastion.errors import InvalidJSON, InvalidParameter, MissingParameter

if TYPE_CHECKING:
    from collections.abc import Callable


def parse_body(raw: bytes) -> dict[str, Any]:
    """Parse the JSON body once; it must be an object."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(
            f"The request body is not valid JSON ({exc.msg} at character {exc.pos}); send a JSON object."
        ) from exc
    if not isinstance(body, dict):
        raise InvalidJSON('The request body must be a JSON object, e.g. {"model": ..., "messages": [...]}.')
    return body


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise MissingParameter('You must provide a model parameter, e.g. "model": "gpt-4.1-mini".', param="model")
    if not isinstance(model, str) or not model:
        raise InvalidParameter("'model' must be a non-empty string naming a model.", param="model")
    return model


def _stream(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise InvalidParameter("'stream' must be true or false.", param="stream")
    return stream


def check_chat(body: dict[str, Any]) -> tuple[str, bool]:
    """Validate a chat completion request; return its model and whether it streams."""
    model = _model(body)
    messages = body.get("messages")
    if messages is None:
        raise MissingParameter(
            'You must provide \'messages\', a list of {"role", "content"} objects.', param="messages"
        )
    if not isinstance(messages, list) or not messages:
        raise InvalidParameter("'messages' must be a non-empty list of message objects.", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidParameter(
                f"messages[{index}] must be an object with a string 'role'.", param=f"messages[{index}]"
            )
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise InvalidParameter("'n' must be a positive integer.", param="n")
    return model, _stream(body)


def check_embeddings(body: dict[str, Any]) -> tuple[str, bool]:
    """Validate an embeddings request; return its model (embeddings never stream)."""
    model = _model(body)
    if "input" not in body:
        raise MissingParameter("You must provide 'input', a string or a list of strings.", param="input")
    value = body["input"]
    if not _embeddable(value):
        raise InvalidParameter(
            "'input' must be a non-empty string, a list of strings, or a list of token lists.", param="input"
        )
    return model, False


def _embeddable(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if not isinstance(value, list) or not value:
        return False
    if all(isinstance(item, str) for item in value):
        return True
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        return True
    return all(isinstance(item, list) and item and all(isinstance(t, int) for t in item) for item in value)


# Endpoint -> its check, returning (model, stream).
CHECKS: dict[str, Callable[[dict[str, Any]], tuple[str, bool]]] = {
    "chat.completions": check_chat,
    "embeddings": check_embeddings,
}
