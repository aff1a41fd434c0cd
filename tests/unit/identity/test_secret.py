from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pytest

from bastion.errors import ConfigError
from bastion.identity.secret import FILE_NAME, load_secret

if TYPE_CHECKING:
    from pathlib import Path


def test_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_secret(None, tmp_path / "home")
    path = tmp_path / "home" / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(None, tmp_path / "home") == first
    assert len(first) >= 32


def test_environment_value_wins(tmp_path: Path) -> None:
    assert load_secret("x" * 40, tmp_path) == b"x" * 40
    assert not (tmp_path / FILE_NAME).exists()


def test_short_environment_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_secret("short", tmp_path)


def test_readable_by_others_is_refused(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text("y" * 64)
    (tmp_path / FILE_NAME).chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_secret(None, tmp_path)
