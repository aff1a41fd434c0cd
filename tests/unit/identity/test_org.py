from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from bastion.config import MemberConfig, ProjectConfig, ServiceAccountConfig
from bastion.errors import Conflict, InvalidParameter, NotFound
from bastion.identity.keys import KeyService, Owner
from bastion.identity.org import OrgService

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.services import Services

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def member(email: str, role: str = "member", **extra: Any) -> MemberConfig:
    return MemberConfig.model_validate({"email": email, "role": role, **extra})


def account(name: str, project: str = "alpha", **extra: Any) -> ServiceAccountConfig:
    return ServiceAccountConfig.model_validate({"name": name, "project": project, **extra})


def org_and_keys(make_services: Callable[..., Services], database_url: str) -> tuple[OrgService, KeyService]:
    engine = make_services(database_url).engine
    org = OrgService(engine, clock=lambda: NOW)
    org.create_project("cli:test", ProjectConfig(name="alpha"))
    org.create_project("cli:test", ProjectConfig(name="beta"))
    return org, KeyService(engine, b"k" * 32, clock=lambda: NOW)


def test_every_change_is_an_event_with_before_and_after(
    make_services: Callable[..., Services], database_url: str
) -> None:
    org, _ = org_and_keys(make_services, database_url)
    org.update_project("cli:test", ProjectConfig.model_validate({"name": "alpha", "environment": "production"}))
    org.add_member("cli:test", member("Ann@Acme.com", projects={"alpha": "admin"}))
    events = org.events()
    assert [e["action"] for e in events][:2] == ["member.add", "project.update"]
    update = events[1]
    assert (update["actor"], update["target_id"], update["project"]) == ("cli:test", "alpha", "alpha")
    assert (update["before"]["environment"], update["after"]["environment"]) == ("development", "production")
    assert events[0]["after"]["email"] == "ann@acme.com"
    assert [e["action"] for e in org.events(project="beta")] == ["project.create"]


def test_offboarding_a_member_revokes_every_key(make_services: Callable[..., Services], database_url: str) -> None:
    org, keys = org_and_keys(make_services, database_url)
    org.add_member("cli:test", member("bob@acme.com", projects={"alpha": "member", "beta": "reader"}))
    first, _ = keys.create("alpha", owner=Owner("member", "bob@acme.com"))
    second, _ = keys.create("beta", owner=Owner("member", "bob@acme.com"))
    other, _ = keys.create("alpha")
    removed, revoked = org.remove_member("cli:test", "bob@acme.com")
    assert revoked == 2 and removed.email == "bob@acme.com"
    statuses = {k.id: k.status for k in keys.list_keys()}
    assert statuses == {first.id: "revoked", second.id: "revoked", other.id: "active"}
    with pytest.raises(NotFound):
        org.member("bob@acme.com")
    org.add_member("cli:test", member("bob@acme.com"))  # a returning member starts without keys or projects
    assert org.member("bob@acme.com").projects == {}


def test_service_accounts(make_services: Callable[..., Services], database_url: str) -> None:
    org, keys = org_and_keys(make_services, database_url)
    created = org.create_service_account("cli:test", account("bot", permissions=["embeddings"], key_ttl="30d"))
    assert created.permissions == ("embeddings",)
    with pytest.raises(Conflict):
        org.create_service_account("cli:test", account("bot"))
    with pytest.raises(InvalidParameter, match="cannot move between projects"):
        org.update_service_account("cli:test", account("bot", project="beta"))
    key, _ = keys.create("alpha", owner=Owner("service_account", "bot"))
    assert key.expires_at == NOW + timedelta(days=30)  # the account's key_ttl is the default lifetime
    with pytest.raises(InvalidParameter, match="at most 30d"):
        keys.create("alpha", expires_in=timedelta(days=31), owner=Owner("service_account", "bot"))
    with pytest.raises(NotFound, match="no service account named 'bot'"):
        keys.create("beta", owner=Owner("service_account", "bot"))
    _, revoked = org.delete_service_account("cli:test", "bot")
    assert revoked == 1
    assert keys.get(key.id).status == "revoked"


def test_deleting_a_project_revokes_its_keys_and_removes_its_accounts(
    make_services: Callable[..., Services], database_url: str
) -> None:
    org, keys = org_and_keys(make_services, database_url)
    org.create_service_account("cli:test", account("bot"))
    key, _ = keys.create("alpha")
    org.delete_project("cli:test", "alpha")
    assert [p.name for p in org.projects()] == ["beta"]
    assert org.service_accounts() == []
    assert keys.get(key.id).status == "revoked"
    org.create_project("cli:test", ProjectConfig(name="alpha"))  # the name can be used again
    assert keys.get(key.id).status == "revoked"


def test_member_keys_need_project_access(make_services: Callable[..., Services], database_url: str) -> None:
    org, keys = org_and_keys(make_services, database_url)
    org.add_member("cli:test", member("cat@acme.com", projects={"alpha": "reader"}))
    org.add_member("cli:test", member("own@acme.com", role="owner"))
    keys.create("alpha", owner=Owner("member", "cat@acme.com"))
    keys.create("beta", owner=Owner("member", "own@acme.com"))  # owners administer every project
    with pytest.raises(NotFound, match="not a member of project 'beta'"):
        keys.create("beta", owner=Owner("member", "cat@acme.com"))


def test_invites(make_services: Callable[..., Services], database_url: str) -> None:
    org, _ = org_and_keys(make_services, database_url)
    invite, token = org.invite(
        "member:own@acme.com", member("new@acme.com", projects={"beta": "member"}), timedelta(days=7)
    )
    assert invite.status(NOW) == "pending" and token.startswith("bst_inv_")
    assert token not in repr(org.invites())
    joined = org.accept_invite(token)
    assert (joined.email, joined.projects) == ("new@acme.com", {"beta": "member"})
    with pytest.raises(NotFound, match="not valid, was used"):
        org.accept_invite(token)
    later, other = org.invite("cli:test", member("late@acme.com"), timedelta(days=7))
    org.revoke_invite("cli:test", later.id)
    with pytest.raises(NotFound):
        org.accept_invite(other)


def test_rotation_keeps_the_old_key_for_the_overlap(make_services: Callable[..., Services], database_url: str) -> None:
    org, keys = org_and_keys(make_services, database_url)
    old, _ = keys.create("alpha", name="web", expires_in=timedelta(days=30))
    new, plaintext = keys.rotate(old.id, overlap=timedelta(hours=24))
    rotated = keys.get(old.id)
    assert (rotated.status, rotated.expires_at, rotated.rotated_to) == ("rotating", NOW + timedelta(hours=24), new.id)
    assert (new.name, new.status, new.expires_at) == ("web", "active", NOW + timedelta(days=30))
    assert plaintext.startswith(new.prefix)
    rotated.check(NOW + timedelta(hours=23))
    with pytest.raises(InvalidParameter, match="only an active key can be rotated"):
        keys.rotate(old.id)
    assert next(e["action"] for e in org.events()) == "key.rotate"


def test_due_lists_expiring_and_over_age_keys(make_services: Callable[..., Services], database_url: str) -> None:
    org, keys = org_and_keys(make_services, database_url)
    org.update_project("cli:test", ProjectConfig.model_validate({"name": "beta", "keys": {"max_age": "10d"}}))
    soon, _ = keys.create("alpha", expires_in=timedelta(days=3))
    keys.create("alpha", expires_in=timedelta(days=30))
    aging, _ = keys.create("beta")
    keys.create("alpha")
    due = {record.id: reason for record, reason in keys.due(timedelta(days=7))}
    assert set(due) == {soon.id}
    due = {record.id: reason for record, reason in keys.due(timedelta(days=10))}
    assert set(due) == {soon.id, aging.id}
    assert "maximum age" in due[aging.id] and "expires at" in due[soon.id]
