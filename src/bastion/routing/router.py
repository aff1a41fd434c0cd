"""The router: which provider serves a model, in order of priority."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.errors import ModelNotFound

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bastion.routing.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    upstream_model: str


class Router:
    def __init__(self, providers: Iterable[Provider]) -> None:
        self.providers = sorted(providers, key=lambda provider: provider.config.priority)
        self._routes: dict[str, list[Route]] = {}
        for provider in self.providers:
            for ours, theirs in provider.config.models.items():
                self._routes.setdefault(ours, []).append(Route(provider, theirs))

    def models(self) -> dict[str, str]:
        """Each model Bastion serves, with the provider that serves it first."""
        return {model: routes[0].provider.name for model, routes in self._routes.items()}

    def choose(self, model: str) -> Route:
        routes = self._routes.get(model)
        if not routes:
            raise ModelNotFound(
                f"The model '{model}' is not served by any configured provider; GET /v1/models lists the models "
                "you can use.",
                param="model",
            )
        return routes[0]
