"""Kind ``azure``: Azure OpenAI, whose deployments each serve one model under a name the operator chose.

A call for our model goes to ``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...``
(or ``/embeddings``), where the deployment is the upstream name that ``models`` maps our name to, with the
key in an ``api-key`` header. Everything else, timeouts, streaming and errors (Azure's ``{"error": {"code":
"429", ...}}`` and content-filter 400s pass through to the client like OpenAI's), is OpenAI's transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self
from urllib.parse import quote, urlencode

from bastion.errors import ConfigError
from bastion.routing.providers.base import PATHS
from bastion.routing.providers.openai import OpenAIProvider, api_key_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    import aiohttp

    from bastion.config import ProviderConfig
    from bastion.routing.providers.base import Call


class AzureProvider(OpenAIProvider):
    """``base_url`` is the resource's endpoint, e.g. ``https://my-resource.openai.azure.com``."""

    @classmethod
    def build(cls, config: ProviderConfig, session: aiohttp.ClientSession, env: Mapping[str, str]) -> Self:
        # Azure answers every request without a key with 401, so a provider without one could never serve.
        if not config.api_key_env:
            raise ConfigError(
                f"provider '{config.name}' of kind 'azure' needs api_key_env: Azure OpenAI authenticates each "
                "request with the resource's key"
            )
        if (config.base_url or "").endswith(("/openai", "/openai/v1")):
            raise ConfigError(
                f"provider '{config.name}': base_url is the Azure resource's endpoint without '/openai' "
                "(e.g. https://my-resource.openai.azure.com); Bastion adds the deployment path itself"
            )
        return cls(config, session, api_key_of(config, env))

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}

    def url(self, call: Call) -> str:
        deployment = quote(call.model, safe="")
        return f"{self.config.base_url}/openai/deployments/{deployment}{PATHS[call.endpoint]}?{self._version()}"

    def probe_url(self) -> str:
        """Azure's model listing: authenticated, cheap, and served by every resource whatever its deployments."""
        return f"{self.config.base_url}/openai/models?{self._version()}"

    def _version(self) -> str:
        return urlencode({"api-version": self.config.api_version})
