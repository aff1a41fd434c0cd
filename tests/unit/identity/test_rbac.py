"""The permission matrix: who may take which admin action, written out here independently of rbac.MATRIX."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.errors import PermissionDenied
from bastion.identity import rbac
from bastion.identity.model import Principal

DOC = Path(__file__).parents[3] / "docs" / "admin-api.md"


def member(org_role: str, project_role: str | None) -> Principal:
    return Principal("member", "mem_1", "ann@acme.com", frozenset(), org_role=org_role, project_role=project_role)


# (org role, role in the key's project) -> the actions allowed; owners and admins are admin in every project.
EXPECTED = {
    ("owner", "admin"): "org.read members.write members.owner invites.write projects.create projects.delete "
    "routing.write reports.read project.read project.write service_accounts.write keys.write keys.write_own "
    "events.read "
    "project_reports.read",
    ("admin", "admin"): "org.read members.write invites.write projects.create projects.delete routing.write "
    "reports.read "
    "project.read project.write service_accounts.write keys.write keys.write_own events.read project_reports.read",
    ("member", "admin"): "org.read project.read project.write service_accounts.write keys.write keys.write_own "
    "events.read project_reports.read",
    ("member", "member"): "org.read project.read keys.write_own events.read",
    ("member", "reader"): "org.read project.read events.read project_reports.read",
    ("reader", "reader"): "org.read reports.read project.read events.read project_reports.read",
    # an org reader is never more than a reader
    ("reader", "admin"): "org.read reports.read project.read events.read project_reports.read",
    ("member", None): "",  # no role in the key's project: the key can do nothing there
}


@pytest.mark.parametrize(("roles", "allowed"), EXPECTED.items(), ids=[f"{o}/{p}" for o, p in EXPECTED])
@pytest.mark.parametrize("action", list(rbac.MATRIX))
def test_matrix(roles: tuple[str, str | None], allowed: str, action: str) -> None:
    principal = member(*roles)
    if action in allowed.split():
        rbac.authorize(principal, action, "alpha")
        assert rbac.allows(principal, action)
    else:
        with pytest.raises(PermissionDenied) as refused:
            rbac.authorize(principal, action, "alpha")
        assert f"'{action}'" in refused.value.message or "no longer holds a role" in refused.value.message


def test_every_action_in_the_expectations_exists() -> None:
    named = {action for allowed in EXPECTED.values() for action in allowed.split()}
    assert named <= set(rbac.MATRIX)
    assert set(rbac.MATRIX) == set(EXPECTED[("owner", "admin")].split())


@pytest.mark.parametrize(
    "principal",
    [
        Principal("service_account", "sa_1", "chatbot", frozenset({"chat.completions"})),
        Principal("project", "alpha", "alpha", frozenset({"chat.completions"})),
    ],
)
@pytest.mark.parametrize("action", ["org.read", "project.read", "keys.write"])
def test_only_members_act_on_the_admin_api(principal: Principal, action: str) -> None:
    with pytest.raises(PermissionDenied, match="needs a member's key"):
        rbac.authorize(principal, action, "alpha")
    assert rbac.allowed_actions(principal) == []


def test_a_refusal_names_the_member_their_role_and_what_is_needed() -> None:
    with pytest.raises(PermissionDenied) as refused:
        rbac.authorize(member("member", "reader"), "keys.write_own", "alpha")
    message = refused.value.message
    assert "ann@acme.com" in message and "role 'reader' in project 'alpha'" in message
    assert "'keys.write_own'" in message and "admin or member" in message
    assert refused.value.code == "permission_denied" and refused.value.status == 403


def test_reader_role_reads_and_changes_nothing() -> None:
    actions = rbac.allowed_actions(member("reader", "reader"))
    assert actions and all(action.endswith(".read") for action in actions)


def test_the_documented_matrix_is_the_one_enforced() -> None:
    assert rbac.markdown_table() in DOC.read_text(encoding="utf-8")
