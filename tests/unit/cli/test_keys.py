from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.services import Services
    from conftest import Ran


def _key_id(cli: Callable[..., Ran], *args: str) -> str:
    ran = cli("keys", "create", "--project", "team-a", *args)
    assert ran.code == 0, ran.err
    (line,) = (line for line in ran.err.splitlines() if line.startswith("# id "))
    return line.removeprefix("# id ").split(",")[0]


def test_rotate_prints_a_new_key_and_the_old_one_works_for_the_overlap(
    cli: Callable[..., Ran], store: Services
) -> None:
    old_id = _key_id(cli, "--name", "ci")
    ran = cli("keys", "rotate", old_id, "--overlap", "1h")
    assert ran.code == 0, ran.err
    new_key = ran.out.strip()
    assert new_key.startswith("bst_") and len(ran.out.splitlines()) == 1
    assert "is rotating until" in ran.err and "shown only once" in ran.err
    old = store.keys.get(old_id)
    assert old.status == "rotating" and old.expires_at is not None
    assert abs(old.expires_at - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(seconds=30)
    new = store.keys.get(old.rotated_to or "")
    assert (new.status, new.name, new.prefix) == ("active", "ci", new_key[: len(new.prefix)])
    due = json.loads(cli("keys", "due", "--within", "2h", "--json").out)
    assert [(k["id"], k["status"]) for k in due] == [(old_id, "rotating")]
    assert due[0]["reason"].startswith("expires at ")
    assert json.loads(cli("keys", "due", "--within", "30m", "--json").out) == []
    header, row = cli("keys", "due", "--within", "2h").out.splitlines()
    assert header.split() == ["id", "project", "prefix", "status", "reason"]
    assert row.split()[:4] == [old_id, "team-a", old.prefix, "rotating"]


def test_due_lists_keys_that_expire_within_the_horizon(cli: Callable[..., Ran]) -> None:
    soon = _key_id(cli, "--expires-in", "3d")
    _key_id(cli, "--expires-in", "30d")
    _key_id(cli)
    assert [k["id"] for k in json.loads(cli("keys", "due", "--json").out)] == [soon]


def test_keys_for_members_and_service_accounts(cli: Callable[..., Ran], store: Services) -> None:
    assert cli("members", "add", "bob@acme.com", "--role", "member", "--project", "team-a:member").code == 0
    assert cli("service-accounts", "create", "bot", "--project", "team-a", "--key-ttl", "30d").code == 0
    member_key = _key_id(cli, "--member", "bob@acme.com")
    account_key = _key_id(cli, "--service-account", "bot")
    listed = {k["id"]: k["principal"] for k in json.loads(cli("keys", "list", "--json").out)}
    assert listed[member_key] == {"type": "member", "id": store.org.member("bob@acme.com").id, "name": "bob@acme.com"}
    assert listed[account_key]["name"] == "bot"
    expires = store.keys.get(account_key).expires_at
    assert expires is not None and abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    table = cli("keys", "list", "--project", "team-a").out
    assert "member:bob@acme.com" in table and "service_account:bot" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--member", "a@acme.com", "--service-account", "bot"], "--member and --service-account exclude each other"),
        (["--member", "nobody@acme.com"], "'nobody@acme.com' is not a member of project 'team-a'"),
        (["--service-account", "ghost"], "Project 'team-a' has no service account named 'ghost'"),
    ],
)
def test_a_key_holder_must_exist(cli: Callable[..., Ran], args: list[str], message: str) -> None:
    ran = cli("keys", "create", "--project", "team-a", *args)
    assert ran.code == 2 and message in ran.err and "Traceback" not in ran.err


def test_rotation_errors(cli: Callable[..., Ran]) -> None:
    key_id = _key_id(cli)
    ran = cli("keys", "rotate", key_id, "--overlap", "soon")
    assert ran.code == 2 and "--overlap: 'soon' is not a duration" in ran.err
    cli("keys", "revoke", key_id)
    ran = cli("keys", "rotate", key_id)
    assert ran.code == 2 and "is revoked; only an active key can be rotated" in ran.err
    ran = cli("keys", "due", "--within", "0d")
    assert ran.code == 2 and "--within: '0d' is not a duration" in ran.err
