"""Who calls the admin API: a member's key, resolved exactly as on ``/v1``, rate limited per key.

The key goes through the gateway's own :meth:`Pipeline.authenticate` (so revoked, expired and
over-age keys are refused with the same codes, from the very next request) and the holder's source
IP allowlist. Each key may make ``server.admin_rpm`` admin requests a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bastion.api.http import api_key
from bastion.errors import BastionError, IPNotAllowed, RateLimited
from bastion.gateway.context import RequestContext
from bastion.identity import rbac
from bastion.identity.network import client_address, within
from bastion.policy.limits import Limits, Scope

if TYPE_CHECKING:
    from bastion.compliance.source import Source
    from bastion.gateway.pipeline import Pipeline
    from bastion.identity.keys import Caller, KeyService
    from bastion.identity.model import IPNetwork, Principal
    from bastion.identity.network import IPAddress
    from bastion.identity.org import OrgService
    from bastion.policy.limits import Limiter
    from bastion.routing.catalog import LiveRouting


@dataclass(frozen=True)
class Control:
    """What the admin API works with; the runtime builds it once."""

    org: OrgService
    keys: KeyService
    pipeline: Pipeline
    limiter: Limiter
    admin_rpm: int
    routing: LiveRouting  # providers and vendors, and the router that follows them
    trusted: tuple[IPNetwork, ...] = ()
    reports: Source | None = None  # what the compliance reports read


@dataclass(frozen=True)
class Admin:
    """An authenticated member acting with a key of one project (the only project it can see)."""

    control: Control
    caller: Caller

    @property
    def principal(self) -> Principal:
        return self.caller.principal

    @property
    def project(self) -> str:
        return self.caller.project.name

    @property
    def email(self) -> str:
        return self.caller.principal.name

    @property
    def actor(self) -> str:
        return f"member:{self.email}"

    def authorize(self, action: str) -> None:
        rbac.authorize(self.principal, action, self.project)


def control_of(request: Request) -> Control:
    control: Control = request.app.state.control
    return control


def context_of(request: Request, control: Control) -> RequestContext:
    """The request as the pipeline sees it (key, client address); the access log reads it too."""
    headers: dict[bytes, bytes] = dict(request.scope["headers"])
    forwarded = headers.get(b"x-forwarded-for")
    peer = request.client.host if request.client else None
    address = client_address(peer, forwarded.decode("latin-1") if forwarded else None, control.trusted)
    ctx = RequestContext(request.scope.get("bastion.request_id", ""), "admin", b"", api_key(headers), address)
    request.scope["bastion.context"] = ctx
    return ctx


def check_network(principal: Principal, address: IPAddress | None) -> None:
    if principal.networks and (address is None or not within(address, principal.networks)):
        raise IPNotAllowed(
            f"Requests from {address} are not allowed for {principal.kind.replace('_', ' ')} "
            f"'{principal.name}'; add the address to its ip_allowlist."
        )


async def limit(control: Control, scope: Scope, response: Response) -> None:
    """Charge one admin request to ``scope``, or refuse with 429 and ``Retry-After``."""
    decision = await control.limiter.acquire([scope])
    if not decision.allowed:
        raise RateLimited(decision.message(), headers=decision.headers())
    for name, value in decision.headers():
        response.headers.append(name.decode("latin-1"), value.decode("latin-1"))


# Declares the scheme in OpenAPI (the docs page's "Authorize" button); the key itself is read below.
BEARER = HTTPBearer(auto_error=False, description="A member's Bastion key (or send it as the 'api-key' header).")


async def current_admin(
    request: Request, response: Response, _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Admin:
    """The dependency of every authenticated route: authenticate, check the address, limit, members only."""
    control = control_of(request)
    ctx = context_of(request, control)
    try:
        caller = await control.pipeline.authenticate(ctx)
        ctx.caller = caller
        check_network(caller.principal, ctx.client_ip)
        await limit(control, Scope("admin_key", caller.key.prefix, Limits(rpm=control.admin_rpm)), response)
        rbac.require_member(caller.principal)
    except BastionError as exc:
        await control.pipeline.refused(ctx, exc)  # refusals of the control plane are audited like any other
        raise
    for name, value in ctx.headers:  # e.g. the warning that a key is over its project's maximum age
        response.headers.append(name.decode("latin-1"), value.decode("latin-1"))
    return Admin(control, caller)


async def limit_anonymous(request: Request, response: Response) -> None:
    """Routes without a key (accepting an invite) are limited per source address instead."""
    control = control_of(request)
    address = context_of(request, control).client_ip
    if address is not None:
        await limit(control, Scope("admin_ip", str(address), Limits(rpm=control.admin_rpm)), response)


AdminDep = Annotated[Admin, Depends(current_admin)]
ControlDep = Annotated[Control, Depends(control_of)]
