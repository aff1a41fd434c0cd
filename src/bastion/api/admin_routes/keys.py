"""The key routes: list, create, rotate and revoke the project's keys, and the keys due for rotation.

A new or rotated key's plaintext is in that one response and nowhere else. No one may create or
rotate a key that acts as another member (it would let them act as that member); revoking one is
incident response and needs ``keys.write``.

FastAPI reads these handlers' signatures at runtime, so this module does not postpone annotations.
"""

from typing import Annotated, Any

from fastapi import Query

from bastion.api.admin_routes import scope
from bastion.api.admin_routes.bodies import KeyCreate, KeyOwner, KeyRotate
from bastion.api.admin_routes.caller import Admin, AdminDep
from bastion.api.admin_routes.route import Route, listing
from bastion.durations import parse_duration
from bastion.errors import InvalidParameter, PermissionDenied
from bastion.identity.keys import KeyRecord, Owner


def _impersonation(admin: Admin, what: str) -> PermissionDenied:
    return PermissionDenied(
        f"Member '{admin.email}' may not {what} a key that acts as another member; "
        "each member creates and rotates their own keys (a key of theirs can be revoked with keys.write)."
    )


def _authorize_owner(admin: Admin, owner: KeyOwner) -> None:
    if owner.kind == "member":
        admin.authorize("keys.write_own")
        if (owner.name or admin.email).lower() != admin.email:
            raise _impersonation(admin, "create")
        return
    if owner.kind == "project" and owner.name is not None:
        scope.project(admin, owner.name)
    admin.authorize("keys.write")


def _authorize_key(admin: Admin, record: KeyRecord, *, rotate: bool) -> None:
    own = record.principal_type == "member" and record.principal_id == admin.principal.id
    if own:
        admin.authorize("keys.write_own")
        return
    admin.authorize("keys.write")
    if rotate and record.principal_type == "member":
        raise _impersonation(admin, "rotate")


def list_keys(name: str, admin: AdminDep) -> dict[str, Any]:
    """The project's keys with status and dates; never a key's secret or hash."""
    scope.project(admin, name)
    admin.authorize("project.read")
    keys = admin.control.keys
    return listing([record.to_json(keys.now()) for record in keys.list_keys(project=name)])


def create_key(name: str, admin: AdminDep, body: KeyCreate | None = None) -> dict[str, Any]:
    """Issue a key of the project (the caller's own unless ``owner`` says otherwise); the key is shown once."""
    scope.project(admin, name)
    body = body or KeyCreate()
    owner = body.owner or KeyOwner(kind="member", name=admin.email)
    _authorize_owner(admin, owner)
    keys = admin.control.keys
    record, plaintext = keys.create(
        name,
        body.name,
        body.expires_in,
        owner=Owner(owner.kind, owner.name or (admin.email if owner.kind == "member" else None)),
        actor=admin.actor,
    )
    return {"key": plaintext, "record": record.to_json(keys.now())}


def rotate_key(name: str, key_id: str, admin: AdminDep, body: KeyRotate | None = None) -> dict[str, Any]:
    """Issue a replacement (shown once); the old key works until the overlap ends, then gets key_expired."""
    scope.project(admin, name)
    _authorize_key(admin, scope.key(admin, name, key_id), rotate=True)
    keys = admin.control.keys
    record, plaintext = keys.rotate(key_id, (body or KeyRotate()).overlap, actor=admin.actor)
    now = keys.now()
    return {"key": plaintext, "record": record.to_json(now), "previous": keys.get(key_id).to_json(now)}


def revoke_key(name: str, key_id: str, admin: AdminDep) -> dict[str, Any]:
    """Revoke a key; every gateway process refuses it from its next request on."""
    scope.project(admin, name)
    _authorize_key(admin, scope.key(admin, name, key_id), rotate=False)
    keys = admin.control.keys
    return keys.revoke(key_id, actor=admin.actor).to_json(keys.now())


def due_keys(
    admin: AdminDep,
    within: Annotated[str, Query(description="A duration such as 7d, 24h or 90m.")] = "7d",
) -> dict[str, Any]:
    """The project's keys that expire, or pass the project's maximum age, within ``within``."""
    admin.authorize("project.read")
    try:
        horizon = parse_duration(within)
    except ValueError as exc:
        raise InvalidParameter(f"'within' is not valid: {exc}.", param="within") from exc
    keys = admin.control.keys
    due = [(r, why) for r, why in keys.due(horizon) if r.project == admin.project]
    return listing([{"key": r.to_json(keys.now()), "reason": why} for r, why in due])


KEYS = "/projects/{name}/keys"
ROUTES = (
    Route("GET", KEYS, list_keys, tag="keys"),
    Route("POST", KEYS, create_key, 201, tag="keys"),
    Route("POST", KEYS + "/{key_id}/rotate", rotate_key, 201, tag="keys"),
    Route("POST", KEYS + "/{key_id}/revoke", revoke_key, tag="keys"),
    Route("GET", "/keys/due", due_keys, tag="keys"),
)
