"""Routing over the admin API: providers (with each endpoint's circuit) and vendors (with each
attestation's standing).

Any member may read them (``org.read``): they say where data may go, and hold no secret. Owners and
admins (``routing.write``) may add, change and remove providers and vendors; those that ``bastion.yaml``
declares stay as the file says (``409``). A stored provider names its key by environment variable, like
the file's, so the variable must be set on the gateways. Every change is an admin event in the audit
log, and every replica routes by it from its next request.

FastAPI reads these handlers' signatures at runtime, so this module does not postpone annotations.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bastion.api.admin_routes.bodies import ProviderPatch, VendorPatch, merged
from bastion.api.admin_routes.caller import Admin, AdminDep
from bastion.api.admin_routes.route import Route, listing
from bastion.config import AttestationConfig, ProviderConfig, VendorConfig
from bastion.routing.catalog import Entries, Kind, LiveRouting, Spec
from bastion.routing.eligibility import EXPIRY_NOTICE


def _routing(admin: Admin) -> LiveRouting:
    return admin.control.routing


def _provider_json(config: ProviderConfig, entries: Entries, routing: LiveRouting) -> dict[str, Any]:
    described = config.model_dump(mode="json", exclude={"residency"})
    active = any(provider.name == config.name for provider in routing.router.providers)
    return {
        **described,
        "residency": config.residence,
        "source": entries.source("provider", config.name),
        "active": active,  # False: this gateway lacks the provider's key (see its log)
        "circuit": routing.router.health.snapshot().get(config.name) if active else None,
    }


def _vendor_json(config: VendorConfig, entries: Entries) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    return {
        "name": config.name,
        "source": entries.source("vendor", config.name),
        "attestations": [_attestation_json(item, (item.expires - today).days) for item in config.attestations],
    }


def _attestation_json(item: AttestationConfig, left: int) -> dict[str, Any]:
    status = "expired" if left < 0 else ("expiring" if left <= EXPIRY_NOTICE.days else "valid")
    evidence = item.evidence.model_dump(mode="json") if item.evidence else None
    return {
        "type": item.type,
        "expires": item.expires.isoformat(),
        "days_left": left,
        "status": status,
        "evidence": evidence,
    }


def _one(admin: Admin, kind: Kind, name: str) -> dict[str, Any]:
    routing = _routing(admin)
    entries = routing.catalog.load()
    spec = entries.find(kind, name)
    if isinstance(spec, ProviderConfig):
        return _provider_json(spec, entries, routing)
    return _vendor_json(spec, entries)


async def _apply(admin: Admin, change: Callable[[], Spec]) -> None:
    """Make ``change`` in the store, then route by it on this gateway at once; the other replicas follow on
    their next request, through the change feed."""
    routing = _routing(admin)
    await asyncio.to_thread(change)
    routing.stale()
    await routing.sync()


async def _create(admin: Admin, spec: Spec) -> dict[str, Any]:
    admin.authorize("routing.write")
    await _apply(admin, partial(_routing(admin).catalog.create, admin.actor, spec))
    kind: Kind = "provider" if isinstance(spec, ProviderConfig) else "vendor"
    return await asyncio.to_thread(_one, admin, kind, spec.name)


async def _update(admin: Admin, kind: Kind, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    """Lay ``patch`` over the entry (objects merge field by field; ``models`` and lists are replaced whole)."""
    admin.authorize("routing.write")
    catalog = _routing(admin).catalog
    current = (await asyncio.to_thread(catalog.get, kind, name)).model_dump(mode="json")
    if "models" in patch:
        current.pop("models")
    spec: Spec = merged(ProviderConfig, current, patch) if kind == "provider" else merged(VendorConfig, current, patch)
    await _apply(admin, partial(catalog.update, admin.actor, spec))
    return await asyncio.to_thread(_one, admin, kind, name)


async def _delete(admin: Admin, kind: Kind, name: str) -> dict[str, Any]:
    admin.authorize("routing.write")
    await _apply(admin, partial(_routing(admin).catalog.delete, admin.actor, kind, name))
    return {"name": name, "deleted": True}


def list_providers(admin: AdminDep) -> dict[str, Any]:
    """Every upstream endpoint, by priority, with its residency, vendor, models, source and circuit state."""
    admin.authorize("org.read")
    routing = _routing(admin)
    entries = routing.catalog.load()
    providers = sorted(entries.providers, key=lambda config: config.priority)
    return listing([_provider_json(config, entries, routing) for config in providers])


def get_provider(name: str, admin: AdminDep) -> dict[str, Any]:
    """One upstream endpoint."""
    admin.authorize("org.read")
    return _one(admin, "provider", name)


async def create_provider(body: ProviderConfig, admin: AdminDep) -> dict[str, Any]:
    """Add an upstream endpoint, spelled as in ``bastion.yaml``; its ``api_key_env`` must be set on the gateway."""
    return await _create(admin, body)


async def update_provider(name: str, body: ProviderPatch, admin: AdminDep) -> dict[str, Any]:
    """Change the fields the body names; ``timeouts`` and ``breaker`` merge field by field, ``models`` is
    replaced whole."""
    return await _update(admin, "provider", name, body.model_dump(exclude_unset=True))


async def delete_provider(name: str, admin: AdminDep) -> dict[str, Any]:
    """Remove an endpoint added over the admin API; requests in flight on it finish."""
    return await _delete(admin, "provider", name)


def list_vendors(admin: AdminDep) -> dict[str, Any]:
    """Every vendor with its attestations: valid, expiring within 30 days, or expired."""
    admin.authorize("org.read")
    entries = _routing(admin).catalog.load()
    return listing([_vendor_json(vendor, entries) for vendor in entries.vendors])


def get_vendor(name: str, admin: AdminDep) -> dict[str, Any]:
    admin.authorize("org.read")
    return _one(admin, "vendor", name)


async def create_vendor(body: VendorConfig, admin: AdminDep) -> dict[str, Any]:
    """Add a vendor with its attestations (type, expiry, evidence document and its SHA-256)."""
    return await _create(admin, body)


async def update_vendor(name: str, body: VendorPatch, admin: AdminDep) -> dict[str, Any]:
    """Replace the vendor's attestations (a renewal, a new document, a lapsed contract)."""
    return await _update(admin, "vendor", name, body.model_dump(mode="json", exclude_unset=True))


async def delete_vendor(name: str, admin: AdminDep) -> dict[str, Any]:
    """Remove a vendor added over the admin API that no provider names."""
    return await _delete(admin, "vendor", name)


PROVIDER = "/providers/{name}"
VENDOR = "/vendors/{name}"
ROUTES = (
    Route("GET", "/providers", list_providers, tag="routing"),
    Route("POST", "/providers", create_provider, 201, tag="routing"),
    Route("GET", PROVIDER, get_provider, tag="routing"),
    Route("PATCH", PROVIDER, update_provider, tag="routing"),
    Route("DELETE", PROVIDER, delete_provider, tag="routing"),
    Route("GET", "/vendors", list_vendors, tag="routing"),
    Route("POST", "/vendors", create_vendor, 201, tag="routing"),
    Route("GET", VENDOR, get_vendor, tag="routing"),
    Route("PATCH", VENDOR, update_vendor, tag="routing"),
    Route("DELETE", VENDOR, delete_vendor, tag="routing"),
)
