"""Everything a running gateway holds (store, caches, upstream clients, routes), built at start, closed at stop."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from bastion.api.health import HealthRoutes
from bastion.api.openai import OpenAIRoutes
from bastion.gateway.pipeline import Pipeline
from bastion.identity.cache import KeyCache
from bastion.obs.metrics import Metrics
from bastion.routing.providers import build_provider
from bastion.routing.router import Router
from bastion.services import Services, open_services
from bastion.store.changes import ChangeFeed, open_feed

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bastion.config import Settings
    from bastion.routing.providers.base import Provider


@dataclass
class Runtime:
    settings: Settings
    services: Services
    feed: ChangeFeed
    session: aiohttp.ClientSession
    providers: list[Provider]
    openai: OpenAIRoutes
    health: HealthRoutes

    @classmethod
    async def start(cls, settings: Settings, env: Mapping[str, str] | None = None) -> Runtime:
        services = await asyncio.to_thread(open_services, settings)
        feed = open_feed(services.engine)
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=512, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        providers = [build_provider(p, session, os.environ if env is None else env) for p in settings.file.providers]
        metrics = Metrics()
        router = Router(providers)
        allowlists = {p.name: frozenset(p.models) if p.models is not None else None for p in settings.file.projects}
        pipeline = Pipeline(
            keys=KeyCache(services.keys.lookup, feed),
            digest=services.keys.digest,
            allowlists=allowlists,
            router=router,
            metrics=metrics,
        )
        return cls(
            settings=settings,
            services=services,
            feed=feed,
            session=session,
            providers=providers,
            openai=OpenAIRoutes(pipeline, metrics, settings.server.max_body_bytes),
            health=HealthRoutes(services.engine, len(providers), metrics),
        )

    async def close(self) -> None:
        for provider in self.providers:
            await provider.close()
        await self.session.close()
        self.feed.close()
        self.services.close()
