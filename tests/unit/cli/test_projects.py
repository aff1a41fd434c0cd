from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from bastion.services import local_actor

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.services import Services
    from conftest import Ran


def test_create_show_list_and_delete_a_project(cli: Callable[..., Ran], store: Services) -> None:
    args = ["--environment", "production", "--models", "echo-1, gpt-4.1", "--rpm", "60", "--daily-tokens", "1000"]
    ran = cli("projects", "create", "support-bot", *args)
    assert (ran.code, ran.out) == (0, "created project support-bot (production)\n")
    shown = json.loads(cli("projects", "show", "support-bot", "--json").out)
    assert (shown["models"], shown["limits"]) == (["echo-1", "gpt-4.1"], {"rpm": 60, "daily_tokens": 1000})
    assert "limits       rpm=60,daily_tokens=1000" in cli("projects", "show", "support-bot").out
    assert [p["name"] for p in json.loads(cli("projects", "list", "--json").out)] == ["support-bot", "team-a"]
    assert cli("projects", "list").out.splitlines()[0].split() == [
        "name",
        "environment",
        "models",
        "limits",
        "created_at",
    ]
    cli("keys", "create", "--project", "support-bot")
    ran = cli("projects", "delete", "support-bot")
    assert ran.code == 2 and "add --yes" in ran.err
    assert store.org.project("support-bot").name == "support-bot"
    ran = cli("projects", "delete", "support-bot", "--yes")
    assert (ran.code, ran.out) == (0, "deleted project support-bot; revoked 1 key\n")
    assert [p.name for p in store.org.projects()] == ["team-a"]
    assert [k.status for k in store.keys.list_keys()] == ["revoked"]


def test_create_show_and_delete_a_service_account(cli: Callable[..., Ran], store: Services) -> None:
    args = ["--permission", "chat.completions", "--allow", "10.0.1.0/24", "--allow", "2001:db8::/32", "--rpm", "10"]
    ran = cli("service-accounts", "create", "bot", "--project", "team-a", *args, "--key-ttl", "30d")
    assert (ran.code, ran.out) == (0, "created service account bot in project team-a\n")
    account = store.org.service_account("bot")
    assert (account.permissions, account.ip_allowlist) == (("chat.completions",), ("10.0.1.0/24", "2001:db8::/32"))
    shown = json.loads(cli("service-accounts", "show", "bot", "--json").out)
    assert (shown["key_ttl"], shown["limits"]) == ("30d", {"rpm": 10})
    assert [a["name"] for a in json.loads(cli("service-accounts", "list", "--project", "team-a", "--json").out)] == [
        "bot"
    ]
    cli("keys", "create", "--project", "team-a", "--service-account", "bot")
    ran = cli("service-accounts", "delete", "bot")
    assert (ran.code, ran.out) == (0, "deleted service account bot; revoked 1 key\n")
    assert store.org.service_accounts() == []
    assert [k.status for k in store.keys.list_keys()] == ["revoked"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["projects", "create", "x", "--environment", "prod"], "--environment: 'prod' is not valid; input should be"),
        (["projects", "create", "Bad Name"], "NAME: 'Bad Name' is not a name of lowercase letters"),
        (["projects", "create", "x", "--rpm", "0"], "--rpm: '0' is not valid; input should be greater than 0"),
        (["projects", "create", "team-a"], "A project named 'team-a' already exists"),
        (["projects", "show", "nope"], "No project is named 'nope'"),
        (["projects", "delete", "nope", "--yes"], "No project is named 'nope'"),
        (["service-accounts", "create", "bot", "--project", "nope"], "No project is named 'nope'"),
        (
            ["service-accounts", "create", "bot", "-p", "team-a", "--permission", "admin"],
            "--permission: 'admin' is not",
        ),
        (
            ["service-accounts", "create", "bot", "-p", "team-a", "--allow", "10.0.1.7/24"],
            "--allow: '10.0.1.7/24' is not a",
        ),
        (["service-accounts", "create", "bot", "-p", "team-a", "--key-ttl", "soon"], "--key-ttl: 'soon' is not a dur"),
        (["service-accounts", "list", "--project", "nope"], "No project is named 'nope'"),
        (["service-accounts", "delete", "ghost"], "No service account is named 'ghost'"),
    ],
)
def test_bad_input_is_one_clear_line(cli: Callable[..., Ran], args: list[str], message: str) -> None:
    ran = cli(*args)
    assert ran.code == 2
    assert message in ran.err and len(ran.err.splitlines()) == 1, ran.err


def test_events_list_admin_changes_newest_first(cli: Callable[..., Ran]) -> None:
    cli("projects", "create", "support-bot")
    cli("members", "add", "bob@acme.com", "--role", "member")
    events = json.loads(cli("events", "--json").out)
    assert [(e["actor"], e["action"], e["target"]) for e in events[:2]] == [
        (local_actor(), "member.add", "member:bob@acme.com"),
        (local_actor(), "project.create", "project:support-bot"),
    ]
    assert events[0]["after"]["role"] == "member"
    (only,) = json.loads(cli("events", "--project", "support-bot", "--limit", "1", "--json").out)
    assert only["action"] == "project.create"
    header, first, *_ = cli("events").out.splitlines()
    assert header.split() == ["id", "at", "actor", "action", "target", "project"]
    assert first.split()[2:5] == [local_actor(), "member.add", "member:bob@acme.com"]
