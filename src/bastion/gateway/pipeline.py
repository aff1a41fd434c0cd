"""The request path, in the order of DESIGN.md §2, in one place.

Each step is one call to a unit tested on its own: authenticate (key, expiry, age), authorise
(source address, permission), read the body (parsed and checked only once a caller is known),
allow the model (project allowlist), limit (rate limits and budgets), inspect, decide and protect
(the project's data policy), route (router), forward (provider), restore and mask the answer, and
settle (reconcile the token estimate with the real usage).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from bastion.errors import (
    AuthenticationError,
    BastionError,
    IPNotAllowed,
    KeyExpired,
    ModelNotAllowed,
    NoEligibleUpstream,
    PermissionDenied,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from bastion.gateway.request import CHECKS, parse_body
from bastion.gateway.sse import data_of
from bastion.identity.keys import KeyRecord
from bastion.identity.network import within
from bastion.policy.data import requested_class
from bastion.policy.limits import Limits, Scope
from bastion.routing.eligibility import requirement
from bastion.routing.providers.base import Call, Reply
from bastion.routing.retry import RetryPolicy, endpoint_failed

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bastion.gateway.context import RequestContext
    from bastion.gateway.protection import Inspected, Protection
    from bastion.gateway.record import Recorder
    from bastion.identity.cache import CallerCache
    from bastion.identity.keys import Caller
    from bastion.identity.model import Project
    from bastion.identity.usage import KeyUsage
    from bastion.obs.metrics import Metrics
    from bastion.policy.estimate import TokenEstimator
    from bastion.policy.limits import Limiter
    from bastion.routing.router import Plan, Route, Router

Result = Reply | AsyncGenerator[bytes, None]


class Pipeline:
    def __init__(
        self,
        *,
        callers: CallerCache,
        digest: Callable[[str], str],
        router: Router,
        limiter: Limiter,
        estimator: TokenEstimator,
        usage: KeyUsage,
        metrics: Metrics,
        recorder: Recorder,
        protection: Protection,
        retry: RetryPolicy | None = None,
        ip_limits: Limits | None = None,
        clock: Callable[[], datetime] | None = None,
        sync_routes: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._recorder = recorder
        self._protection = protection
        self._retry = retry or RetryPolicy()
        self._callers = callers
        self._digest = digest
        self._router = router
        self._limiter = limiter
        self._estimator = estimator
        self._usage = usage
        self._metrics = metrics
        self._ip_limits = ip_limits or Limits()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._settling: set[asyncio.Task[None]] = set()
        self._sync_routes = sync_routes or _unchanged

    async def run(self, ctx: RequestContext) -> Result:
        """Carry one chat or embeddings request through every step; return the reply or its event stream.

        Every outcome is recorded: a refusal or failure here, the completion in :meth:`finish`.
        """
        try:
            result = await self._steps(ctx)
        except BastionError as exc:
            await self._recorder.refused(ctx, exc)
            raise
        return await self.finish(ctx, result)

    async def refused(self, ctx: RequestContext, exc: BastionError) -> None:
        """Record a refusal decided outside :meth:`run` (the admin API's authentication)."""
        await self._recorder.refused(ctx, exc)

    async def _steps(self, ctx: RequestContext) -> Result:
        ctx.caller = await self.authenticate(ctx)
        self.authorise(ctx, ctx.endpoint)
        ctx.body = parse_body(ctx.raw)
        ctx.model, ctx.stream = CHECKS[ctx.endpoint](ctx.body)
        self.allow_model(ctx.caller, ctx.model)
        await self.limit(ctx)
        await self.protect(ctx, ctx.caller.project)
        plan = await self.route(ctx, ctx.caller.project)
        return await self.forward(ctx, plan)

    async def models(self, ctx: RequestContext) -> dict[str, str]:
        """The models the caller's project may use, with the provider that serves each."""
        try:
            ctx.caller = await self.authenticate(ctx)
            self.authorise(ctx, "models.read")
        except BastionError as exc:
            await self._recorder.refused(ctx, exc)
            raise
        allowed = ctx.caller.project.models
        await self._sync_routes()
        await self._recorder.completed(ctx, 200, None, None)
        return {model: owner for model, owner in self._router.models().items() if allowed is None or model in allowed}

    async def authenticate(self, ctx: RequestContext) -> Caller:
        if not ctx.api_key:
            raise AuthenticationError(
                "You didn't provide an API key; send it as 'Authorization: Bearer <key>' (or an 'api-key' header)."
            )
        caller = await self._callers.get(self._digest(ctx.api_key))
        now = self._clock()
        if isinstance(caller, KeyRecord):
            caller.check(now)  # revoked or expired: say so
            raise AuthenticationError(f"Key {caller.prefix}… no longer has a project or a holder; create a new key.")
        if caller is None:
            raise AuthenticationError("The API key is not valid; check it, or create one with 'bastion keys create'.")
        caller.key.check(now)
        self._check_age(ctx, caller, now)
        self._usage.record(caller.key.id, now)
        return caller

    def _check_age(self, ctx: RequestContext, caller: Caller, now: datetime) -> None:
        max_age = caller.project.key_max_age
        if max_age is None or now - caller.key.created_at <= max_age:
            return
        message = (
            f"Key {caller.key.prefix}… is older than project '{caller.project.name}' allows ({max_age.days}d); "
            f"rotate it with 'bastion keys rotate {caller.key.id}'."
        )
        if caller.project.key_over_age == "refuse":
            raise KeyExpired(message)
        ctx.headers.append((b"x-bastion-warning", message.encode()))

    def authorise(self, ctx: RequestContext, permission: str) -> None:
        """The source address must be in the principal's allowlist, and the principal must hold ``permission``."""
        principal = ctx.caller.principal if ctx.caller else None
        if principal is None:
            raise AuthenticationError("The request is not authenticated.")
        if principal.networks and (ctx.client_ip is None or not within(ctx.client_ip, principal.networks)):
            raise IPNotAllowed(
                f"Requests from {ctx.client_ip} are not allowed for {principal.kind.replace('_', ' ')} "
                f"'{principal.name}'; add the address to its ip_allowlist."
            )
        if permission not in principal.permissions:
            raise PermissionDenied(
                f"{principal.kind.replace('_', ' ').capitalize()} '{principal.name}' lacks the permission "
                f"'{permission}'; grant it in its permissions."
            )

    def allow_model(self, caller: Caller, model: str) -> None:
        allowed = caller.project.models
        if allowed is not None and model not in allowed:
            raise ModelNotAllowed(
                f"Project '{caller.project.name}' may not use the model '{model}'; GET /v1/models lists the models "
                "it may use.",
                param="model",
            )

    async def limit(self, ctx: RequestContext) -> None:
        """Charge one request and the token estimate to every limited scope, or refuse with 429."""
        scopes = _scopes(ctx, self._ip_limits)
        if not scopes:
            return
        metered = any(scope.limits.tpm or scope.limits.daily_tokens for scope in scopes)
        tokens = self._estimator.estimate(ctx.endpoint, ctx.body) if metered else 0
        decision = await self._limiter.acquire(scopes, tokens=tokens)
        if not decision.allowed:
            raise RateLimited(decision.message(), headers=decision.headers())
        ctx.headers.extend(decision.headers())
        if metered:
            ctx.charged = (tuple(scopes), tokens, decision.day)

    async def protect(self, ctx: RequestContext, project: Project) -> None:
        """Inspect every part of the request, classify it, and apply the project's data policy (or refuse)."""
        inspected = await self._protection.inspect(ctx.endpoint, ctx.body, project, requested_class(ctx.data_class))
        ctx.inspected = inspected
        ctx.headers.append((b"x-bastion-data-class", inspected.decision.data_class.encode()))
        refusal = inspected.decision.refusal()
        if refusal is not None:
            raise refusal

    async def route(self, ctx: RequestContext, project: Project) -> Plan:
        """The eligible routes for this request's data, best first (or :class:`NoEligibleUpstream`)."""
        decision = ctx.inspected.decision if ctx.inspected else None
        data_class, tags = (decision.data_class, decision.tags) if decision else (project.data_policy.default_class, ())
        needed = requirement(project.residency, project.data_policy.require, data_class, tags)
        await self._sync_routes()
        plan = await self._router.plan(ctx.model, needed, project=project.name)
        ctx.routing = plan.reasoning
        return plan

    async def forward(self, ctx: RequestContext, plan: Plan) -> Result:
        """Try the plan's routes in order, moving on after a retryable failure, within the retry budget.

        Each attempt is recorded (``request.forwarded``, durable before anything leaves) under the one
        request id. A stream moves on only until its first event: after that the client has it.
        """
        attempts = self._retry.start()
        routes = plan.routes
        for position in range(attempts.policy.attempts):
            route = await self._admitted(routes, position)
            if route is None:
                break
            ctx.provider, ctx.route = route.provider.name, route
            await self._recorder.forwarded(ctx)  # durable before anything leaves for the upstream
            started = time.perf_counter()
            try:
                result = await self._attempt(ctx, route, attempts.remaining())
            except UpstreamError as exc:
                self._router.record(route, not endpoint_failed(exc), time.perf_counter() - started)
                self.count_upstream_error(route.provider.name, exc)
                same = routes[(position + 1) % len(routes)] is route
                wait = attempts.pause(exc, same_endpoint=same)
                if wait is None:
                    raise
                await self._recorder.retried(ctx, exc)
                if same:  # another endpoint is tried at once; the same one after the backoff (or its Retry-After)
                    await asyncio.sleep(wait)
                continue
            self._router.record(route, True, time.perf_counter() - started)
            return result
        raise NoEligibleUpstream(
            f"No eligible provider for model '{ctx.model}' is admitting requests now (every circuit is open); "
            "try again shortly."
        )

    async def _admitted(self, routes: tuple[Route, ...], position: int) -> Route | None:
        """The first route from ``position`` on (wrapping round) whose breaker admits a request now."""
        for offset in range(len(routes)):
            route = routes[(position + offset) % len(routes)]
            if await self._router.admit(route):
                return route
        return None

    async def _attempt(self, ctx: RequestContext, route: Route, budget: float) -> Result:
        """One call to one route, within what is left of the budget; a stream returns once its first event is in."""
        try:
            async with asyncio.timeout(budget):
                result = await self._call(ctx, route)
                if isinstance(result, Reply):
                    return result
                return await _first_event_in(result)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"The upstream provider '{route.provider.name}' did not answer within the routing budget; try again "
                "later."
            ) from exc

    async def _call(self, ctx: RequestContext, route: Route) -> Result:
        raw, body = ctx.raw, ctx.body
        protected = ctx.inspected.body if ctx.inspected else None
        if protected is not None:
            body = protected
        if route.upstream_model != ctx.model:
            body = {**body, "model": route.upstream_model}
        if body is not ctx.body:
            raw = orjson.dumps(body)
        call = Call(ctx.endpoint, route.upstream_model, body, raw, ctx.stream, ctx.request_id)
        if ctx.stream:
            return await route.provider.open_stream(call)
        return await route.provider.send(call)

    async def finish(self, ctx: RequestContext, result: Result) -> Result:
        """Reconcile charged tokens with the upstream's ``usage`` and record the completion, before the answer ends."""
        if isinstance(result, Reply):
            answer = self._answer(ctx)
            if answer is not None and ctx.endpoint == "chat.completions":
                result = Reply(result.status, answer.reply(result.body), result.content_type)
            usage = _usage(result.body)
            self._reconcile(ctx, usage.get("total_tokens") if usage else None)
            hasher = await self._recorder.hasher(ctx)
            digest = None
            if hasher is not None:
                hasher.update(result.body)
                digest = hasher.hexdigest()
            await self._recorder.completed(ctx, result.status, digest, usage)
            return result
        answer = self._answer(ctx)
        if answer is not None and answer.rewrites_answer:
            result = answer.events(result)
        return self._watched(ctx, result)

    def _answer(self, ctx: RequestContext) -> Inspected | None:
        """How the answer is restored and masked; the ``echo`` model's answer shows what was sent, unrestored."""
        inspected = ctx.inspected
        if inspected is not None and ctx.route is not None and ctx.route.provider.config.kind == "echo":
            return inspected.as_sent()
        return inspected

    async def _watched(self, ctx: RequestContext, events: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        """Relay events while hashing them and looking for ``usage``; record the outcome before the stream ends."""
        usage: dict[str, Any] | None = None
        hasher = await self._recorder.hasher(ctx)
        try:
            async for event in events:
                if b'"usage"' in event:
                    usage = _usage(data_of(event) or b"") or usage
                if hasher is not None:
                    hasher.update(event)
                yield event
        except UpstreamError as exc:
            if ctx.route is not None:
                self._router.record(ctx.route, False, 0.0)  # broke off after the first event: a failure too
            await self._recorder.stream_failed(ctx, exc, hasher.hexdigest() if hasher else None)
            raise
        finally:
            await events.aclose()
            self._reconcile(ctx, usage.get("total_tokens") if usage else None)
        await self._recorder.completed(ctx, 200, hasher.hexdigest() if hasher else None, usage)

    def _reconcile(self, ctx: RequestContext, used: Any) -> None:
        if not isinstance(used, int) or ctx.charged is None:
            return
        scopes, estimate, day = ctx.charged
        task = asyncio.get_running_loop().create_task(self._limiter.reconcile(scopes, used - estimate, day=day))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def drain(self) -> None:
        """Wait for pending reconciliations (at shutdown)."""
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    @property
    def router(self) -> Router:
        return self._router

    def count_upstream_error(self, provider: str, exc: UpstreamError) -> None:
        self._metrics.upstream_errors.labels(provider, str(exc.status)).inc()


async def _unchanged() -> None:
    """The routes of a gateway without a catalog to follow: those it started with."""


async def _first_event_in(events: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    """Wait for the stream's first event (a failure before it can still move to another route), then hand
    back a stream that starts with it."""
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await events.aclose()
        raise
    return _prefixed(first, events)


async def _prefixed(first: bytes | None, events: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    try:
        if first is not None:
            yield first
        async for event in events:
            yield event
    finally:
        await events.aclose()


def _scopes(ctx: RequestContext, ip_limits: Limits) -> list[Scope]:
    caller = ctx.caller
    if caller is None:
        return []
    candidates = [Scope("key", caller.key.prefix, caller.project.key_limits)]
    if caller.principal.kind != "project":
        candidates.append(Scope(caller.principal.kind, caller.principal.name, caller.principal.limits))
    candidates.append(Scope("project", caller.project.name, caller.project.limits))
    if ctx.client_ip is not None and _limited(ip_limits):  # str() of an address costs more than the check
        candidates.append(Scope("ip", str(ctx.client_ip), ip_limits))
    return [scope for scope in candidates if _limited(scope.limits)]


def _limited(limits: Limits) -> bool:
    return bool(limits.rpm or limits.tpm or limits.daily_tokens)


def _usage(data: bytes) -> dict[str, Any] | None:
    """The ``usage`` object of a JSON reply or event, if it has one."""
    try:
        body: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    usage = body.get("usage") if isinstance(body, dict) else None
    return usage if isinstance(usage, dict) else None
