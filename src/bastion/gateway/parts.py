"""Every piece of text a request carries to the model, with where it is: the unit of inspection.

Chat: each message's text content (a string, or the ``text`` of each content part), its ``name``,
the ``arguments`` of each tool call, and tool results (messages with role ``tool`` are text like any
other). Embeddings: each string of ``input``. ``where`` names the place the way an error message
should (``messages[2].tool_calls[0].function.arguments``); ``path`` is how to put a new text back.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Part:
    where: str
    path: Path
    text: str


def _where(path: Path) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _part(path: Path, value: Any) -> list[Part]:
    return [Part(_where(path), path, value)] if isinstance(value, str) and value else []


def _message_parts(index: int, message: Any) -> list[Part]:
    if not isinstance(message, dict):
        return []
    base: Path = ("messages", index)
    found = _part((*base, "name"), message.get("name"))
    content = message.get("content")
    if isinstance(content, str):
        found += _part((*base, "content"), content)
    elif isinstance(content, list):
        for position, item in enumerate(content):
            if isinstance(item, dict) and item.get("type", "text") == "text":
                found += _part((*base, "content", position, "text"), item.get("text"))
    for position, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            found += _part((*base, "tool_calls", position, "function", "arguments"), function.get("arguments"))
    return found


def parts(endpoint: str, body: dict[str, Any]) -> list[Part]:
    """The texts of a request in a stable order (message order, then position within a message)."""
    if endpoint == "embeddings":
        value = body.get("input")
        if isinstance(value, str):
            return _part(("input",), value)
        if isinstance(value, list):
            return [part for index, item in enumerate(value) for part in _part(("input", index), item)]
        return []
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [part for index, message in enumerate(messages) for part in _message_parts(index, message)]


def replaced(body: dict[str, Any], texts: dict[Path, str]) -> dict[str, Any]:
    """A copy of ``body`` with the text at each path replaced; the caller's body is left as it was.

    Only the lists and objects on the way to a replaced text are copied (shallowly); everything else is
    shared with ``body``, which is never changed.
    """
    if not texts:
        return body
    result = dict(body)
    copied: set[Path] = {()}
    for path, text in texts.items():
        target: Any = result
        for depth, step in enumerate(path[:-1]):
            here = path[: depth + 1]
            if here not in copied:
                target[step] = copy.copy(target[step])
                copied.add(here)
            target = target[step]
        target[path[-1]] = text
    return result
