"""Restore and mask a whole (non-streamed) chat completion: the same texts ``stream.ChunkTransformer`` rewrites
in a stream, here in one piece: each choice's ``content``, ``refusal`` and ``reasoning_content``, each tool call's
``function.arguments`` and the legacy ``function_call.arguments`` (JSON source: values go in JSON-escaped).

Placeholders are restored first, then values the caller did not supply are masked; ``logprobs`` become null
for the reason ``stream`` gives. A body that is not a JSON object is returned as it came (nothing in it is
read as text by a client library).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from bastion.protect.restore import restore, restore_json_string
from bastion.protect.stream import TEXT_FIELDS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bastion.protect.output import OutputMasker
    from bastion.protect.tokenize import Vault

_Text = tuple[dict[str, Any], str, bool]  # the object holding the text, its key, whether it is JSON source


def _texts(message: dict[str, Any]) -> Iterator[_Text]:
    for field in TEXT_FIELDS:
        if isinstance(message.get(field), str):
            yield message, field, False
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            yield function, "arguments", True
    function = message.get("function_call")
    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
        yield function, "arguments", True


def protect_completion(body: bytes, vault: Vault, masker: OutputMasker | None) -> bytes:
    """The completion with placeholders restored and unsupplied values masked; ``body`` itself if unchanged."""
    try:
        completion = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list):
        return body
    changed = False
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if choice.get("logprobs") is not None:
            choice["logprobs"] = None
            changed = True
        for holder, key, json_string in _texts(message):
            text = (restore_json_string if json_string else restore)(holder[key], vault)
            if masker is not None:
                text = masker.mask(text, json_string=json_string)
            if text != holder[key]:
                holder[key] = text
                changed = True
    return orjson.dumps(completion) if changed else body
