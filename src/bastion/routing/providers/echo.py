"""Kind ``echo``: a local model that answers with exactly the messages it received.

It lets a user see what would have left the network, and gives tests and demos an upstream that
needs nothing. Token counts are estimates (four characters a token), not a tokenizer's.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import struct
import time
from typing import TYPE_CHECKING, Any

import orjson

from bastion.gateway.sse import DONE, frame
from bastion.routing.providers.base import Call, Reply

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping

    import aiohttp

    from bastion.config import ProviderConfig

CHUNK_CHARS = 16
DIMENSIONS = 16


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _usage(prompt: str, completion: str) -> dict[str, int]:
    prompt_tokens, completion_tokens = estimate_tokens(prompt), estimate_tokens(completion)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector derived from the text, so equal inputs embed equally."""
    seed = hashlib.sha256(text.encode()).digest()
    raw = [(seed[i % len(seed)] - 127.5) / 127.5 for i in range(dimensions)]
    norm = math.sqrt(sum(value * value for value in raw)) or 1.0
    return [value / norm for value in raw]


class EchoProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.config = config

    @classmethod
    def build(cls, config: ProviderConfig, _session: aiohttp.ClientSession, _env: Mapping[str, str]) -> EchoProvider:
        return cls(config)

    async def send(self, call: Call) -> Reply:
        body = self._embeddings(call) if call.endpoint == "embeddings" else self._completion(call)
        return Reply(200, orjson.dumps(body), "application/json")

    async def open_stream(self, call: Call) -> AsyncGenerator[bytes, None]:
        return self._chunks(call)

    async def probe(self) -> None:
        """Always healthy: the echo model runs inside Bastion."""

    async def close(self) -> None:
        """Nothing to release: the echo model holds no connections."""

    def _echo(self, call: Call) -> tuple[str, str]:
        messages = call.body.get("messages", [])
        text = orjson.dumps(messages).decode()
        return text, text

    def _completion(self, call: Call) -> dict[str, Any]:
        prompt, content = self._echo(call)
        choices = [
            {
                "index": index,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for index in range(int(call.body.get("n") or 1))
        ]
        return {**self._envelope(call, "chat.completion"), "choices": choices, "usage": _usage(prompt, content)}

    def _envelope(self, call: Call, kind: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-echo-{secrets.token_hex(8)}",
            "object": kind,
            "created": int(time.time()),
            "model": call.model,
            "system_fingerprint": "bastion-echo",
        }

    async def _chunks(self, call: Call) -> AsyncGenerator[bytes, None]:
        prompt, content = self._echo(call)
        envelope = self._envelope(call, "chat.completion.chunk")
        choices = range(int(call.body.get("n") or 1))

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            parts = [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish} for i in choices]
            return frame(orjson.dumps({**envelope, "choices": parts}))

        yield event({"role": "assistant", "content": ""})
        for start in range(0, len(content), CHUNK_CHARS):
            yield event({"content": content[start : start + CHUNK_CHARS]})
        yield event({}, "stop")
        if (call.body.get("stream_options") or {}).get("include_usage"):
            yield frame(orjson.dumps({**envelope, "choices": [], "usage": _usage(prompt, content)}))
        yield frame(DONE)

    def _embeddings(self, call: Call) -> dict[str, Any]:
        value = call.body["input"]
        inputs = [value] if isinstance(value, str) or (value and isinstance(value[0], int)) else value
        texts = [item if isinstance(item, str) else " ".join(map(str, item)) for item in inputs]
        dimensions = int(call.body.get("dimensions") or DIMENSIONS)
        as_base64 = call.body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = _vector(text, dimensions)
            encoded: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        prompt_tokens = sum(estimate_tokens(text) for text in texts)
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        return {"object": "list", "data": data, "model": call.model, "usage": usage}
