"""The organisation routes: who am I, members and invites (org-level objects, seen from the key's project).

FastAPI reads these handlers' signatures at runtime, so this module does not postpone annotations.
"""

from typing import Annotated, Any

from fastapi import Depends

from bastion.api.admin_routes import scope
from bastion.api.admin_routes.bodies import InviteAccept, InviteCreate, MemberPatch, merged, spec_json
from bastion.api.admin_routes.caller import Admin, AdminDep, ControlDep, limit_anonymous
from bastion.api.admin_routes.route import Route, listing
from bastion.config import MemberConfig
from bastion.identity import rbac
from bastion.identity.model import Invite, Member

AnonymousLimit = Annotated[None, Depends(limit_anonymous)]


def me(admin: AdminDep) -> dict[str, Any]:
    """The caller: member, key, project, roles, and the actions the permission matrix allows them."""
    return {
        "member": scope.member_json(admin, admin.control.org.member(admin.email)),
        "key": admin.caller.key.to_json(admin.control.keys.now()),
        "project": admin.project,
        "roles": {"org": rbac.role_for(admin.principal, "org"), "project": rbac.role_for(admin.principal, "project")},
        "actions": rbac.allowed_actions(admin.principal),
    }


def _guard_owner(admin: Admin, *roles: str) -> None:
    """Only an owner may grant the owner role, or change or remove an owner."""
    if "owner" in roles:
        admin.authorize("members.owner")


def list_members(admin: AdminDep) -> dict[str, Any]:
    """Members who hold a role in the key's project (owners and admins hold one in every project)."""
    admin.authorize("org.read")
    return listing([scope.member_json(admin, m) for m in scope.members(admin)])


def add_member(body: MemberConfig, admin: AdminDep) -> dict[str, Any]:
    """Add a member; ``projects`` may name the key's project only."""
    admin.authorize("members.write")
    _guard_owner(admin, body.role)
    scope.only_own_projects(admin, body.projects)
    return scope.member_json(admin, admin.control.org.add_member(admin.actor, body))


def get_member(email: str, admin: AdminDep) -> dict[str, Any]:
    admin.authorize("org.read")
    return scope.member_json(admin, scope.member(admin, email))


def _member_spec(admin: Admin, current: Member, body: MemberPatch) -> MemberConfig:
    """The member after ``body``; their roles in projects the key cannot see stay as they are."""
    patch = body.model_dump(exclude_unset=True)
    base = spec_json(current.to_json(), MemberConfig)
    projects = patch.pop("projects", None)
    if projects is not None:
        scope.only_own_projects(admin, projects)
        base["projects"] = {n: r for n, r in current.projects.items() if n != admin.project} | projects
    return merged(MemberConfig, base, patch)


def update_member(email: str, body: MemberPatch, admin: AdminDep) -> dict[str, Any]:
    """Change a member's role, their role in the key's project, allowlist or limits."""
    admin.authorize("members.write")
    current = scope.member(admin, email)
    spec = _member_spec(admin, current, body)
    _guard_owner(admin, current.role, spec.role)
    return scope.member_json(admin, admin.control.org.update_member(admin.actor, spec))


def remove_member(email: str, admin: AdminDep) -> dict[str, Any]:
    """Offboard a member from the organisation: every key of theirs is revoked at once."""
    admin.authorize("members.write")
    current = scope.member(admin, email)
    _guard_owner(admin, current.role)
    removed, revoked = admin.control.org.remove_member(admin.actor, current.email)
    return {"member": scope.member_json(admin, removed), "keys_revoked": revoked}


def _invite_json(admin: Admin, invite: Invite) -> dict[str, Any]:
    return {**invite.to_json(), "status": invite.status(admin.control.keys.now())}


def list_invites(admin: AdminDep) -> dict[str, Any]:
    """Invites that name no project but the key's own."""
    admin.authorize("org.read")
    return listing([_invite_json(admin, i) for i in scope.invites(admin)])


def create_invite(body: InviteCreate, admin: AdminDep) -> dict[str, Any]:
    """Invite someone; the token is in this response only (it is stored as a hash)."""
    admin.authorize("invites.write")
    _guard_owner(admin, body.role)
    scope.only_own_projects(admin, body.projects)
    invite, token = admin.control.org.invite(admin.actor, body, body.expires_in)
    return {"invite": _invite_json(admin, invite), "token": token}


def revoke_invite(invite_id: str, admin: AdminDep) -> dict[str, Any]:
    admin.authorize("invites.write")
    scope.invite(admin, invite_id)
    return _invite_json(admin, admin.control.org.revoke_invite(admin.actor, invite_id))


def accept_invite(body: InviteAccept, control: ControlDep, limited: AnonymousLimit) -> dict[str, Any]:
    """Become a member with an invite's token (no key needed); returns the new member."""
    return control.org.accept_invite(body.token).to_json()


ROUTES = (
    Route("GET", "/me", me, tag="organisation"),
    Route("GET", "/members", list_members, tag="organisation"),
    Route("POST", "/members", add_member, 201, tag="organisation"),
    Route("GET", "/members/{email}", get_member, tag="organisation"),
    Route("PATCH", "/members/{email}", update_member, tag="organisation"),
    Route("DELETE", "/members/{email}", remove_member, tag="organisation"),
    Route("GET", "/invites", list_invites, tag="organisation"),
    Route("POST", "/invites", create_invite, 201, tag="organisation"),
    Route("POST", "/invites/accept", accept_invite, tag="organisation"),
    Route("DELETE", "/invites/{invite_id}", revoke_invite, tag="organisation"),
)
