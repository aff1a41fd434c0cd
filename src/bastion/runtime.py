"""Everything a running gateway holds (store, caches, limiter, upstream clients, routes), from start to stop."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from bastion.api.admin import AdminApp, Control, create_admin_app
from bastion.api.audit import AuditControl, create_audit_app
from bastion.api.health import HealthRoutes
from bastion.api.openai import OpenAIRoutes
from bastion.audit.checkpoints import Checkpoints, CheckpointTask, Prover, audit_signer
from bastion.audit.log import AuditLog
from bastion.compliance.source import Source
from bastion.gateway.pipeline import Pipeline
from bastion.gateway.protection import Protection
from bastion.gateway.record import Recorder
from bastion.identity.cache import CallerCache
from bastion.identity.model import networks
from bastion.identity.usage import KeyUsage
from bastion.obs.metrics import Metrics
from bastion.policy.estimate import TokenEstimator
from bastion.policy.limits import Limiter, Limits, memory_limiter
from bastion.policy.redis_limits import connect, redis_limiter
from bastion.protect.detect import shared_detector
from bastion.protect.detect.ner import load_ner
from bastion.protect.detect.tiers import Detection
from bastion.routing.catalog import Catalog, LiveRouting
from bastion.routing.health import Health, MemoryHealth
from bastion.routing.probes import Prober
from bastion.routing.providers import build_provider, check_credentials
from bastion.routing.redis_health import RedisHealth
from bastion.routing.retry import RetryPolicy
from bastion.routing.router import Router
from bastion.services import Services, open_services
from bastion.store.changes import ChangeFeed, open_feed

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from fastapi import FastAPI
    from redis.asyncio import Redis

    from bastion.config import ProviderConfig, Settings
    from bastion.routing.providers.base import Provider


def make_limiter(settings: Settings) -> tuple[Limiter, Redis | None]:
    """In-process limits for one gateway; Redis when ``BASTION_REDIS_URL`` makes several agree."""
    if settings.redis_url is None:
        return memory_limiter(), None
    client = connect(settings.redis_url)
    return redis_limiter(client), client


def make_detection(settings: Settings) -> Detection:
    """The detector (the process's one, compiled on first use), with the NER model loaded when a project uses it:
    a missing model then stops the start, with the fix, instead of failing requests."""
    detection = Detection(shared_detector())
    if any(project.data_policy.ner for project in settings.file.projects):
        load_ner()
    return detection


async def start_routing(
    catalog: Catalog, feed: ChangeFeed, build: Callable[[ProviderConfig], Provider], redis: Redis | None
) -> LiveRouting:
    """The router over the catalog's providers and vendors, with the endpoints' circuit breakers (shared
    through Redis when there is one) and their active probes; it follows the catalog from then on."""
    breakers: Health = RedisHealth(redis, {}) if redis is not None else MemoryHealth({})
    await breakers.start()
    prober = Prober(breakers, {})
    prober.start()
    entries = await asyncio.to_thread(catalog.load)
    live = LiveRouting(catalog, feed, Router((), health=breakers), build, entries, prober)
    await live.adopt(entries)
    return live


@dataclass
class Runtime:
    settings: Settings
    services: Services
    feed: ChangeFeed
    session: aiohttp.ClientSession
    routing: LiveRouting
    pipeline: Pipeline
    usage: KeyUsage
    audit: AuditLog
    openai: OpenAIRoutes
    health: HealthRoutes
    metrics: Metrics
    admin: AdminApp
    audit_api: FastAPI
    checkpointer: CheckpointTask
    redis: Redis | None = None

    @classmethod
    async def start(cls, settings: Settings, env: Mapping[str, str] | None = None) -> Runtime:
        signer = await asyncio.to_thread(audit_signer, settings)  # first: a bad key stops the start cleanly
        services = await asyncio.to_thread(open_services, settings)
        estimator = await asyncio.to_thread(TokenEstimator)
        detection = await asyncio.to_thread(make_detection, settings)
        feed = open_feed(services.engine)
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=512, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        environ = os.environ if env is None else env
        catalog = Catalog(
            services.engine,
            tuple(settings.file.providers),
            tuple(settings.file.vendors),
            check=lambda spec: check_credentials(spec, environ),
        )
        metrics = Metrics()
        limiter, redis = make_limiter(settings)
        routing = await start_routing(catalog, feed, lambda spec: build_provider(spec, session, environ), redis)
        usage = KeyUsage(services.keys.touch)
        usage.start()
        audit = AuditLog(services.engine)
        audit.start()
        checkpoints = Checkpoints(services.engine, signer, Prover(services.engine))
        checkpointer = CheckpointTask(checkpoints, settings.file.audit.checkpoint_interval.total_seconds())
        checkpointer.start()
        server = settings.server
        pipeline = Pipeline(
            callers=CallerCache(services.keys.caller, feed),
            digest=services.keys.digest,
            router=routing.router,
            limiter=limiter,
            estimator=estimator,
            usage=usage,
            metrics=metrics,
            recorder=Recorder(audit, services.audit_keys),
            protection=Protection(detection, vaults=services.vaults),
            retry=RetryPolicy.of(settings.file.routing),
            ip_limits=Limits(**server.ip_limits.model_dump()),
            sync_routes=routing.sync,
        )
        trusted = networks(server.trusted_proxies)
        reports = Source.of(services, settings.file, catalog)
        control = Control(
            services.org, services.keys, pipeline, limiter, server.admin_rpm, routing, tuple(trusted), reports
        )
        return cls(
            settings=settings,
            services=services,
            feed=feed,
            session=session,
            routing=routing,
            pipeline=pipeline,
            usage=usage,
            audit=audit,
            openai=OpenAIRoutes(pipeline, metrics, server.max_body_bytes, trusted),
            health=HealthRoutes(services.engine, routing.router, metrics),
            metrics=metrics,
            admin=create_admin_app(control),
            audit_api=create_audit_app(control, AuditControl(checkpoints, services.engine)),
            checkpointer=checkpointer,
            redis=redis,
        )

    async def close(self) -> None:
        await self.usage.stop()
        await self.audit.stop()
        await self.checkpointer.stop()
        await self.routing.stop()
        await self.pipeline.drain()
        await self.session.close()
        if self.redis is not None:
            await self.redis.aclose()
        self.feed.close()
        self.services.close()
