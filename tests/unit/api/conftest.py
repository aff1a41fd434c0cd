"""Fixtures for the admin API tests: the two-project organisation, built once per session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from tests.unit.api.admin_org import Template, admin_org, build_template

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from tests.unit.api.admin_org import AdminOrg, MakeOrg

    from bastion.config import Settings


@pytest.fixture(scope="session")
def admin_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory.mktemp("admin-template"))


@pytest.fixture
def make_org(make_settings: Callable[..., Settings], admin_template: Template, tmp_path: Path) -> MakeOrg:
    """``async with make_org(admin_rpm=3) as org`` -> the gateway on a fresh copy of the organisation."""

    def make(
        file: dict[str, Any] | None = None, env: Mapping[str, str] | None = None, **server: object
    ) -> AbstractAsyncContextManager[AdminOrg]:
        return admin_org(make_settings, admin_template, tmp_path, file, env, **server)

    return make
