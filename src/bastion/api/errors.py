"""OpenAI's error envelope ``{"error": {"message", "type", "param", "code"}}`` for any Bastion error."""

from __future__ import annotations

import orjson

from bastion.errors import BastionError, UpstreamRejected


def envelope(exc: BastionError) -> bytes:
    return orjson.dumps({"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}})


def render(exc: BastionError) -> tuple[int, bytes, str]:
    """Status, body and content type for ``exc``; an upstream's own 4xx goes out exactly as it came."""
    if isinstance(exc, UpstreamRejected):
        return exc.status, exc.body, exc.content_type
    return exc.status, envelope(exc), "application/json"
