from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from bastion.cli.main import app
from bastion.cli.serve import demo_settings

if TYPE_CHECKING:
    from pathlib import Path

CONFIG = """\
providers:
  - {name: local, kind: echo, models: [echo-1]}
projects:
  - {name: team-a}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "bastion.yaml").write_text(CONFIG)
    return {
        "BASTION_HOME": str(tmp_path / "home"),
        "BASTION_CONFIG": str(tmp_path / "bastion.yaml"),
        "BASTION_SECRET_KEY": "z" * 64,
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_keys_create_list_revoke(env: dict[str, str]) -> None:
    code, out, err = run(env, "keys", "create", "--project", "team-a", "--name", "ci", "--expires-in", "30d")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("bst_") and "shown only once" in err
    code, out, _ = run(env, "keys", "list", "--json")
    (listed,) = json.loads(out)
    assert (listed["project"], listed["name"], listed["status"]) == ("team-a", "ci", "active")
    assert key.startswith(listed["prefix"]) and key not in out
    assert listed["expires_at"] is not None
    code, out, _ = run(env, "keys", "revoke", listed["id"])
    assert code == 0 and "revoked" in out
    code, out, _ = run(env, "keys", "list")
    assert "revoked" in out.splitlines()[1] and out.splitlines()[0].split()[:3] == ["id", "project", "name"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "create", "--project", "nope"], "Project 'nope' does not exist"),
        (["keys", "create", "--project", "team-a", "--expires-in", "soon"], "--expires-in: 'soon' is not a duration"),
        (["keys", "revoke", "key_missing"], "No key has the id 'key_missing'"),
    ],
)
def test_cli_errors_are_one_clear_line(env: dict[str, str], args: list[str], message: str) -> None:
    code, _, err = run(env, *args)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_serve_refuses_a_bad_config_with_file_and_line(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG + "  - {name: team-b, colour: red}\n")
    code, _, err = run(env, "serve", "--config", str(bad))
    assert code == 2
    assert f"{bad}:5: unknown key 'colour' in projects[1]" in err


def test_serve_refuses_a_provider_whose_key_is_not_set(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "openai.yaml"
    provider = "{name: oa, kind: openai, base_url: 'http://127.0.0.1:9/v1', api_key_env: NOT_SET_ANYWHERE, models: [m]}"
    config.write_text(f"providers:\n  - {provider}\n")
    code, _, err = run(env, "serve", "--config", str(config))
    assert code == 2
    assert "$NOT_SET_ANYWHERE, which is not set" in err


def test_serve_needs_a_provider(env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("organization: acme\n")
    code, _, err = run(env, "serve", "--config", str(empty))
    assert code == 2 and "no providers are configured" in err


def test_demo_settings_use_the_echo_model() -> None:
    settings = demo_settings()
    assert [p.kind for p in settings.file.providers] == ["echo"]
    assert [p.name for p in settings.file.projects] == ["demo"]


def test_help_and_version() -> None:
    for args in (["--help"], ["serve", "--help"], ["keys", "create", "--help"], ["demo", "--help"]):
        assert CliRunner().invoke(app, args).exit_code == 0
    assert CliRunner().invoke(app, ["version"]).stdout.strip() == "0.1.0"
