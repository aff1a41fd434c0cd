from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from bastion.services import local_actor

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.services import Services
    from conftest import Ran

BOB = "bob@acme.com"


def test_add_set_role_and_remove_a_member(cli: Callable[..., Ran], store: Services) -> None:
    ran = cli("members", "add", BOB, "--role", "member", "--project", "team-a:reader")
    assert (ran.code, ran.out) == (0, "added bob@acme.com as member; projects: team-a=reader\n")
    assert [m["email"] for m in json.loads(cli("members", "list", "--project", "team-a", "--json").out)] == [BOB]
    assert json.loads(cli("members", "show", BOB, "--json").out)["projects"] == {"team-a": "reader"}
    cli("keys", "create", "--project", "team-a", "--member", BOB)
    ran = cli("members", "set-role", BOB, "admin")
    assert (ran.code, ran.out) == (0, "bob@acme.com: role member -> admin\n")
    assert (store.org.member(BOB).role, store.org.member(BOB).projects) == ("admin", {"team-a": "reader"})
    ran = cli("members", "remove", BOB)
    assert (ran.code, ran.out) == (0, "removed bob@acme.com; revoked 1 key\n")
    assert [k.status for k in store.keys.list_keys()] == ["revoked"]
    assert store.org.members() == []
    actions = [(e["actor"], e["action"]) for e in store.org.events() if e["target_type"] == "member"]
    assert actions == [
        (local_actor(), "member.remove"),
        (local_actor(), "member.update"),
        (local_actor(), "member.add"),
    ]


def test_members_list_as_a_table(cli: Callable[..., Ran]) -> None:
    cli("members", "add", "alice@acme.com", "--role", "owner")
    header, row = cli("members", "list").out.splitlines()
    assert header.split() == ["email", "role", "projects", "ip_allowlist", "limits", "created_at"]
    assert row.split()[:5] == ["alice@acme.com", "owner", "-", "-", "-"]


def test_invite_then_accept(cli: Callable[..., Ran], store: Services) -> None:
    ran = cli(
        "members", "invite", "carol@acme.com", "--role", "reader", "--project", "team-a:reader", "--expires-in", "2d"
    )
    assert ran.code == 0, ran.err
    token = ran.out.strip()
    assert token.startswith("bst_inv_") and "shown only once" in ran.err
    (pending,) = json.loads(cli("members", "invites", "--json").out)
    assert (pending["email"], pending["status"], pending["created_by"]) == ("carol@acme.com", "pending", local_actor())
    expires = datetime.strptime(pending["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=2))) < timedelta(minutes=1)
    assert token not in cli("members", "invites", "--json").out
    ran = cli("members", "accept", token)
    assert (ran.code, ran.out) == (0, "carol@acme.com is now a member (reader); projects: team-a=reader\n")
    assert store.org.member("carol@acme.com").projects == {"team-a": "reader"}
    assert "accepted" in cli("members", "invites").out.splitlines()[1]
    ran = cli("members", "accept", token)
    assert ran.code == 2 and "The invite token is not valid" in ran.err


def test_a_revoked_invite_cannot_be_accepted(cli: Callable[..., Ran]) -> None:
    token = cli("members", "invite", "dan@acme.com", "--role", "member").out.strip()
    (invite,) = json.loads(cli("members", "invites", "--json").out)
    assert cli("members", "revoke-invite", invite["id"]).out == f"revoked invite {invite['id']} for dan@acme.com\n"
    assert json.loads(cli("members", "invites", "--json").out)[0]["status"] == "revoked"
    assert cli("members", "accept", token).code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", BOB, "--role", "boss"], "--role: 'boss' is not valid; input should be 'owner', 'admin', 'member' or"),
        (["add", "bob", "--role", "member"], "EMAIL: 'bob' is not an email address such as bob@acme.com"),
        (["add", BOB, "--role", "member", "--project", "team-a"], "--project: 'team-a' is not PROJECT:ROLE"),
        (["add", BOB, "--role", "member", "--project", "team-a:owner"], "--project: 'owner' is not valid"),
        (["add", BOB, "--role", "member", "--project", "nope:member"], "No project is named 'nope'"),
        (["invite", BOB, "--role", "member", "--expires-in", "soon"], "--expires-in: 'soon' is not a duration"),
        (["invite", BOB, "--role", "boss"], "--role: 'boss' is not valid"),
        (["set-role", "ghost@acme.com", "admin"], "No member has the email 'ghost@acme.com'"),
        (["remove", "ghost@acme.com"], "No member has the email 'ghost@acme.com'"),
        (["list", "--project", "nope"], "No project is named 'nope'"),
        (["revoke-invite", "inv_x"], "No invite has the id 'inv_x'"),
    ],
)
def test_bad_input_is_one_clear_line(cli: Callable[..., Ran], args: list[str], message: str) -> None:
    ran = cli("members", *args)
    assert ran.code == 2
    assert message in ran.err and len(ran.err.splitlines()) == 1, ran.err


def test_set_role_refuses_an_unknown_role(cli: Callable[..., Ran], store: Services) -> None:
    cli("members", "add", BOB, "--role", "member")
    ran = cli("members", "set-role", BOB, "boss")
    assert ran.code == 2 and "ROLE: 'boss' is not valid" in ran.err
    assert store.org.member(BOB).role == "member"
