"""Fixtures for the report tests: the activity, built once per session, and a factory of sources on copies of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from tests.unit.compliance.activity import NOW, PROVIDERS, Activity, build_activity, copy_store, settings_for

from bastion.compliance.source import Source
from bastion.config import FileConfig
from bastion.services import open_services

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from bastion.services import Services


@pytest.fixture(scope="session")
def activity(tmp_path_factory: pytest.TempPathFactory) -> Activity:
    return build_activity(tmp_path_factory.mktemp("activity"))


@pytest.fixture
def activity_services(activity: Activity, tmp_path: Path) -> Iterator[Callable[[], Services]]:
    """``activity_services()`` -> services on a fresh copy of the activity's store (closed after the test)."""
    opened: list[Services] = []

    def make() -> Services:
        database = copy_store(activity, tmp_path / f"store-{len(opened)}")
        services = open_services(settings_for(tmp_path / "home", database))
        opened.append(services)
        return services

    yield make
    for services in opened:
        services.close()


@pytest.fixture
def make_source(activity_services: Callable[[], Services]) -> Callable[..., Source]:
    """``make_source(members=[...])`` -> a source on a fresh copy, its clock at NOW, declaring ``members``."""

    def make(members: tuple[str, ...] = ()) -> Source:
        file = FileConfig.model_validate(
            {"providers": PROVIDERS, "members": [{"email": m, "role": "member"} for m in members]}
        )
        return Source.of(activity_services(), file, clock=lambda: NOW)

    return make
