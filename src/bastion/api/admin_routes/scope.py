"""Tenant isolation: what a key of one project may see, and one "not found" for everything else.

A key sees its own project and that project's service accounts, keys, memberships and events; of
the organisation, the members who hold a role in its project and the invites that name no other
project. Anything else gets the same 404 as a name that does not exist, so that a key cannot even
learn whether another project's objects exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bastion.api.admin_routes.caller import Admin
    from bastion.identity.keys import KeyRecord
    from bastion.identity.model import Invite, Member, ServiceAccount


def project(admin: Admin, name: str) -> str:
    """``name`` if it is the key's project; otherwise 404, whether or not such a project exists."""
    if name != admin.project:
        raise NotFound(
            f"No project named '{name}' is visible to this key; a key sees only its own project ('{admin.project}')."
        )
    return name


def member_json(admin: Admin, member: Member) -> dict[str, Any]:
    """A member as the key's project sees them: their role in other projects is not shown."""
    data = member.to_json()
    data["projects"] = {name: role for name, role in member.projects.items() if name == admin.project}
    return data


def members(admin: Admin) -> list[Member]:
    return admin.control.org.members(project=admin.project)


def member(admin: Admin, email: str) -> Member:
    found = next((m for m in members(admin) if m.email == email.lower()), None)
    if found is None:
        raise NotFound(
            f"No member with the email '{email}' holds a role in project '{admin.project}'; "
            "GET /admin/v1/members lists them."
        )
    return found


def account(admin: Admin, project_name: str, name: str) -> ServiceAccount:
    found = next((a for a in admin.control.org.service_accounts(project_name) if a.name == name), None)
    if found is None:
        raise NotFound(
            f"Project '{project_name}' has no service account named '{name}'; "
            f"GET /admin/v1/projects/{project_name}/service-accounts lists them."
        )
    return found


def key(admin: Admin, project_name: str, key_id: str) -> KeyRecord:
    try:
        record: KeyRecord | None = admin.control.keys.get(key_id)
    except NotFound:
        record = None
    if record is None or record.project != project_name:
        raise NotFound(
            f"Project '{project_name}' has no key with the id '{key_id}'; "
            f"GET /admin/v1/projects/{project_name}/keys lists them."
        )
    return record


def invites(admin: Admin) -> list[Invite]:
    return [i for i in admin.control.org.invites() if set(i.projects) <= {admin.project}]


def invite(admin: Admin, invite_id: str) -> Invite:
    found = next((i for i in invites(admin) if i.id == invite_id), None)
    if found is None:
        raise NotFound(f"No invite with the id '{invite_id}' is visible to this key; GET /admin/v1/invites lists them.")
    return found


def only_own_projects(admin: Admin, projects: Iterable[str]) -> None:
    """A body may grant roles in the key's project only; any other name is "not found" like a missing one."""
    for name in projects:
        project(admin, name)
