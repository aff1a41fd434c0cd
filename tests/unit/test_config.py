from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bastion.config import load_settings, parse_text
from bastion.durations import parse_duration
from bastion.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

MINIMAL = """\
organization: acme
providers:
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1/
    api_key_env: OPENAI_API_KEY
    models: {gpt-4.1-mini: gpt-4.1-mini-2025-04-14}
  - name: local
    kind: echo
    models: [echo-1]
projects:
  - name: support-bot
    environment: production
    models: [gpt-4.1-mini]
"""


def test_minimal_config_parses_with_defaults() -> None:
    config = parse_text(MINIMAL, "bastion.yaml")
    openai, echo = config.providers
    assert openai.base_url == "https://api.openai.com/v1"
    assert openai.models == {"gpt-4.1-mini": "gpt-4.1-mini-2025-04-14"}
    assert echo.models == {"echo-1": "echo-1"}
    assert config.server.max_body_bytes == 8 * 1024 * 1024
    assert config.projects[0].models == ["gpt-4.1-mini"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "extra: 1\n", "bastion.yaml:15: unknown key 'extra' in the top level"),
        (
            MINIMAL.replace("    kind: echo", "    kind: echo\n    colour: red"),
            "bastion.yaml:10: unknown key 'colour' in providers[1]",
        ),
        (
            MINIMAL.replace("kind: echo", "kind: anthropic"),
            "bastion.yaml:9: providers[1].kind: Input should be 'openai', 'azure', 'openai_compatible' or 'echo'",
        ),
        (MINIMAL.replace("environment: production", "environment: prod"), "bastion.yaml:13: projects[0].environment"),
        (
            MINIMAL + "server: {max_body_bytes: -1}\n",
            "bastion.yaml:15: server.max_body_bytes: Input should be greater than",
        ),
        (MINIMAL + "server: {port: http}\n", "bastion.yaml:15: server.port: Input should be a valid integer"),
        (
            MINIMAL.replace("name: local", "name: openai"),
            "bastion.yaml:8: providers[1].name: two providers have the name 'openai'",
        ),
        (
            MINIMAL.replace("models: [gpt-4.1-mini]", "models: [gpt-5]"),
            "bastion.yaml:14: projects[0].models: allows gpt-5, which no provider serves",
        ),
        (
            MINIMAL.replace("    base_url: https://api.openai.com/v1/\n", ""),
            "a provider of kind 'openai' needs base_url",
        ),
        (
            MINIMAL.replace("https://api.openai.com/v1/", "ftp://x"),
            "bastion.yaml:5: providers[0].base_url: must be an http",
        ),
        (
            MINIMAL.replace("name: support-bot", "name: Support Bot"),
            "bastion.yaml:12: projects[0].name: String should match",
        ),
        ("providers: [\n", "bastion.yaml:2: not valid YAML"),
        ("- just\n- a list\n", "bastion.yaml:1: the config file must be a mapping"),
    ],
)
def test_bad_config_names_file_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_text(text, "bastion.yaml")
    assert expected in caught.value.message


def test_empty_file_is_the_defaults() -> None:
    assert parse_text("", "x.yaml").providers == []


def test_environment_overrides_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text(MINIMAL)
    env = {"BASTION_CONFIG": str(path), "BASTION_HOME": str(tmp_path / "h"), "BASTION_REDIS_URL": "redis://r:6379/0"}
    settings = load_settings(environ=env)
    assert settings.source == str(path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'h' / 'bastion.db'}"
    assert settings.redis_url == "redis://r:6379/0"
    env["BASTION_DATABASE_URL"] = "postgresql://db/bastion"
    assert load_settings(environ=env).database_url == "postgresql://db/bastion"


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings(tmp_path / "nope.yaml", environ={})


@pytest.mark.parametrize(
    ("text", "seconds"), [("45s", 45), ("90m", 5400), ("24h", 86400), ("30d", 2592000), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "0d", "-1d", "1y", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


ORG = """\
server:
  trusted_proxies: [10.0.0.0/8, "2001:db8::/32"]
  ip_limits: {rpm: 100}
projects:
  - name: support-bot
    limits: {rpm: 600, tpm: 200000, daily_tokens: 5000000}
    keys: {max_age: 60d, over_age: refuse, limits: {rpm: 60}}
members:
  - {email: alice@acme.com, role: owner}
  - {email: dave@acme.com, role: reader, projects: {support-bot: reader}}
service_accounts:
  - name: chatbot-prod
    project: support-bot
    permissions: [chat.completions, embeddings]
    ip_allowlist: [10.0.1.0/24, "2001:db8::/32", 192.0.2.7]
    limits: {rpm: 5000, tpm: 1000000}
    key_ttl: 30d
"""


def test_organisation_sections_parse() -> None:
    config = parse_text(ORG, "org.yaml")
    (account,) = config.service_accounts
    assert account.ip_allowlist == ["10.0.1.0/24", "2001:db8::/32", "192.0.2.7/32"]
    assert account.key_ttl is not None and account.key_ttl.days == 30
    assert config.projects[0].keys.max_age is not None and config.projects[0].keys.over_age == "refuse"
    assert config.members[1].projects == {"support-bot": "reader"}
    assert config.server.trusted_proxies == ["10.0.0.0/8", "2001:db8::/32"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("10.0.1.0/24", "10.0.1.7/24"),
            "org.yaml:15: service_accounts[0].ip_allowlist[0]: '10.0.1.7/24' is not a network",
        ),
        (("10.0.0.0/8", "10.0.0.0.0/8"), "org.yaml:2: server.trusted_proxies[0]: '10.0.0.0.0/8' is not a network"),
        (("role: reader", "role: auditor"), "org.yaml:10: members[1].role: Input should be"),
        (("alice@acme.com", "alice"), "org.yaml:9: members[0].email: String should match"),
        (("[chat.completions, embeddings]", "[chat]"), "org.yaml:14: service_accounts[0].permissions[0]"),
        (("project: support-bot", "project: other"), "org.yaml:13: service_accounts[0].project: names project 'other'"),
        (("{support-bot: reader}", "{ghost: reader}"), "org.yaml:10: members[1].projects.ghost: names project 'ghost'"),
        (("max_age: 60d", "max_age: soon"), "org.yaml:7: projects[0].keys.max_age: 'soon' is not a duration"),
        (("rpm: 600", "rpm: 0"), "org.yaml:6: projects[0].limits.rpm: Input should be greater than 0"),
        (("dave@acme.com", "alice@acme.com"), "org.yaml:10: members[1].email: two members have the email"),
    ],
)
def test_organisation_mistakes_name_file_and_line(change: tuple[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_text(ORG.replace(*change), "org.yaml")
    assert expected in caught.value.message
