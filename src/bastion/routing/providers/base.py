"""What every provider offers the gateway: send a call and get a reply, open a stream of SSE events, or probe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bastion.errors import UpstreamError, UpstreamRejected

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping

    from bastion.config import ProviderConfig

PATHS = {"chat.completions": "/chat/completions", "embeddings": "/embeddings"}


@dataclass(frozen=True, slots=True)
class Call:
    """One request as it leaves for the upstream; ``raw`` is exactly the bytes to send."""

    endpoint: str
    model: str
    body: dict[str, Any]
    raw: bytes
    stream: bool
    request_id: str


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str


class Provider(Protocol):
    name: str
    config: ProviderConfig

    async def send(self, call: Call) -> Reply:
        """Send a non-streaming call; raise an :class:`UpstreamError` for anything but a 2xx."""

    async def open_stream(self, call: Call) -> AsyncGenerator[bytes, None]:
        """Start a streaming call; once the upstream accepted it, iterate its whole SSE events."""

    async def probe(self) -> None:
        """Check that the endpoint is healthy without a client's request; raise :class:`UpstreamError` if not."""

    async def close(self) -> None: ...


# Upstream headers a client needs with a refusal: when to retry, its limits, and its request id.
RELAYED = ("retry-after", "retry-after-ms", "x-request-id")
RELAYED_PREFIXES = ("x-ratelimit-",)


def relayed(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower().encode(), value.encode("latin-1", "replace"))
        for name, value in headers.items()
        if name.lower() in RELAYED or name.lower().startswith(RELAYED_PREFIXES)
    ]


def refuse_status(
    provider: str, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
) -> None:
    """Turn a non-2xx upstream status into the error the client gets.

    The upstream's 4xx reach the client as they came, except 401 and 403: those are about
    Bastion's own credentials for the upstream, which the client can neither see nor fix.
    """
    if status in (401, 403):
        raise UpstreamError(
            f"The upstream provider '{provider}' refused Bastion's credentials (HTTP {status}); the operator must "
            "check the provider's api_key_env."
        )
    if 400 <= status < 500:
        raise UpstreamRejected(status, body, content_type or "application/json", relayed(headers or {}))
    if status >= 300:
        raise UpstreamError(
            f"The upstream provider '{provider}' answered HTTP {status}; try again later or check its status."
        )
