"""Declarative organisation: compare the file's projects, members and service accounts with the store.

``plan`` lists what would change, object by object (create / update / delete, with the fields that
differ); ``execute`` carries a plan out through :class:`OrgService`, so every change is an admin
event like any other. Applying the same file twice plans nothing the second time. Deleting a member
or a service account revokes all their keys (offboarding); deleting a project revokes its keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bastion.identity.model import limits_json
from bastion.identity.org import account_values, member_values, project_values

if TYPE_CHECKING:
    from bastion.config import FileConfig, MemberConfig, ProjectConfig, ServiceAccountConfig
    from bastion.identity.keys import KeyService
    from bastion.identity.model import Member, Project, ServiceAccount
    from bastion.identity.org import OrgService

ORDER = {"project": 0, "member": 1, "service_account": 2}


@dataclass(frozen=True)
class Change:
    action: str  # "create" | "update" | "replace" | "delete"
    kind: str  # "project" | "member" | "service_account"
    name: str
    details: tuple[str, ...] = ()
    spec: Any = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        sign = {"create": "+", "update": "~", "replace": "±", "delete": "-"}[self.action]
        head = f"{sign} {self.action} {self.kind.replace('_', ' ')} {self.name}"
        return "\n".join([head, *(f"    {line}" for line in self.details)])

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "kind": self.kind, "name": self.name, "details": list(self.details)}


def plan(file: FileConfig, org: OrgService, keys: KeyService, *, deletes: bool = True) -> list[Change]:
    """What makes the store hold exactly what the file declares; ``deletes=False`` keeps extra objects."""
    active = _active_keys(keys)
    changes = _projects(file.projects, org.projects(), active)
    changes += _members(file.members, org.members(), active)
    changes += _accounts(file.service_accounts, org.service_accounts(), active)
    if not deletes:
        changes = [change for change in changes if change.action != "delete"]
    creates_and_updates = sorted((c for c in changes if c.action != "delete"), key=lambda c: ORDER[c.kind])
    removals = sorted((c for c in changes if c.action == "delete"), key=lambda c: -ORDER[c.kind])
    return creates_and_updates + removals


def execute(changes: list[Change], org: OrgService, actor: str) -> None:
    """Carry out a plan, in its order: projects before what refers to them, and the reverse for deletes."""
    for change in changes:
        _ACTIONS[(change.action, change.kind)](org, actor, change)


def _active_keys(keys: KeyService) -> dict[str, int]:
    """How many usable keys each principal id and each project holds (to say what a delete revokes)."""
    now = keys.now()
    counts: dict[str, int] = {}
    for record in keys.list_keys():
        if record.effective_status(now) in ("active", "rotating"):
            for owner in (record.principal_id, f"project:{record.project}"):
                if owner:
                    counts[owner] = counts.get(owner, 0) + 1
    return counts


def _diff(current: dict[str, Any], desired: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        f"{name}: {_show(current.get(name))} -> {_show(desired.get(name))}"
        for name in sorted(desired)
        if current.get(name) != desired.get(name)
    )


def _fields(desired: dict[str, Any]) -> tuple[str, ...]:
    """What a create sets: the fields given a value (the others keep their default: none, any, unlimited)."""
    return tuple(f"{name}: {_show(value)}" for name, value in sorted(desired.items()) if value not in (None, {}, []))


def _show(value: Any) -> str:
    if value is None or value == {} or value == []:
        return "(none)"
    return str(value)


def _revokes(count: int) -> tuple[str, ...]:
    return (f"revokes {count} active key{'s' if count != 1 else ''}",) if count else ()


def _project_state(project: Project) -> dict[str, Any]:
    return {
        "environment": project.environment,
        "models": list(project.models) if project.models is not None else None,
        "limits": limits_json(project.limits),
        "key_limits": limits_json(project.key_limits),
        "key_max_age": int(project.key_max_age.total_seconds()) if project.key_max_age else None,
        "key_over_age": project.key_over_age,
        "residency": list(project.residency) if project.residency is not None else None,
        "data_policy": project.data_policy.to_json(),
    }


def _projects(specs: list[ProjectConfig], current: list[Project], keys: dict[str, int]) -> list[Change]:
    found = {p.name: p for p in current}
    changes = []
    for spec in specs:
        desired = project_values(spec)
        if spec.name not in found:
            changes.append(Change("create", "project", spec.name, _fields(desired), spec))
        elif details := _diff(_project_state(found[spec.name]), desired):
            changes.append(Change("update", "project", spec.name, details, spec))
    declared = {spec.name for spec in specs}
    changes += [
        Change("delete", "project", name, _revokes(keys.get(f"project:{name}", 0)))
        for name in sorted(set(found) - declared)
    ]
    return changes


def _member_state(member: Member) -> dict[str, Any]:
    return {
        "role": member.role,
        "ip_allowlist": list(member.ip_allowlist),
        "limits": limits_json(member.limits),
        "projects": dict(sorted(member.projects.items())),
    }


def _members(specs: list[MemberConfig], current: list[Member], keys: dict[str, int]) -> list[Change]:
    found = {m.email: m for m in current}
    changes = []
    for spec in specs:
        email = spec.email.lower()
        desired = {**member_values(spec), "projects": dict(sorted(spec.projects.items()))}
        if email not in found:
            changes.append(Change("create", "member", email, _fields(desired), spec))
        elif details := _diff(_member_state(found[email]), desired):
            changes.append(Change("update", "member", email, details, spec))
    declared = {spec.email.lower() for spec in specs}
    changes += [
        Change("delete", "member", email, _revokes(keys.get(found[email].id, 0)))
        for email in sorted(set(found) - declared)
    ]
    return changes


def _account_state(account: ServiceAccount) -> dict[str, Any]:
    return {
        "project": account.project,
        "permissions": sorted(account.permissions),
        "ip_allowlist": list(account.ip_allowlist),
        "limits": limits_json(account.limits),
        "key_ttl": int(account.key_ttl.total_seconds()) if account.key_ttl else None,
    }


def _accounts(specs: list[ServiceAccountConfig], current: list[ServiceAccount], keys: dict[str, int]) -> list[Change]:
    found = {a.name: a for a in current}
    changes = []
    for spec in specs:
        desired = {**account_values(spec), "project": spec.project}
        old = found.get(spec.name)
        if old is None:
            changes.append(Change("create", "service_account", spec.name, _fields(desired), spec))
        elif old.project != spec.project:
            # A service account cannot move between projects: it is replaced, which revokes its keys.
            details = _diff(_account_state(old), desired) + _revokes(keys.get(old.id, 0))
            changes.append(Change("replace", "service_account", spec.name, details, spec))
        elif details := _diff(_account_state(old), desired):
            changes.append(Change("update", "service_account", spec.name, details, spec))
    declared = {spec.name for spec in specs}
    changes += [
        Change("delete", "service_account", name, _revokes(keys.get(found[name].id, 0)))
        for name in sorted(set(found) - declared)
    ]
    return changes


_ACTIONS: dict[tuple[str, str], Any] = {
    ("create", "project"): lambda org, actor, c: org.create_project(actor, c.spec),
    ("update", "project"): lambda org, actor, c: org.update_project(actor, c.spec),
    ("delete", "project"): lambda org, actor, c: org.delete_project(actor, c.name),
    ("create", "member"): lambda org, actor, c: org.add_member(actor, c.spec),
    ("update", "member"): lambda org, actor, c: org.update_member(actor, c.spec),
    ("delete", "member"): lambda org, actor, c: org.remove_member(actor, c.name),
    ("create", "service_account"): lambda org, actor, c: org.create_service_account(actor, c.spec),
    ("update", "service_account"): lambda org, actor, c: org.update_service_account(actor, c.spec),
    ("delete", "service_account"): lambda org, actor, c: org.delete_service_account(actor, c.name),
    ("replace", "service_account"): lambda org, actor, c: (
        org.delete_service_account(actor, c.name),
        org.create_service_account(actor, c.spec),
    ),
}
