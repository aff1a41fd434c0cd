from __future__ import annotations

import pytest

from bastion.config import ProviderConfig
from bastion.errors import ModelNotFound
from bastion.routing.providers.echo import EchoProvider
from bastion.routing.router import Router


def echo(name: str, priority: int, models: dict[str, str]) -> EchoProvider:
    return EchoProvider(ProviderConfig(name=name, kind="echo", priority=priority, models=models))


def test_lowest_priority_number_wins_and_models_map_to_upstream_names() -> None:
    router = Router([echo("b", 2, {"m": "m-b"}), echo("a", 1, {"m": "m-a", "only-a": "x"})])
    route = router.choose("m")
    assert (route.provider.name, route.upstream_model) == ("a", "m-a")
    assert router.models() == {"m": "a", "only-a": "a"}


def test_unknown_model_is_refused_with_a_pointer_to_the_model_list() -> None:
    with pytest.raises(ModelNotFound, match="GET /v1/models") as caught:
        Router([echo("a", 1, {"m": "m"})]).choose("gpt-9")
    assert caught.value.param == "model"
    assert caught.value.status == 404
