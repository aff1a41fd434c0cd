"""The provider table and what each HTTP kind changes: where a call goes, how it authenticates, when it may start."""

from __future__ import annotations

from typing import Any, get_args

import orjson
import pytest

from bastion.config import ProviderConfig, ProviderKind
from bastion.errors import ConfigError
from bastion.routing.providers import KINDS, build_provider
from bastion.routing.providers.azure import AzureProvider
from bastion.routing.providers.base import Call
from bastion.routing.providers.openai import OpenAICompatibleProvider, OpenAIProvider

ENV = {"UP_KEY": "secret-1"}
NO_SESSION: Any = None  # building a provider opens no connection; only calls need the session
CLASSES: dict[str, type[OpenAIProvider]] = {
    "openai": OpenAIProvider,
    "openai_compatible": OpenAICompatibleProvider,
    "azure": AzureProvider,
}


def make_config(kind: str, **extra: Any) -> ProviderConfig:
    fields: dict[str, Any] = {"name": "up", "kind": kind, "models": {"ours": "theirs"}, "api_key_env": "UP_KEY"}
    if kind != "echo":
        fields["base_url"] = "https://up.example.com"
    if kind == "azure":
        fields["api_version"] = "2024-10-21"
    return ProviderConfig.model_validate({**fields, **extra})


def make_call(endpoint: str, model: str = "theirs") -> Call:
    body = {"model": model}
    return Call(endpoint, model, body, orjson.dumps(body), False, "req_1")


def test_every_configurable_kind_has_a_provider() -> None:
    assert set(KINDS) == set(get_args(ProviderKind))


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_the_kind_picks_the_provider(kind: str) -> None:
    provider = build_provider(make_config(kind), NO_SESSION, ENV)
    assert type(provider) is CLASSES[kind]
    assert (provider.name, provider.config.kind) == ("up", kind)


@pytest.mark.parametrize(
    ("kind", "endpoint", "model", "url", "probe"),
    [
        ("openai", "chat.completions", "theirs", "https://up.example.com/chat/completions", "/models"),
        ("openai_compatible", "embeddings", "theirs", "https://up.example.com/embeddings", "/models"),
        (
            "azure",
            "chat.completions",
            "prod-4o",
            "https://up.example.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
            "/openai/models?api-version=2024-10-21",
        ),
        (
            "azure",
            "embeddings",
            "team a/embed",
            "https://up.example.com/openai/deployments/team%20a%2Fembed/embeddings?api-version=2024-10-21",
            "/openai/models?api-version=2024-10-21",
        ),
    ],
)
def test_where_a_call_and_a_probe_go(kind: str, endpoint: str, model: str, url: str, probe: str) -> None:
    provider = CLASSES[kind].build(make_config(kind), NO_SESSION, ENV)
    assert provider.url(make_call(endpoint, model)) == url
    assert provider.probe_url() == f"https://up.example.com{probe}"


@pytest.mark.parametrize(
    ("kind", "headers"),
    [
        ("openai", {"Authorization": "Bearer secret-1"}),
        ("openai_compatible", {"Authorization": "Bearer secret-1"}),
        ("azure", {"api-key": "secret-1"}),
    ],
)
def test_how_the_key_travels(kind: str, headers: dict[str, str]) -> None:
    assert CLASSES[kind](make_config(kind), NO_SESSION, "secret-1").auth_headers("secret-1") == headers


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"api_key_env": None}, "of kind 'azure' needs api_key_env"),
        ({"base_url": "https://res.openai.azure.com/openai"}, "without '/openai'"),
        ({"api_key_env": "UNSET_KEY"}, r"\$UNSET_KEY, which is not set"),
    ],
)
def test_an_azure_provider_that_could_never_serve_stops_the_start(extra: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        build_provider(make_config("azure", **extra), NO_SESSION, ENV)
