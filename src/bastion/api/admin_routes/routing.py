"""Routing over the admin API: ``GET /admin/v1/providers`` (with each endpoint's circuit) and
``GET /admin/v1/vendors`` (with each attestation's standing).

Read-only: providers and vendors are declared in ``bastion.yaml`` (they name credentials by environment
variable, which only the host can set), and a gateway reads them at start. Any member may read them
(``org.read``): they say where data may go, and hold no secret.

FastAPI reads these handlers' signatures at runtime, so this module does not postpone annotations.
"""

from datetime import UTC, datetime
from typing import Any

from bastion.api.admin_routes.caller import AdminDep
from bastion.api.admin_routes.route import Route, listing
from bastion.errors import NotFound
from bastion.routing.eligibility import EXPIRY_NOTICE
from bastion.routing.providers.base import Provider


def _provider_json(provider: Provider, circuit: dict[str, Any] | None) -> dict[str, Any]:
    config = provider.config
    described = config.model_dump(mode="json", exclude={"residency"})
    return {**described, "residency": config.residence, "circuit": circuit}


def list_providers(admin: AdminDep) -> dict[str, Any]:
    """Every upstream endpoint, by priority, with its residency, vendor, models and circuit state."""
    admin.authorize("org.read")
    router = admin.control.pipeline.router
    circuits = router.health.snapshot()
    return listing([_provider_json(p, circuits.get(p.name)) for p in router.providers])


def get_provider(name: str, admin: AdminDep) -> dict[str, Any]:
    """One upstream endpoint."""
    admin.authorize("org.read")
    router = admin.control.pipeline.router
    for provider in router.providers:
        if provider.name == name:
            return _provider_json(provider, router.health.snapshot().get(name))
    raise NotFound(f"No provider is named '{name}'; GET /admin/v1/providers lists them.")


def list_vendors(admin: AdminDep) -> dict[str, Any]:
    """Every vendor with its attestations: valid, expiring within 30 days, or expired."""
    admin.authorize("org.read")
    today = datetime.now(UTC).date()
    vendors = admin.control.pipeline.router.vendors.values()
    items = []
    for vendor in vendors:
        attestations = []
        for item in vendor.attestations:
            left = (item.expires - today).days
            status = "expired" if left < 0 else ("expiring" if item.expires - today <= EXPIRY_NOTICE else "valid")
            attestations.append(
                {"type": item.type, "expires": item.expires.isoformat(), "days_left": left, "status": status}
            )
        items.append({"name": vendor.name, "attestations": attestations})
    return listing(items)


ROUTES = (
    Route("GET", "/providers", list_providers, tag="routing"),
    Route("GET", "/providers/{name}", get_provider, tag="routing"),
    Route("GET", "/vendors", list_vendors, tag="routing"),
)
