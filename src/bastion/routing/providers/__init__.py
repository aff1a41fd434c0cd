"""Upstream providers, one module per kind; ``KINDS`` is the table the gateway builds them from."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp

from bastion.config import ProviderConfig
from bastion.routing.providers.base import Provider
from bastion.routing.providers.echo import EchoProvider
from bastion.routing.providers.openai import OpenAIProvider

Factory = Callable[[ProviderConfig, aiohttp.ClientSession, Mapping[str, str]], Provider]

KINDS: dict[str, Factory] = {
    "openai": OpenAIProvider.build,
    "echo": EchoProvider.build,
}


def build_provider(config: ProviderConfig, session: aiohttp.ClientSession, env: Mapping[str, str]) -> Provider:
    return KINDS[config.kind](config, session, env)
