"""The access report: roles and what they allow, derived from the store and the permission matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.unit.compliance.activity import query

from bastion.compliance import access
from bastion.compliance.render import to_json
from bastion.identity import rbac

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.compliance.source import Source


def test_members_and_their_roles_in_projects(make_source: Callable[..., Source]) -> None:
    report = to_json(access.build(make_source(), query()))
    members = {row["email"]: row for row in report["sections"]["members"]["rows"]}
    roles = {(r["project"], r["member"]): r for r in report["sections"]["project_roles"]["rows"]}
    assert {email: (row["role"], row["projects"]) for email, row in members.items()} == {
        "ann@acme.com": ("owner", []),
        "bob@acme.com": ("member", ["alpha=member"]),
        "cat@acme.com": ("reader", ["alpha=reader"]),
        "dan@acme.com": ("admin", ["beta=admin"]),
        "lee@acme.com": ("member", ["alpha=admin"]),
    }
    assert "members.owner" in members["ann@acme.com"]["admin_actions"]
    assert members["cat@acme.com"]["admin_actions"] == ["org.read", "reports.read"]
    assert set(roles) == {
        ("alpha", "ann@acme.com"),
        ("alpha", "bob@acme.com"),
        ("alpha", "cat@acme.com"),
        ("alpha", "dan@acme.com"),  # an organisation admin is admin of every project
        ("alpha", "lee@acme.com"),
        ("beta", "ann@acme.com"),
        ("beta", "dan@acme.com"),
    }
    bob, cat = roles[("alpha", "bob@acme.com")], roles[("alpha", "cat@acme.com")]
    assert (bob["role"], bob["admin_actions"]) == ("member", ["project.read", "keys.write_own", "events.read"])
    assert (cat["role"], cat["api_permissions"]) == ("reader", ["models.read"])
    assert "keys.write" in roles[("alpha", "lee@acme.com")]["admin_actions"]


def test_service_accounts_projects_and_the_matrix(make_source: Callable[..., Source]) -> None:
    report = to_json(access.build(make_source(), query()))
    accounts = {row["name"]: row for row in report["sections"]["service_accounts"]["rows"]}
    projects = {row["name"]: row for row in report["sections"]["projects"]["rows"]}
    assert accounts["bot-a"] == {
        "name": "bot-a",
        "project": "alpha",
        "permissions": ["chat.completions"],
        "ip_allowlist": ["127.0.0.0/8"],
        "limits": [],
        "key_ttl": None,
        "usable_keys": 1,
    }
    assert accounts["bot-b"]["limits"] == ["rpm=1"]
    assert (projects["alpha"]["models"], projects["alpha"]["key_max_age"]) == (["echo-1", "echo-2"], "30d")
    assert projects["beta"]["models"] is None
    matrix = {row["action"]: (row["level"], row["roles"]) for row in report["sections"]["matrix"]["rows"]}
    assert matrix == {name: (a.level, sorted(a.roles)) for name, a in rbac.MATRIX.items()}


def test_a_project_scope_shows_nothing_of_another_project(make_source: Callable[..., Source]) -> None:
    report = to_json(access.build(make_source(), query(project="alpha")))
    sections = report["sections"]
    text = str({key: sections[key] for key in ("members", "project_roles", "service_accounts", "projects")})
    assert "beta" not in text and "bot-b" not in text
    assert {row["email"] for row in sections["members"]["rows"]} == {
        "ann@acme.com",
        "bob@acme.com",
        "cat@acme.com",
        "dan@acme.com",
        "lee@acme.com",
    }
