"""The admin API's permission matrix (role x action) as data, and the one check that reads it.

Org-level actions are decided by the member's organisation role (owner, admin, member, reader);
project-level actions by their role in the key's project (admin, member, reader), where owners and
admins are admin in every project and an organisation reader is never more than a reader. Only
members act on the admin API: service-account and project keys are refused whatever the action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bastion.errors import PermissionDenied

if TYPE_CHECKING:
    from bastion.identity.model import Principal

Level = Literal["org", "project"]
ORG_COLUMNS = ("owner", "admin", "member", "reader")
PROJECT_COLUMNS = ("admin", "member", "reader")


@dataclass(frozen=True, slots=True)
class Action:
    """Who may do one thing: the level whose role decides, the roles allowed, and what it covers."""

    level: Level
    roles: frozenset[str]
    covers: str


def _action(level: Level, roles: str, covers: str) -> Action:
    return Action(level, frozenset(roles.split()), covers)


MATRIX: dict[str, Action] = {
    "org.read": _action("org", "owner admin member reader", "list and read members and invites"),
    "members.write": _action("org", "owner admin", "add, change and remove members (offboarding revokes their keys)"),
    "members.owner": _action("org", "owner", "grant the owner role, or change or remove an owner"),
    "invites.write": _action("org", "owner admin", "create and revoke invites"),
    "projects.create": _action("org", "owner admin", "create projects"),
    "projects.delete": _action("org", "owner admin", "delete the key's project (revokes all its keys)"),
    "routing.write": _action(
        "org", "owner admin", "add, change and remove providers and vendors (not those bastion.yaml declares)"
    ),
    "reports.read": _action("org", "owner admin reader", "read compliance reports of the whole organisation"),
    "project.read": _action("project", "admin member reader", "read the project, its service accounts and keys"),
    "project.write": _action("project", "admin", "change the project's settings"),
    "service_accounts.write": _action("project", "admin", "create, change and delete service accounts"),
    "keys.write": _action(
        "project", "admin", "create, rotate and revoke service-account and project keys; revoke any key"
    ),
    "keys.write_own": _action("project", "admin member", "create, rotate and revoke the member's own keys"),
    "events.read": _action("project", "admin member reader", "read the project's admin events"),
    "project_reports.read": _action("project", "admin reader", "read compliance reports of the key's project only"),
}


def role_for(principal: Principal, level: Level) -> str | None:
    """The role that decides actions of ``level`` for ``principal``; None when it holds none."""
    if principal.kind != "member" or principal.project_role is None:
        return None
    if level == "org":
        return principal.org_role
    return "reader" if principal.org_role == "reader" else principal.project_role


def allows(principal: Principal, action: str) -> bool:
    rule = MATRIX[action]
    return role_for(principal, rule.level) in rule.roles


def allowed_actions(principal: Principal) -> list[str]:
    """Every action ``principal`` may take, for ``GET /admin/v1/me``."""
    return [action for action in MATRIX if allows(principal, action)]


def require_member(principal: Principal) -> None:
    """Only members act on the admin API; service-account and project keys are for ``/v1``."""
    if principal.kind != "member":
        raise PermissionDenied(
            f"The admin API needs a member's key; this is a {principal.kind.replace('_', ' ')} key "
            f"('{principal.name}'), which only calls /v1. Use a key that belongs to you as a member."
        )


def authorize(principal: Principal, action: str, project: str | None = None) -> None:
    """Raise :class:`PermissionDenied` unless ``principal`` may take ``action`` (with a key of ``project``)."""
    where = f"project '{project}'" if project else "the key's project"
    require_member(principal)
    if principal.project_role is None:
        raise PermissionDenied(
            f"Member '{principal.name}' no longer holds a role in {where}, so this key cannot act on it; "
            "ask an owner or admin to add you to the project."
        )
    if allows(principal, action):
        return
    rule = MATRIX[action]
    role = role_for(principal, rule.level)
    needed = " or ".join(sorted(rule.roles))
    held = f"organisation role '{role}'" if rule.level == "org" else f"role '{role}' in {where}"
    raise PermissionDenied(
        f"Member '{principal.name}' has the {held}, which does not allow '{action}' ({rule.covers}); "
        f"it needs the {rule.level} role {needed}."
    )


def markdown_table() -> str:
    """The matrix as the two Markdown tables in docs/admin-api.md (a test keeps them the same)."""
    return (
        _table("org", ORG_COLUMNS, "organisation role")
        + "\n"
        + _table("project", PROJECT_COLUMNS, "role in the key's project")
    )


def _table(level: Level, columns: tuple[str, ...], title: str) -> str:
    rows = [
        f"| action ({title}) | " + " | ".join(columns) + " | covers |",
        "|---|" + "---|" * len(columns) + "---|",
    ]
    for name, action in MATRIX.items():
        if action.level == level:
            cells = ("yes" if column in action.roles else "no" for column in columns)
            rows.append(f"| `{name}` | " + " | ".join(cells) + f" | {action.covers} |")
    return "\n".join(rows) + "\n"
