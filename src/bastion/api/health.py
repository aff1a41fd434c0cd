"""``/healthz`` (the process answers), ``/readyz`` (store reachable, an upstream configured), ``/metrics``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from bastion.api.http import send_bytes
from bastion.obs.metrics import CONTENT_TYPE, Metrics
from bastion.store.engine import ping

if TYPE_CHECKING:
    from sqlalchemy import Engine


class HealthRoutes:
    def __init__(self, engine: Engine, upstreams: int, metrics: Metrics) -> None:
        self._engine = engine
        self._upstreams = upstreams
        self._metrics = metrics

    async def healthz(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send_bytes(send, 200, b'{"status":"ok"}', "application/json")

    async def readyz(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        store = await asyncio.to_thread(ping, self._engine)
        ready = store and self._upstreams > 0
        body = {
            "status": "ready" if ready else "not_ready",
            "checks": {"store": "ok" if store else "unreachable", "upstreams": self._upstreams},
        }
        await send_bytes(send, 200 if ready else 503, orjson.dumps(body), "application/json")

    async def metrics(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send_bytes(send, 200, self._metrics.render(), CONTENT_TYPE)
