"""What the request path writes to the audit log: who, which project and model, where it went, what came
of it, and keyed hashes of what was sent and received — never the content itself.

Entries: ``request.forwarded`` (committed before the request leaves for the upstream),
``request.completed`` (committed before the answer ends), ``request.refused`` (Bastion said no) and
``request.failed`` (the upstream failed or refused). A member's entries also carry their subject
reference in ``subjects`` (``audit/subjects.py``), which a GDPR erasure makes impossible to compute.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any

from bastion.audit import subjects
from bastion.audit.log import Record
from bastion.errors import UpstreamError

if TYPE_CHECKING:
    from bastion.audit.keys import AuditKeys
    from bastion.audit.log import AuditLog
    from bastion.errors import BastionError
    from bastion.gateway.context import RequestContext


def actor_of(ctx: RequestContext) -> str:
    """``member:mem_…`` (an id, not an address), ``service_account:NAME``, ``project:NAME`` or ``anonymous``."""
    if ctx.caller is None:
        return "anonymous"
    principal = ctx.caller.principal
    return f"{principal.kind}:{principal.id if principal.kind == 'member' else principal.name}"


class Recorder:
    def __init__(self, log: AuditLog, keys: AuditKeys) -> None:
        self._log = log
        self._keys = keys

    async def project_key(self, project: str) -> bytes:
        """The project's HMAC key (from memory after first use)."""
        scope = f"project:{project}"
        cached = self._keys.cached(scope)
        return cached if cached is not None else await asyncio.to_thread(self._keys.key, scope)

    async def subject(self, ctx: RequestContext) -> list[str]:
        """The calling member's subject reference (from memory after first use); none for other callers."""
        if ctx.caller is None or ctx.caller.principal.kind != "member":
            return []
        address = ctx.caller.principal.name
        found = subjects.cached_ref(self._keys, address)
        if found is None:
            found = await asyncio.to_thread(subjects.ref, self._keys, address)
        return [found] if found is not None else []

    async def forwarded(self, ctx: RequestContext) -> None:
        """One per attempt: where the data goes (provider, region, residency) and why that provider may take it."""
        fields = {**await self._hashes(ctx), **_data(ctx)}
        if ctx.route is not None:
            fields["route"] = ctx.route.to_json()
        if ctx.routing is not None:
            fields["routing"] = ctx.routing
        await self._append(ctx, "request.forwarded", None, fields)

    async def retried(self, ctx: RequestContext, exc: UpstreamError) -> None:
        """An attempt failed and the request moves on to another (or the same) route."""
        await self._append(ctx, "request.retried", exc.status, {"reason": exc.code, "decision": "retry"})

    async def refused(self, ctx: RequestContext, exc: BastionError) -> None:
        failed = isinstance(exc, UpstreamError) and ctx.provider is not None
        fields = {
            **await self._hashes(ctx),
            **_data(ctx),
            "reason": exc.code,
            "decision": "allow" if failed else "refuse",
        }
        await self._append(ctx, "request.failed" if failed else "request.refused", exc.status, fields)

    async def completed(self, ctx: RequestContext, status: int, digest: str | None, usage: Any) -> None:
        fields: dict[str, Any] = {"response_hash": digest, "tokens": _tokens(usage)}
        await self._append(ctx, "request.completed", status, fields)

    async def stream_failed(self, ctx: RequestContext, exc: UpstreamError, digest: str | None) -> None:
        fields = {"reason": exc.code, "decision": "allow", "response_hash": digest}
        await self._append(ctx, "request.failed", exc.status, fields)

    async def hasher(self, ctx: RequestContext) -> hmac.HMAC | None:
        if ctx.project is None:
            return None
        return hmac.new(await self.project_key(ctx.project), digestmod=hashlib.sha256)

    async def _hashes(self, ctx: RequestContext) -> dict[str, Any]:
        if ctx.project is None or not ctx.raw:
            return {}
        key = await self.project_key(ctx.project)
        return {"request_hash": hmac.new(key, ctx.raw, hashlib.sha256).hexdigest()}

    async def _append(self, ctx: RequestContext, action: str, status: int | None, fields: dict[str, Any]) -> None:
        caller = ctx.caller
        described = {
            "endpoint": ctx.endpoint,
            "key": ctx.key_prefix,
            "environment": caller.project.environment if caller else None,
            "model": ctx.model or None,
            "provider": ctx.provider,
            "stream": ctx.stream,
            "client_ip": str(ctx.client_ip) if ctx.client_ip else None,
            "latency_ms": round((time.perf_counter() - ctx.started) * 1000, 3),
            "subjects": await self.subject(ctx),
            **fields,
        }
        record = Record(action, actor_of(ctx), ctx.project, status, ctx.request_id, described)
        ctx.audit_seq = await self._log.append(record)


def _data(ctx: RequestContext) -> dict[str, Any]:
    """The data decision (class, tags, finding counts and actions by type), once inspection has run."""
    return {"data": ctx.inspected.decision.to_json()} if ctx.inspected is not None else {}


def _tokens(usage: Any) -> dict[str, int] | None:
    if not isinstance(usage, dict):
        return None
    names = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {name: usage[name] for name in names if isinstance(usage.get(name), int)}
