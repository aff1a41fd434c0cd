"""Restore placeholders and mask unsupplied values in an OpenAI ``chat.completion.chunk`` event stream.

``ChunkTransformer.feed`` takes each whole SSE event (``gateway.sse.EventSplitter`` cuts them) and returns the
events to send on. Each text of each choice (``delta.content``, ``refusal``, ``reasoning_content``, each tool
call's ``function.arguments``, the legacy ``function_call.arguments``) has its own ``StreamRestorer`` and
``StreamMasker``; a chunk is re-serialised with what may go now and every other field as it came. Text held
back goes out in the choice's ``finish_reason`` chunk (so a stream keeps its number of chunks), or in a chunk of
its own just before the usage chunk, an error event or ``[DONE]``, or on ``close()`` when the upstream ends
without them.

One field is changed on purpose: ``logprobs`` become null, because their tokens spell the placeholders and any
value the masker hides, and cannot be restored or masked token by token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from bastion.gateway.sse import DONE, data_of, frame
from bastion.protect.restore import StreamRestorer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bastion.protect.output import MaskerFactory, StreamMasker
    from bastion.protect.tokenize import Vault

TEXT_FIELDS = ("content", "refusal", "reasoning_content")
Slot = tuple[int, str, int]  # choice index, field ("content", "tool_calls", ...), tool-call index (-1 if none)
_Text = tuple[str, int, dict[str, Any], str]  # field, tool-call index, the object holding the text, its key


class TextStream:
    """One text of one choice: placeholders restored, then values masked, each holding back what is undecided."""

    def __init__(self, vault: Vault, masker_factory: MaskerFactory | None, *, json_string: bool) -> None:
        self._restorer = StreamRestorer(vault, json_string=json_string)
        self._masker: StreamMasker | None = masker_factory(json_string=json_string) if masker_factory else None

    def feed(self, text: str) -> str:
        """What may go now of the text so far, restored and masked."""
        restored = self._restorer.feed(text)
        return restored if self._masker is None else self._masker.feed(restored)

    def flush(self) -> str:
        """All that is held, as the end of the text."""
        restored = self._restorer.flush()
        return restored if self._masker is None else self._masker.feed(restored) + self._masker.flush()


def _texts(choice: dict[str, Any]) -> Iterator[_Text]:
    """Every text in a choice's delta that the answer's reader sees."""
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return
    for field in TEXT_FIELDS:
        if isinstance(delta.get(field), str):
            yield field, -1, delta, field
    for call in delta.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            yield "tool_calls", _index(call), function, "arguments"
    function = delta.get("function_call")
    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
        yield "function_call", -1, function, "arguments"


def _index(item: dict[str, Any]) -> int:
    index = item.get("index", 0)
    return index if isinstance(index, int) else 0


def _put(delta: dict[str, Any], field: str, call: int, text: str) -> None:
    """Add ``text`` to a delta in the place its field belongs."""
    if field == "tool_calls":
        delta.setdefault("tool_calls", []).append({"index": call, "function": {"arguments": text}})
    elif field == "function_call":
        delta["function_call"] = {"arguments": text}
    else:
        delta[field] = text


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _reframe(event: bytes, chunk: dict[str, Any]) -> bytes:
    """The event with its data replaced by ``chunk``; its other lines (``event:``, ``id:``) kept, first."""
    fields = [line for line in event.splitlines() if line and not line.startswith(b"data:")]
    return b"".join(line + b"\n" for line in fields) + frame(orjson.dumps(chunk))


class ChunkTransformer:
    """Feed it the events of one streamed chat completion in order; send on what ``feed`` and ``close`` return.

    >>> transformer = ChunkTransformer(vault, OutputMasker(detector.scan, supplied=vault.supplied()).stream)
    >>> for event in splitter.feed(chunk): yield from transformer.feed(event)
    """

    def __init__(self, vault: Vault, masker_factory: MaskerFactory | None = None) -> None:
        self._vault = vault
        self._factory = masker_factory
        self._streams: dict[Slot, TextStream] = {}
        self._envelope: dict[str, Any] = {"object": "chat.completion.chunk"}

    def feed(self, event: bytes) -> list[bytes]:
        """The events to send for one whole upstream event: usually just it, rewritten or as it came; before a
        finish, the usage chunk, an error or ``[DONE]``, first a chunk per choice with the text it held."""
        data = data_of(event)
        if data is None:
            return [event]
        if data == DONE:
            return [*self._flush(), event]
        chunk = _parse(data)
        if chunk is None:
            return [event]  # not a JSON object: nothing in it that a client reads as text
        if "error" in chunk:
            return [*self._flush(), event]
        return self._transform(event, chunk)

    def close(self) -> list[bytes]:
        """Whatever is still held, for an upstream that ended without ``[DONE]``."""
        return self._flush()

    def _transform(self, event: bytes, chunk: dict[str, Any]) -> list[bytes]:
        """A chunk: each choice's texts rewritten, a finishing choice's with all it held; on the usage chunk,
        every choice's held text in a chunk of its own before it."""
        # The envelope of chunks we add; "usage" null there, so that none is taken for the usage chunk.
        self._envelope = {key: None if key == "usage" else value for key, value in chunk.items() if key != "choices"}
        closing = chunk.get("usage") is not None
        choices = chunk.get("choices")
        changed = False
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            finishing = not closing and choice.get("finish_reason") is not None
            changed |= self._rewrite(_index(choice), choice, finishing=finishing)
        before = self._flush() if closing else []
        return [*before, _reframe(event, chunk) if changed else event]

    def _rewrite(self, index: int, choice: dict[str, Any], *, finishing: bool) -> bool:
        """Put each text of the choice through its stream, and when it finishes, add all its streams hold;
        True when the chunk changed."""
        changed = choice.get("logprobs") is not None
        if changed:
            choice["logprobs"] = None
        for field, call, holder, key in _texts(choice):
            slot = (index, field, call)
            text = self._stream(slot).feed(holder[key])
            if finishing:
                text += self._streams.pop(slot).flush()
            changed |= text != holder[key]
            holder[key] = text
        if finishing:
            rest = self._held(index)
            if rest:
                delta = choice.get("delta")
                if not isinstance(delta, dict):
                    delta = choice["delta"] = {}
                for (_, field, call), text in rest:
                    _put(delta, field, call, text)
                changed = True
        return changed

    def _held(self, index: int) -> list[tuple[Slot, str]]:
        """All that the choice's remaining streams hold, each stream then closed."""
        slots = [slot for slot in self._streams if slot[0] == index]
        held = [(slot, self._streams.pop(slot).flush()) for slot in slots]
        return [(slot, text) for slot, text in held if text]

    def _stream(self, slot: Slot) -> TextStream:
        stream = self._streams.get(slot)
        if stream is None:
            json_string = slot[1] not in TEXT_FIELDS
            stream = self._streams[slot] = TextStream(self._vault, self._factory, json_string=json_string)
        return stream

    def _flush(self) -> list[bytes]:
        """A chunk per choice with all it holds, for the choices that hold any."""
        events: list[bytes] = []
        for index in sorted({slot[0] for slot in self._streams}):
            delta: dict[str, Any] = {}
            for (_, field, call), text in self._held(index):
                _put(delta, field, call, text)
            if delta:
                choice = {"index": index, "delta": delta, "finish_reason": None}
                events.append(frame(orjson.dumps({**self._envelope, "choices": [choice]})))
        return events
