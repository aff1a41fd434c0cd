from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import parse_file

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_is_a_valid_config(path: Path) -> None:
    config = parse_file(path)
    assert config.providers
    assert config.projects


def test_there_are_examples() -> None:
    assert {path.name for path in EXAMPLES} >= {"minimal.yaml", "enterprise.yaml"}
