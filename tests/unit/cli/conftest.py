"""Factories for CLI tests: a temp home and config, a runner bound to them, and the store they write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from bastion.cli.main import app
from bastion.config import FileConfig, settings_from
from bastion.services import Services, open_services

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

CONFIG = """\
providers:
  - {name: local, kind: echo, models: [echo-1]}
projects:
  - {name: team-a}
"""


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "bastion.yaml").write_text(CONFIG)
    return {
        "BASTION_HOME": str(tmp_path / "home"),
        "BASTION_CONFIG": str(tmp_path / "bastion.yaml"),
        "BASTION_SECRET_KEY": "z" * 64,
    }


@pytest.fixture
def cli(env: dict[str, str]) -> Callable[..., Ran]:
    """``cli("keys", "list")`` runs the command in the test's home and returns exit code, stdout, stderr."""

    def run(*args: str) -> Ran:
        result = CliRunner().invoke(app, list(args), env=env)
        return Ran(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[Services]:
    """The services on the store the CLI writes, opened without applying any file (to assert on)."""
    opened = open_services(settings_from(FileConfig(), "<test>", env), ensure_file=False)
    yield opened
    opened.close()
