"""``/healthz`` (the process answers), ``/readyz`` (store reachable, an upstream configured), ``/metrics``.

``/readyz`` also reports each endpoint's circuit and the vendor attestations that have expired or expire
within 30 days: a warning, not a failure (an expired attestation removes its providers from eligibility,
which the gateway enforces per request).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from bastion.api.http import send_bytes
from bastion.obs.metrics import CONTENT_TYPE, Metrics
from bastion.routing.eligibility import expiring
from bastion.store.engine import ping

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bastion.routing.router import Router


class HealthRoutes:
    def __init__(self, engine: Engine, router: Router, metrics: Metrics) -> None:
        self._engine = engine
        self._router = router
        self._metrics = metrics

    async def healthz(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send_bytes(send, 200, b'{"status":"ok"}', "application/json")

    async def readyz(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        store = await asyncio.to_thread(ping, self._engine)
        upstreams = len(self._router.providers)
        ready = store and upstreams > 0
        checks: dict[str, Any] = {"store": "ok" if store else "unreachable", "upstreams": upstreams}
        checks["circuits"] = {name: view["state"] for name, view in self._router.health.snapshot().items()}
        notices = [item.to_json() for item in expiring(self._router.vendors.values(), datetime.now(UTC).date())]
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
        if notices:
            body["attestations"] = notices
        await send_bytes(send, 200 if ready else 503, orjson.dumps(body), "application/json")

    async def metrics(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send_bytes(send, 200, self._metrics.render(), CONTENT_TYPE)
