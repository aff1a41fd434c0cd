"""Small ASGI helpers: read a bounded body, send JSON, send an error, pick headers."""

from __future__ import annotations

from typing import Any

from bastion.api.errors import render
from bastion.errors import BastionError, InvalidRequest, RequestTooLarge, UnsupportedMediaType

Scope = dict[str, Any]
Message = dict[str, Any]


def headers_of(scope: Scope) -> dict[bytes, bytes]:
    """Request headers by lower-case name (the last one wins for repeated names)."""
    return dict(scope["headers"])


def api_key(headers: dict[bytes, bytes]) -> str | None:
    """The key from ``Authorization: Bearer ...`` or, as Azure clients send it, ``api-key``."""
    value = headers.get(b"authorization")
    if value is not None:
        scheme, _, token = value.decode("latin-1").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None
    azure = headers.get(b"api-key")
    return azure.decode("latin-1").strip() or None if azure is not None else None


def require_json(headers: dict[bytes, bytes]) -> None:
    content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    if content_type != b"application/json":
        shown = content_type.decode("latin-1") or "none"
        raise UnsupportedMediaType(f"Content-Type must be application/json (got {shown}); send a JSON body.")


async def read_body(receive: Any, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The whole body, refused as soon as it is known to exceed ``limit`` bytes."""
    declared = headers.get(b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Content-Length is not a number.")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("The client disconnected before the body was complete.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body exceeds {limit} bytes (server.max_body_bytes); send a smaller request.")


async def send_bytes(
    send: Any, status: int, body: bytes, content_type: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type.encode("latin-1")), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Any, exc: BastionError) -> int:
    status, body, content_type = render(exc)
    await send_bytes(send, status, body, content_type, exc.headers)
    return status
