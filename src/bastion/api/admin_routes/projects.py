"""The project routes: the key's project, its service accounts and its admin events.

FastAPI reads these handlers' signatures at runtime, so this module does not postpone annotations.
"""

from typing import Annotated, Any

from fastapi import Query

from bastion.api.admin_routes import scope
from bastion.api.admin_routes.bodies import (
    ProjectPatch,
    ServiceAccountCreate,
    ServiceAccountPatch,
    merged,
    spec_json,
    validated,
)
from bastion.api.admin_routes.caller import AdminDep
from bastion.api.admin_routes.route import Route, listing, timestamp
from bastion.config import ProjectConfig, ServiceAccountConfig
from bastion.identity.keys import Owner


def list_projects(admin: AdminDep) -> dict[str, Any]:
    """The key's project: a key never sees another."""
    admin.authorize("project.read")
    return listing([admin.control.org.project(admin.project).to_json()])


def create_project(body: ProjectConfig, admin: AdminDep) -> dict[str, Any]:
    """Create a project and a key of it for the caller (shown once), since this key cannot reach it."""
    admin.authorize("projects.create")
    created = admin.control.org.create_project(admin.actor, body)
    keys = admin.control.keys
    record, plaintext = keys.create(created.name, "admin", owner=Owner("member", admin.email), actor=admin.actor)
    return {"project": created.to_json(), "key": plaintext, "record": record.to_json(keys.now())}


def get_project(name: str, admin: AdminDep) -> dict[str, Any]:
    scope.project(admin, name)
    admin.authorize("project.read")
    return admin.control.org.project(name).to_json()


def update_project(name: str, body: ProjectPatch, admin: AdminDep) -> dict[str, Any]:
    """Change the fields the body names; ``limits`` and ``keys`` merge field by field."""
    scope.project(admin, name)
    admin.authorize("project.write")
    current = spec_json(admin.control.org.project(name).to_json(), ProjectConfig)
    spec = merged(ProjectConfig, current, body.model_dump(exclude_unset=True))
    return admin.control.org.update_project(admin.actor, spec).to_json()


def delete_project(name: str, admin: AdminDep) -> dict[str, Any]:
    """Delete the project: its service accounts go and every key of it (this one too) is revoked."""
    scope.project(admin, name)
    admin.authorize("projects.delete")
    return admin.control.org.delete_project(admin.actor, name).to_json()


def list_accounts(name: str, admin: AdminDep) -> dict[str, Any]:
    scope.project(admin, name)
    admin.authorize("project.read")
    return listing([a.to_json() for a in admin.control.org.service_accounts(name)])


def create_account(name: str, body: ServiceAccountCreate, admin: AdminDep) -> dict[str, Any]:
    """Create a service account in the project; omitted fields take the config file's defaults."""
    scope.project(admin, name)
    admin.authorize("service_accounts.write")
    spec = validated(ServiceAccountConfig, {**body.model_dump(exclude_unset=True), "project": name})
    return admin.control.org.create_service_account(admin.actor, spec).to_json()


def get_account(name: str, account: str, admin: AdminDep) -> dict[str, Any]:
    scope.project(admin, name)
    admin.authorize("project.read")
    return scope.account(admin, name, account).to_json()


def update_account(name: str, account: str, body: ServiceAccountPatch, admin: AdminDep) -> dict[str, Any]:
    scope.project(admin, name)
    admin.authorize("service_accounts.write")
    current = spec_json(scope.account(admin, name, account).to_json(), ServiceAccountConfig)
    spec = merged(ServiceAccountConfig, current, body.model_dump(exclude_unset=True))
    return admin.control.org.update_service_account(admin.actor, spec).to_json()


def delete_account(name: str, account: str, admin: AdminDep) -> dict[str, Any]:
    """Remove a service account and revoke every key it holds."""
    scope.project(admin, name)
    admin.authorize("service_accounts.write")
    removed, revoked = admin.control.org.delete_service_account(admin.actor, scope.account(admin, name, account).name)
    return {"service_account": removed.to_json(), "keys_revoked": revoked}


def list_events(
    name: str,
    admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, description="Only events older than this id.")] = None,
) -> dict[str, Any]:
    """The project's admin events, newest first; page with ``before=<next_before>``."""
    scope.project(admin, name)
    admin.authorize("events.read")
    rows = admin.control.org.events(project=name, limit=limit, before=before)
    events = [{**row, "at": timestamp(row["at"])} for row in rows]
    return listing(events, next_before=events[-1]["id"] if len(events) == limit else None)


PROJECT = "/projects/{name}"
ACCOUNT = PROJECT + "/service-accounts/{account}"
ROUTES = (
    Route("GET", "/projects", list_projects, tag="projects"),
    Route("POST", "/projects", create_project, 201, tag="projects"),
    Route("GET", PROJECT, get_project, tag="projects"),
    Route("PATCH", PROJECT, update_project, tag="projects"),
    Route("DELETE", PROJECT, delete_project, tag="projects"),
    Route("GET", PROJECT + "/service-accounts", list_accounts, tag="service accounts"),
    Route("POST", PROJECT + "/service-accounts", create_account, 201, tag="service accounts"),
    Route("GET", ACCOUNT, get_account, tag="service accounts"),
    Route("PATCH", ACCOUNT, update_account, tag="service accounts"),
    Route("DELETE", ACCOUNT, delete_account, tag="service accounts"),
    Route("GET", PROJECT + "/events", list_events, tag="projects"),
)
