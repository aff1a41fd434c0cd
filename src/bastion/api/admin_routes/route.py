"""One row of the admin API's route table: method, path under ``/admin/v1``, handler, success status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime


class Route(NamedTuple):
    method: str
    path: str
    endpoint: Callable[..., Any]
    status: int = 200
    tag: str = ""


def listing(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A list response, shaped like OpenAI's: ``{"object": "list", "data": [...]}``."""
    return {"object": "list", "data": items, **extra}


def timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
