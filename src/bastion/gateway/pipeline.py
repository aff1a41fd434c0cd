"""The request path, in the order of DESIGN.md §2, in one place.

Each step is one call to a unit tested on its own: authenticate (identity), read the body (parse
and check it, only once a caller is known), authorise (the project's model allowlist), route
(router), forward (provider). Steps that later capabilities add
go in here, in their place in the order.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from bastion.errors import AuthenticationError, ModelNotAllowed, PermissionDenied, UpstreamError
from bastion.gateway.request import CHECKS, parse_body
from bastion.routing.providers.base import Call, Reply

if TYPE_CHECKING:
    from bastion.gateway.context import RequestContext
    from bastion.identity.cache import KeyCache
    from bastion.identity.keys import KeyRecord
    from bastion.obs.metrics import Metrics
    from bastion.routing.router import Route, Router

# Project name -> allowed models (None: every model a provider serves).
Allowlists = Mapping[str, frozenset[str] | None]


class Pipeline:
    def __init__(
        self,
        *,
        keys: KeyCache,
        digest: Callable[[str], str],
        allowlists: Allowlists,
        router: Router,
        metrics: Metrics,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._keys = keys
        self._digest = digest
        self._allowlists = allowlists
        self._router = router
        self._metrics = metrics
        self._clock = clock or (lambda: datetime.now(UTC))

    async def run(self, ctx: RequestContext) -> Reply | AsyncGenerator[bytes, None]:
        """Carry one chat or embeddings request through every step; return the reply or its event stream."""
        ctx.key = await self.authenticate(ctx.api_key)
        ctx.body = parse_body(ctx.raw)
        ctx.model, ctx.stream = CHECKS[ctx.endpoint](ctx.body)
        self.authorise(ctx.key, ctx.model)
        route = self._router.choose(ctx.model)
        ctx.provider = route.provider.name
        return await self.forward(ctx, route)

    async def models(self, api_key: str | None) -> dict[str, str]:
        """The models the caller's project may use, with the provider that serves each."""
        key = await self.authenticate(api_key)
        allowed = self._allowed(key)
        return {model: owner for model, owner in self._router.models().items() if allowed is None or model in allowed}

    async def authenticate(self, api_key: str | None) -> KeyRecord:
        if not api_key:
            raise AuthenticationError(
                "You didn't provide an API key; send it as 'Authorization: Bearer <key>' (or an 'api-key' header)."
            )
        key = await self._keys.get(self._digest(api_key))
        if key is None:
            raise AuthenticationError("The API key is not valid; check it, or create one with 'bastion keys create'.")
        key.check(self._clock())
        return key

    def authorise(self, key: KeyRecord, model: str) -> None:
        allowed = self._allowed(key)
        if allowed is not None and model not in allowed:
            raise ModelNotAllowed(
                f"Project '{key.project}' may not use the model '{model}'; GET /v1/models lists the models it may use.",
                param="model",
            )

    def _allowed(self, key: KeyRecord) -> frozenset[str] | None:
        if key.project not in self._allowlists:
            raise PermissionDenied(
                f"Key {key.prefix}… belongs to project '{key.project}', which the configuration no longer declares."
            )
        return self._allowlists[key.project]

    async def forward(self, ctx: RequestContext, route: Route) -> Reply | AsyncGenerator[bytes, None]:
        raw, body = ctx.raw, ctx.body
        if route.upstream_model != ctx.model:
            body = {**body, "model": route.upstream_model}
            raw = orjson.dumps(body)
        call = Call(ctx.endpoint, route.upstream_model, body, raw, ctx.stream, ctx.request_id)
        try:
            if ctx.stream:
                return await route.provider.open_stream(call)
            return await route.provider.send(call)
        except UpstreamError as exc:
            self.count_upstream_error(route.provider.name, exc)
            raise

    def count_upstream_error(self, provider: str, exc: UpstreamError) -> None:
        self._metrics.upstream_errors.labels(provider, str(exc.status)).inc()
