"""The OpenAI-compatible ``/v1`` routes: the hot path, as plain ASGI with one JSON parse per request."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from bastion.api.http import api_key, headers_of, read_body, require_json, send_bytes, send_error
from bastion.api.streaming import relay, unless_disconnected
from bastion.errors import BastionError, ClientDisconnected, MethodNotAllowed, ModelNotFound, NotFound, UpstreamError
from bastion.gateway.context import RequestContext
from bastion.identity.network import client_address
from bastion.routing.providers.base import Reply

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bastion.gateway.pipeline import Pipeline
    from bastion.identity.model import IPNetwork
    from bastion.obs.metrics import Metrics

Handler = Callable[[dict[str, Any], Any, Any], Awaitable[int]]


class OpenAIRoutes:
    def __init__(self, pipeline: Pipeline, metrics: Metrics, max_body: int, trusted: Sequence[IPNetwork] = ()) -> None:
        self._pipeline = pipeline
        self._metrics = metrics
        self._max_body = max_body
        self._trusted = tuple(trusted)
        self._created = int(time.time())
        self._routes: dict[str, tuple[str, str, Handler]] = {
            "/v1/chat/completions": ("POST", "chat.completions", self._chat),
            "/v1/embeddings": ("POST", "embeddings", self._embeddings),
            "/v1/models": ("GET", "models", self._models),
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path: str = scope["path"]
        started = time.perf_counter()
        endpoint, status = "unknown", 500
        try:
            method, endpoint, handler = self._route(path)
            if scope["method"] != method:
                raise MethodNotAllowed(f"{path} accepts {method} only.", headers=[(b"allow", method.encode())])
            status = await handler(scope, receive, send)
        except BastionError as exc:
            status = await send_error(send, exc)
        finally:
            self._metrics.observe(endpoint, status, time.perf_counter() - started)

    def _route(self, path: str) -> tuple[str, str, Handler]:
        route = self._routes.get(path.rstrip("/"))
        if route is not None:
            return route
        if path.startswith("/v1/models/"):
            return "GET", "models", self._model
        raise NotFound(f"Bastion does not serve {path}; it serves /v1/chat/completions, /v1/embeddings and /v1/models.")

    async def _chat(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        return await self._complete(scope, receive, send, "chat.completions")

    async def _embeddings(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        return await self._complete(scope, receive, send, "embeddings")

    def _context(self, scope: dict[str, Any], headers: dict[bytes, bytes], endpoint: str, raw: bytes) -> RequestContext:
        peer = scope.get("client")
        forwarded = headers.get(b"x-forwarded-for")
        client_ip = client_address(
            peer[0] if peer else None, forwarded.decode("latin-1") if forwarded else None, self._trusted
        )
        ctx = RequestContext(scope["bastion.request_id"], endpoint, raw, api_key(headers), client_ip)
        data_class = headers.get(b"x-bastion-data-class")
        if data_class is not None:
            ctx.data_class = data_class.decode("latin-1")
        scope["bastion.context"] = ctx
        return ctx

    async def _complete(self, scope: dict[str, Any], receive: Any, send: Any, endpoint: str) -> int:
        headers = headers_of(scope)
        require_json(headers)
        raw = await read_body(receive, headers, self._max_body)
        ctx = self._context(scope, headers, endpoint, raw)
        try:
            result = await unless_disconnected(receive, self._pipeline.run(ctx))
        except ClientDisconnected as exc:
            return exc.status  # nobody is left to answer; the upstream call was cancelled
        if isinstance(result, Reply):
            await send_bytes(send, result.status, result.body, result.content_type, ctx.headers)
            return result.status
        provider = ctx.provider or "unknown"
        await relay(send, receive, result, lambda exc: self._upstream_failed(provider, exc), ctx.headers)
        return 200

    def _upstream_failed(self, provider: str, exc: UpstreamError) -> None:
        self._pipeline.count_upstream_error(provider, exc)

    def _model_object(self, model: str, owner: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": self._created, "owned_by": owner}

    async def _models(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        models = await self._pipeline.models(self._context(scope, headers_of(scope), "models", b""))
        data = [self._model_object(model, owner) for model, owner in sorted(models.items())]
        await send_bytes(send, 200, orjson.dumps({"object": "list", "data": data}), "application/json")
        return 200

    async def _model(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        model = scope["path"].removeprefix("/v1/models/")
        models = await self._pipeline.models(self._context(scope, headers_of(scope), "models", b""))
        if model not in models:
            raise ModelNotFound(f"The model '{model}' does not exist or your project may not use it.", param="model")
        await send_bytes(send, 200, orjson.dumps(self._model_object(model, models[model])), "application/json")
        return 200
