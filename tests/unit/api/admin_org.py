"""An organisation of two projects for the admin API tests, built with the services, and a client for it.

Project ``alpha`` is the callers' project (keys of every kind of role); project ``beta`` holds the
objects no key of ``alpha`` may ever read or change. ``markers`` are strings only beta's data contains.
The organisation is built once per session into an SQLite file that each test copies, since the
matrix tests need a fresh store for every allowed change.
"""

from __future__ import annotations

import shutil
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tests.conftest import SECRET
from tests.harness import in_process, runtime_of

from bastion.config import FileConfig, MemberConfig, ProjectConfig, ServiceAccountConfig, settings_from
from bastion.identity.keys import Owner
from bastion.services import open_services

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    import httpx

    from bastion.config import Settings
    from bastion.services import Services

ACTOR = "cli:test"
EMAILS = {
    "owner": "olive@acme.com",
    "admin": "adam@acme.com",
    "lead": "lena@acme.com",  # org member, admin of project alpha
    "member": "max@acme.com",
    "reader": "rita@acme.com",
}
MEMBERS = [
    ("olive@acme.com", "owner", {}),
    ("adam@acme.com", "admin", {}),
    ("lena@acme.com", "member", {"alpha": "admin"}),
    ("max@acme.com", "member", {"alpha": "member"}),
    ("rita@acme.com", "reader", {"alpha": "reader"}),
    ("sam@acme.com", "member", {"alpha": "member"}),
    ("pat@acme.com", "member", {"alpha": "member", "beta": "admin"}),
    ("bee@acme.com", "member", {"beta": "admin"}),
]
ROLES = ("owner", "admin", "lead", "member", "reader", "sa", "project")
MEMBER_ROLES = ROLES[:5]


@dataclass
class AdminOrg:
    http: httpx.AsyncClient | None
    services: Services | None
    keys: dict[str, str] = field(default_factory=dict)  # role -> plaintext key of project alpha
    ids: dict[str, str] = field(default_factory=dict)  # placeholder -> id, for paths like {sam_key}
    markers: list[str] = field(default_factory=list)  # strings found only in project beta's data

    def url(self, role: str, path: str) -> str:
        """``path`` under /admin/v1 with ``{own}`` (the role's own key id) and ``{sam_key}``-style ids filled in."""
        return "/admin/v1" + path.format(own=self.ids.get(f"{role}_key", ""), **self.ids)

    async def call(self, role: str, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        assert self.http is not None
        return await self.http.request(method, self.url(role, path), json=body, headers=headers)

    def snapshot(self) -> list[Any]:
        """Everything an admin request could change (every change also adds an admin event)."""
        assert self.services is not None
        org, keys = self.services.org, self.services.keys
        return [
            [p.to_json() for p in org.projects()],
            [m.to_json() for m in org.members()],
            [a.to_json() for a in org.service_accounts()],
            [i.to_json() for i in org.invites()],
            [(k.id, k.status, k.expires_at, k.revoked_at, k.rotated_to) for k in keys.list_keys()],
            len(org.events(limit=100_000)),
        ]


def build(org: AdminOrg) -> None:
    assert org.services is not None
    service, keys = org.services.org, org.services.keys
    for name in ("alpha", "beta"):
        service.create_project(ACTOR, ProjectConfig(name=name))
    for email, role, projects in MEMBERS:
        service.add_member(ACTOR, MemberConfig.model_validate({"email": email, "role": role, "projects": projects}))
    for name, project in (("bot-a", "alpha"), ("bot-b", "beta")):
        service.create_service_account(ACTOR, ServiceAccountConfig(name=name, project=project))
    month = timedelta(days=30)
    owners = {role: Owner("member", email) for role, email in EMAILS.items()}
    owners |= {"sa": Owner("service_account", "bot-a"), "project": Owner(), "sam": Owner("member", "sam@acme.com")}
    for role, owner in owners.items():
        record, org.keys[role] = keys.create("alpha", expires_in=month if role == "project" else None, owner=owner)
        org.ids[f"{role}_key"] = record.id
    for label, owner in (
        ("b", Owner()),
        ("bee", Owner("member", "bee@acme.com")),
        ("bot", Owner("service_account", "bot-b")),
    ):
        record, _ = keys.create("beta", expires_in=month, owner=owner)
        org.ids[f"{label}_key"] = record.id
        org.markers += [record.id, record.prefix]
    for label, project, email in (("a", "alpha", "new-a@acme.com"), ("b", "beta", "new-b@acme.com")):
        spec = MemberConfig.model_validate({"email": email, "role": "member", "projects": {project: "member"}})
        invite, _ = service.invite(ACTOR, spec, timedelta(days=7))
        org.ids[f"inv_{label}"] = invite.id
    beta_only = [service.member("bee@acme.com").id, service.service_account("bot-b").id, org.ids["inv_b"]]
    org.markers += ["beta", "bee@acme.com", "new-b@acme.com", "bot-b", *beta_only]


@dataclass(frozen=True)
class Template:
    database: Path
    org: AdminOrg


def build_template(home: Path) -> Template:
    """The organisation in an SQLite file under ``home`` (call once per session)."""
    settings = settings_from(
        FileConfig(), "<admin-template>", {"BASTION_HOME": str(home), "BASTION_SECRET_KEY": SECRET}
    )
    services = open_services(settings)
    org = AdminOrg(None, services)
    try:
        build(org)
    finally:
        services.close()
    return Template(home / "bastion.db", replace(org, services=None))


@asynccontextmanager
async def admin_org(
    make_settings: Callable[..., Settings],
    template: Template,
    tmp_path: Path,
    file: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    **server: Any,
) -> AsyncIterator[AdminOrg]:
    """The gateway in-process on a copy of the template's store (``file``: more of the config, e.g. providers;
    ``env``: the environment it reads provider keys from)."""
    copy = tmp_path / "admin-org" / "bastion.db"
    copy.parent.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if (source := template.database.with_name(template.database.name + suffix)).exists():
            shutil.copy(source, copy.with_name(copy.name + suffix))
    settings = make_settings(f"sqlite:///{copy}", server=server, **(file or {}))
    async with in_process(settings, env) as (app, http):
        org = template.org
        yield AdminOrg(http, runtime_of(app).services, dict(org.keys), dict(org.ids), list(org.markers))


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


if TYPE_CHECKING:
    MakeOrg = Callable[..., AbstractAsyncContextManager[AdminOrg]]
