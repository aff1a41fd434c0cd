"""The state of one request as it moves through the pipeline; filled step by step, never shared."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.gateway.protection import Inspected
    from bastion.identity.keys import Caller
    from bastion.identity.network import IPAddress
    from bastion.policy.limits import Scope
    from bastion.routing.router import Route


@dataclass(slots=True)
class RequestContext:
    request_id: str
    endpoint: str  # "chat.completions" | "embeddings" | "models"
    raw: bytes
    api_key: str | None
    client_ip: IPAddress | None = None
    body: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    caller: Caller | None = None
    model: str = ""
    stream: bool = False
    provider: str | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # added to the response
    charged: tuple[tuple[Scope, ...], int, int] | None = None  # scopes, token estimate, UTC day
    audit_seq: int | None = None  # the last audit entry written for this request
    data_class: str | None = None  # the client's X-Bastion-Data-Class header
    inspected: Inspected | None = None  # what inspection decided, and how to restore the answer
    routing: dict[str, Any] | None = None  # why these providers were eligible (for the audit record)
    route: Route | None = None  # the route of the current (last) attempt

    @property
    def project(self) -> str | None:
        return self.caller.project.name if self.caller else None

    @property
    def key_prefix(self) -> str | None:
        return self.caller.key.prefix if self.caller else None
