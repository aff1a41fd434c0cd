"""Upstream providers, one module per protocol; ``KINDS`` is the table the gateway builds each kind from."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp

from bastion.config import ProviderConfig
from bastion.routing.providers.azure import AzureProvider
from bastion.routing.providers.base import Provider
from bastion.routing.providers.echo import EchoProvider
from bastion.routing.providers.openai import OpenAICompatibleProvider, OpenAIProvider, api_key_of

Factory = Callable[[ProviderConfig, aiohttp.ClientSession, Mapping[str, str]], Provider]

KINDS: dict[str, Factory] = {
    "openai": OpenAIProvider.build,
    "openai_compatible": OpenAICompatibleProvider.build,
    "azure": AzureProvider.build,
    "echo": EchoProvider.build,
}


def build_provider(config: ProviderConfig, session: aiohttp.ClientSession, env: Mapping[str, str]) -> Provider:
    return KINDS[config.kind](config, session, env)


def check_credentials(config: ProviderConfig, env: Mapping[str, str]) -> None:
    """Raise :class:`ConfigError` naming the variable when the provider's key is not set in ``env``."""
    api_key_of(config, env)
