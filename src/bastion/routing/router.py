"""The router: which providers may serve a request for a model, and in which order to try them.

Eligibility (residency, attestations) decides who may; health only removes an endpoint whose circuit
will not admit a request now. Among the rest: lower ``priority`` first; within one priority, an
endpoint whose half-open probe is due first (so a recovered endpoint gets traffic back; if the probe
fails the request fails over), then the others in a weighted random order that favours fast
endpoints and those without recent failures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import TYPE_CHECKING, Any

from bastion.errors import ModelNotFound
from bastion.routing.breaker import CLOSED
from bastion.routing.eligibility import eligibility
from bastion.routing.health import MemoryHealth, thresholds_from

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from bastion.routing.eligibility import Requirement, Vendor
    from bastion.routing.health import Health, View
    from bastion.routing.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    upstream_model: str

    def to_json(self) -> dict[str, Any]:
        config = self.provider.config
        return {"provider": self.provider.name, "region": config.region, "residency": config.residence}


@dataclass(frozen=True, slots=True)
class Plan:
    """The routes one request may take, best first, and the reasoning the audit record keeps."""

    model: str
    routes: tuple[Route, ...]
    reasoning: dict[str, Any]


class Router:
    def __init__(
        self,
        providers: Iterable[Provider],
        *,
        vendors: Mapping[str, Vendor] | None = None,
        health: Health | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.providers: list[Provider] = []
        self.vendors: dict[str, Vendor] = {}
        self._routes: dict[str, list[Route]] = {}
        self.update(providers, vendors or {})
        self.health = health or MemoryHealth(thresholds_from(p.config for p in self.providers))
        self._clock = clock or (lambda: datetime.now(UTC))
        self._random = rng or random.SystemRandom()

    def update(self, providers: Iterable[Provider], vendors: Mapping[str, Vendor]) -> None:
        """Route by these providers and vendors from now on; plans already made keep their routes."""
        ordered = sorted(providers, key=lambda provider: provider.config.priority)
        routes: dict[str, list[Route]] = {}
        for provider in ordered:
            for ours, theirs in provider.config.models.items():
                routes.setdefault(ours, []).append(Route(provider, theirs))
        self.providers, self.vendors, self._routes = ordered, dict(vendors), routes

    def models(self) -> dict[str, str]:
        """Each model Bastion serves, with the provider that serves it first."""
        return {model: routes[0].provider.name for model, routes in self._routes.items()}

    def routes(self, model: str) -> list[Route]:
        """Every route to ``model`` by priority, eligible or not; :class:`ModelNotFound` if nobody serves it."""
        routes = self._routes.get(model)
        if not routes:
            raise ModelNotFound(
                f"The model '{model}' is not served by any configured provider; GET /v1/models lists the models "
                "you can use.",
                param="model",
            )
        return routes

    async def plan(self, model: str, requirement: Requirement, *, project: str) -> Plan:
        """The routes a request of ``project`` for ``model`` may take, best first.

        Raises :class:`NoEligibleUpstream` naming the rule that excluded each provider when none may,
        and :class:`ModelNotFound` when no provider serves the model.
        """
        routes = self.routes(model)
        views = await self.health.views([route.provider.name for route in routes])
        circuits = {name: view.state for name, view in views.items() if not view.ready}
        today = self._clock().astimezone(UTC).date()
        result = eligibility([r.provider.config for r in routes], requirement, self.vendors, today, circuits)
        if not result.eligible:
            raise result.refusal(model, project)
        allowed = {config.name for config in result.eligible}
        ordered = self._order([route for route in routes if route.provider.name in allowed], views)
        reasoning = {**result.to_json(), "eligible": [route.to_json() for route in ordered]}
        return Plan(model, tuple(ordered), reasoning)

    async def admit(self, route: Route) -> bool:
        """Ask the endpoint's breaker right before trying ``route``; False means skip to the next route."""
        return await self.health.admit(route.provider.name)

    def record(self, route: Route, ok: bool, latency_s: float) -> None:
        """Tell the endpoint's breaker how an admitted attempt went (see ``retry.endpoint_failed``)."""
        self.health.record(route.provider.name, ok, latency_s)

    def _order(self, routes: Sequence[Route], views: Mapping[str, View]) -> list[Route]:
        ordered: list[Route] = []
        for _, group in groupby(routes, key=lambda route: route.provider.config.priority):
            members = list(group)
            probes = [route for route in members if views[route.provider.name].state != CLOSED]
            closed = [route for route in members if views[route.provider.name].state == CLOSED]
            ordered += probes + self._shuffle(closed, views)
        return ordered

    def _shuffle(self, routes: Sequence[Route], views: Mapping[str, View]) -> list[Route]:
        """A weighted random order (Efraimidis-Spirakis: sort by u ** (1 / w), u uniform in [0, 1))."""
        weights = preference(routes, views)
        keyed = [(self._random.random() ** (1 / weight), index) for index, weight in enumerate(weights)]
        return [routes[index] for _, index in sorted(keyed, reverse=True)]


def preference(routes: Sequence[Route], views: Mapping[str, View]) -> list[float]:
    """Each route's share of first choice within its priority: its ``weight``, scaled by how fast it answers
    next to the fastest (half as fast, half the share) and divided by one plus its failures in a row.

    An endpoint without a latency yet counts as the fastest, so that it gets traffic and a measure.
    """
    known = [ms for route in routes if (ms := views[route.provider.name].ewma_ms)]
    fastest = min(known, default=None)
    weights = []
    for route in routes:
        view = views[route.provider.name]
        speed = fastest / view.ewma_ms if fastest and view.ewma_ms else 1.0
        weights.append(route.provider.config.weight * speed / (1 + view.failures))
    return weights
