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
    from collections.abc import Mapping

    from sqlalchemy import Engine

    from bastion.routing.eligibility import Vendor
    from bastion.routing.health import Health


class HealthRoutes:
    def __init__(
        self,
        engine: Engine,
        upstreams: int,
        metrics: Metrics,
        *,
        vendors: Mapping[str, Vendor] | None = None,
        breakers: Health | None = None,
    ) -> None:
        self._engine = engine
        self._upstreams = upstreams
        self._metrics = metrics
        self._vendors = dict(vendors or {})
        self._breakers = breakers

    async def healthz(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send_bytes(send, 200, b'{"status":"ok"}', "application/json")

    async def readyz(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        store = await asyncio.to_thread(ping, self._engine)
        ready = store and self._upstreams > 0
        checks: dict[str, Any] = {"store": "ok" if store else "unreachable", "upstreams": self._upstreams}
        if self._breakers is not None:
            checks["circuits"] = {name: view["state"] for name, view in self._breakers.snapshot().items()}
        notices = [item.to_json() for item in expiring(self._vendors.values(), datetime.now(UTC).date())]
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
        if notices:
            body["attestations"] = notices
        await send_bytes(send, 200 if ready else 503, orjson.dumps(body), "application/json")

    async def metrics(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send_bytes(send, 200, self._metrics.render(), CONTENT_TYPE)
