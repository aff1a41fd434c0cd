from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from bastion.cli.main import app
from bastion.cli.serve import _check_startable, demo_settings
from bastion.config import ProviderConfig
from bastion.routing.catalog import Catalog
from bastion.services import open_services

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bastion.config import Settings
    from conftest import Ran

CONFIG = """\
providers:
  - {name: local, kind: echo, models: [echo-1]}
projects:
  - {name: team-a}
"""


def test_keys_create_list_revoke(cli: Callable[..., Ran]) -> None:
    ran = cli("keys", "create", "--project", "team-a", "--name", "ci", "--expires-in", "30d")
    assert ran.code == 0, ran.err
    key = ran.out.strip()
    assert key.startswith("bst_") and "shown only once" in ran.err and "held by the project" in ran.err
    (listed,) = json.loads(cli("keys", "list", "--json").out)
    assert (listed["project"], listed["name"], listed["status"]) == ("team-a", "ci", "active")
    assert listed["principal"] == {"type": "project", "id": None, "name": "team-a"}
    assert key.startswith(listed["prefix"]) and key not in json.dumps(listed)
    assert listed["expires_at"] is not None
    ran = cli("keys", "revoke", listed["id"])
    assert ran.code == 0 and "revoked" in ran.out
    header, row = cli("keys", "list").out.splitlines()
    assert header.split()[:4] == ["id", "project", "principal", "name"]
    assert row.split()[2] == "project:team-a" and "revoked" in row


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "create", "--project", "nope"], "Project 'nope' does not exist"),
        (["keys", "create", "--project", "team-a", "--expires-in", "soon"], "--expires-in: 'soon' is not a duration"),
        (["keys", "revoke", "key_missing"], "No key has the id 'key_missing'"),
    ],
)
def test_cli_errors_are_one_clear_line(cli: Callable[..., Ran], args: list[str], message: str) -> None:
    ran = cli(*args)
    assert ran.code == 2
    assert message in ran.err and "Traceback" not in ran.err and len(ran.err.splitlines()) == 1


def test_serve_refuses_a_bad_config_with_file_and_line(cli: Callable[..., Ran], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG + "  - {name: team-b, colour: red}\n")
    ran = cli("serve", "--config", str(bad))
    assert ran.code == 2
    assert f"{bad}:5: unknown key 'colour' in projects[1]" in ran.err


def test_serve_refuses_a_provider_whose_key_is_not_set(cli: Callable[..., Ran], tmp_path: Path) -> None:
    config = tmp_path / "openai.yaml"
    provider = "{name: oa, kind: openai, base_url: 'http://127.0.0.1:9/v1', api_key_env: NOT_SET_ANYWHERE, models: [m]}"
    config.write_text(f"providers:\n  - {provider}\n")
    ran = cli("serve", "--config", str(config))
    assert ran.code == 2
    assert "$NOT_SET_ANYWHERE, which is not set" in ran.err


def test_serve_needs_a_provider(cli: Callable[..., Ran], tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("organization: acme\n")
    ran = cli("serve", "--config", str(empty))
    assert ran.code == 2 and "no providers are configured" in ran.err


def test_a_provider_added_over_the_admin_api_is_enough_to_serve(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(organization="acme")
    services = open_services(settings)
    try:
        Catalog(services.engine).create("cli:test", ProviderConfig(name="local", kind="echo", models={"e": "e"}))
    finally:
        services.close()
    _check_startable(settings)  # no exit: the stored provider counts


def test_demo_settings_use_the_echo_model() -> None:
    settings = demo_settings()
    assert [p.kind for p in settings.file.providers] == ["echo"]
    assert [p.name for p in settings.file.projects] == ["demo"]


COMMANDS = [
    ["serve"],
    ["demo"],
    ["apply"],
    ["events"],
    *(["keys", verb] for verb in ("create", "list", "rotate", "due", "revoke")),
    *(["members", verb] for verb in ("list", "show", "add", "set-role", "remove", "invite", "invites", "accept")),
    ["members", "revoke-invite"],
    *(["projects", verb] for verb in ("list", "show", "create", "delete")),
    *(["service-accounts", verb] for verb in ("list", "show", "create", "delete")),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert f"Usage: bastion {' '.join(command)}" in result.stdout


def test_version() -> None:
    assert CliRunner().invoke(app, ["version"]).stdout.strip() == "0.1.0"


def test_scan_is_a_bastion_command() -> None:
    result = CliRunner().invoke(app, ["scan"], input="write to jane@acme.com\n")
    assert result.exit_code == 0
    (finding,) = json.loads(result.stdout)
    assert (finding["type"], finding["span"], finding["start"], finding["end"]) == ("EMAIL_ADDRESS", [9, 22], 9, 22)
    assert "jane@acme.com" not in result.stdout


def test_scan_with_ner_finds_names_too() -> None:
    text = "Ask Maria Gonzalez in Madrid, or mail maria@acme.com\n"
    result = CliRunner().invoke(app, ["scan", "--ner", "--show-values"], input=text)
    assert result.exit_code == 0, result.output
    found = {(finding["type"], finding["value"]) for finding in json.loads(result.stdout)}
    assert {("PERSON", "Maria Gonzalez"), ("EMAIL_ADDRESS", "maria@acme.com")} <= found
