"""The state of one request as it moves through the pipeline; filled step by step, never shared."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.identity.keys import KeyRecord


@dataclass(slots=True)
class RequestContext:
    request_id: str
    endpoint: str  # "chat.completions" | "embeddings"
    raw: bytes
    api_key: str | None
    client_ip: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    key: KeyRecord | None = None
    model: str = ""
    stream: bool = False
    provider: str | None = None

    @property
    def project(self) -> str | None:
        return self.key.project if self.key else None
