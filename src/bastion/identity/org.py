"""The organisation's service functions: projects, members, service accounts and invites.

The admin API, the CLI and ``bastion apply`` all change the organisation through this class, and
every change is recorded as an admin event (actor, action, target, before and after, no secrets)
in the same transaction as the change itself.
"""

from __future__ import annotations

import hashlib
import secrets
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bastion.config import MemberConfig
from bastion.errors import Conflict, InvalidParameter, NotFound
from bastion.identity import events
from bastion.protect.detect.ner import ner_available
from bastion.store import keys as key_repo
from bastion.store import org as repo
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from sqlalchemy import Connection, Engine

    from bastion.config import ProjectConfig, ServiceAccountConfig
    from bastion.identity.model import Invite, Member, Project, ServiceAccount


def _seconds(value: timedelta | None) -> int | None:
    return int(value.total_seconds()) if value else None


def project_values(spec: ProjectConfig) -> dict[str, Any]:
    return {
        "environment": spec.environment,
        "models": list(spec.models) if spec.models is not None else None,
        "limits": spec.limits.model_dump(exclude_none=True),
        "key_limits": spec.keys.limits.model_dump(exclude_none=True),
        "key_max_age": _seconds(spec.keys.max_age),
        "key_over_age": spec.keys.over_age,
        "residency": list(spec.residency) if spec.residency is not None else None,
        "data_policy": spec.data_policy.model_dump(mode="json", exclude_defaults=True),
    }


def member_values(spec: MemberConfig) -> dict[str, Any]:
    return {
        "role": spec.role,
        "ip_allowlist": list(spec.ip_allowlist),
        "limits": spec.limits.model_dump(exclude_none=True),
    }


def account_values(spec: ServiceAccountConfig) -> dict[str, Any]:
    return {
        "permissions": sorted(set(spec.permissions)),
        "ip_allowlist": list(spec.ip_allowlist),
        "limits": spec.limits.model_dump(exclude_none=True),
        "key_ttl": _seconds(spec.key_ttl),
    }


def _check_policy(spec: ProjectConfig) -> None:
    """A project may turn NER on only where the model is installed: its requests would all fail otherwise."""
    if spec.data_policy.ner and not ner_available():
        raise InvalidParameter(
            f"Project '{spec.name}' turns on data_policy.ner, but spaCy's en_core_web_sm is not installed on this "
            "gateway; install the 'ner' extra (pip install 'bastion-gateway[ner]') or leave ner off.",
            param="data_policy.ner",
        )


class OrgService:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.begin() as connection:
            yield connection

    def _event(self, connection: Connection, actor: str, action: str, target: tuple[str, str], **detail: Any) -> None:
        events.record(connection, self._clock(), actor, action, target, **detail)

    # Projects

    def projects(self) -> list[Project]:
        with self._engine.connect() as connection:
            return repo.projects(connection)

    def project(self, name: str) -> Project:
        with self._engine.connect() as connection:
            return _project(connection, name)

    def create_project(self, actor: str, spec: ProjectConfig) -> Project:
        _check_policy(spec)
        with self._write() as connection:
            if repo.project(connection, spec.name) is not None:
                raise Conflict(f"A project named '{spec.name}' already exists; update it instead.")
            values = {"name": spec.name, "created_at": self._clock(), **project_values(spec)}
            repo.undelete_or_insert_project(connection, values)
            created = _project(connection, spec.name)
            self._event(
                connection, actor, "project.create", ("project", spec.name), project=spec.name, after=created.to_json()
            )
        return created

    def update_project(self, actor: str, spec: ProjectConfig) -> Project:
        _check_policy(spec)
        with self._write() as connection:
            before = _project(connection, spec.name)
            repo.update(connection, tables.projects, ("id", before.id), project_values(spec))
            after = _project(connection, spec.name)
            self._event(
                connection,
                actor,
                "project.update",
                ("project", spec.name),
                project=spec.name,
                before=before.to_json(),
                after=after.to_json(),
            )
        return after

    def delete_project(self, actor: str, name: str) -> Project:
        """Delete a project: its service accounts are removed and every key of it is revoked."""
        with self._write() as connection:
            before = _project(connection, name)
            now = self._clock()
            key_repo.revoke_where(connection, tables.api_keys.c.project_id == before.id, now)
            s = tables.service_accounts
            repo.update(connection, s, ("project_id", before.id), {"removed_at": now})
            connection.execute(tables.project_members.delete().where(tables.project_members.c.project_id == before.id))
            repo.update(connection, tables.projects, ("id", before.id), {"deleted_at": now})
            self._event(connection, actor, "project.delete", ("project", name), project=name, before=before.to_json())
        return before

    # Members

    def members(self, project: str | None = None) -> list[Member]:
        with self._engine.connect() as connection:
            found = repo.members(connection)
        if project is None:
            return found
        return [m for m in found if m.project_role(project) is not None]

    def member(self, email: str) -> Member:
        with self._engine.connect() as connection:
            return _member(connection, email)

    def add_member(self, actor: str, spec: MemberConfig) -> Member:
        with self._write() as connection:
            email = spec.email.lower()
            if repo.member(connection, email) is not None:
                raise Conflict(f"{email} is already a member; update the member instead.")
            _check_projects(connection, spec.projects)
            member_id = "mem_" + secrets.token_hex(8)
            m = tables.members
            old = connection.execute(m.select().where(m.c.email == email)).one_or_none()
            values = {"created_at": self._clock(), "removed_at": None, **member_values(spec)}
            if old is None:
                repo.insert(connection, m, {"id": member_id, "email": email, **values})
            else:
                member_id = old.id
                repo.update(connection, m, ("id", member_id), values)
            repo.set_memberships(connection, member_id, dict(spec.projects))
            created = _member(connection, email)
            self._event(connection, actor, "member.add", ("member", email), after=created.to_json())
        return created

    def update_member(self, actor: str, spec: MemberConfig) -> Member:
        with self._write() as connection:
            before = _member(connection, spec.email)
            _check_projects(connection, spec.projects)
            repo.update(connection, tables.members, ("id", before.id), member_values(spec))
            repo.set_memberships(connection, before.id, dict(spec.projects))
            after = _member(connection, spec.email)
            self._event(
                connection,
                actor,
                "member.update",
                ("member", before.email),
                before=before.to_json(),
                after=after.to_json(),
            )
        return after

    def remove_member(self, actor: str, email: str) -> tuple[Member, int]:
        """Offboard a member: the membership ends and every key of theirs is revoked at once."""
        with self._write() as connection:
            before = _member(connection, email)
            now = self._clock()
            k = tables.api_keys
            revoked = key_repo.revoke_where(
                connection, (k.c.principal_type == "member") & (k.c.principal_id == before.id), now
            )
            connection.execute(tables.project_members.delete().where(tables.project_members.c.member_id == before.id))
            repo.update(connection, tables.members, ("id", before.id), {"removed_at": now})
            self._event(
                connection,
                actor,
                "member.remove",
                ("member", before.email),
                before=before.to_json(),
                after={"keys_revoked": revoked},
            )
        return before, revoked

    # Service accounts

    def service_accounts(self, project: str | None = None) -> list[ServiceAccount]:
        with self._engine.connect() as connection:
            found = repo.service_accounts(connection)
        return [a for a in found if project is None or a.project == project]

    def service_account(self, name: str) -> ServiceAccount:
        with self._engine.connect() as connection:
            return _account(connection, name)

    def create_service_account(self, actor: str, spec: ServiceAccountConfig) -> ServiceAccount:
        with self._write() as connection:
            if repo.service_account(connection, spec.name) is not None:
                raise Conflict(f"A service account named '{spec.name}' already exists; update it instead.")
            project = _project(connection, spec.project)
            s = tables.service_accounts
            connection.execute(s.delete().where(s.c.name == spec.name, s.c.removed_at.is_not(None)))
            values = {
                "id": "sa_" + secrets.token_hex(8),
                "name": spec.name,
                "project_id": project.id,
                "created_at": self._clock(),
                **account_values(spec),
            }
            repo.insert(connection, s, values)
            created = _account(connection, spec.name)
            self._event(
                connection,
                actor,
                "service_account.create",
                ("service_account", spec.name),
                project=spec.project,
                after=created.to_json(),
            )
        return created

    def update_service_account(self, actor: str, spec: ServiceAccountConfig) -> ServiceAccount:
        with self._write() as connection:
            before = _account(connection, spec.name)
            if spec.project != before.project:
                raise InvalidParameter(
                    f"Service account '{spec.name}' belongs to project '{before.project}'; a service account cannot "
                    "move between projects: delete it and create a new one.",
                    param="project",
                )
            repo.update(connection, tables.service_accounts, ("id", before.id), account_values(spec))
            after = _account(connection, spec.name)
            self._event(
                connection,
                actor,
                "service_account.update",
                ("service_account", spec.name),
                project=before.project,
                before=before.to_json(),
                after=after.to_json(),
            )
        return after

    def delete_service_account(self, actor: str, name: str) -> tuple[ServiceAccount, int]:
        """Remove a service account and revoke every key it holds."""
        with self._write() as connection:
            before = _account(connection, name)
            now = self._clock()
            k = tables.api_keys
            revoked = key_repo.revoke_where(
                connection, (k.c.principal_type == "service_account") & (k.c.principal_id == before.id), now
            )
            repo.update(connection, tables.service_accounts, ("id", before.id), {"removed_at": now})
            self._event(
                connection,
                actor,
                "service_account.delete",
                ("service_account", name),
                project=before.project,
                before=before.to_json(),
                after={"keys_revoked": revoked},
            )
        return before, revoked

    # Invites

    def invites(self) -> list[Invite]:
        with self._engine.connect() as connection:
            return repo.invites(connection)

    def invite(self, actor: str, spec: MemberConfig, expires_in: timedelta) -> tuple[Invite, str]:
        """Create an invite; the token is returned once and stored only as a hash."""
        token = "bst_inv_" + secrets.token_urlsafe(24)
        invite_id = "inv_" + secrets.token_hex(8)
        with self._write() as connection:
            if repo.member(connection, spec.email) is not None:
                raise Conflict(f"{spec.email} is already a member.")
            _check_projects(connection, spec.projects)
            now = self._clock()
            repo.insert(
                connection,
                tables.invites,
                {
                    "id": invite_id,
                    "token_hash": _token_hash(token),
                    "email": spec.email.lower(),
                    "role": spec.role,
                    "projects": dict(spec.projects),
                    "created_by": actor,
                    "created_at": now,
                    "expires_at": now + expires_in,
                },
            )
            (created,) = repo.invites(connection, tables.invites.c.id == invite_id)
            self._event(connection, actor, "invite.create", ("invite", invite_id), after=created.to_json())
        return created, token

    def revoke_invite(self, actor: str, invite_id: str) -> Invite:
        with self._write() as connection:
            found = repo.invites(connection, tables.invites.c.id == invite_id)
            if not found:
                raise NotFound(f"No invite has the id '{invite_id}'; list invites with 'bastion members invites'.")
            repo.update(connection, tables.invites, ("id", invite_id), {"revoked_at": self._clock()})
            self._event(connection, actor, "invite.revoke", ("invite", invite_id), before=found[0].to_json())
            (after,) = repo.invites(connection, tables.invites.c.id == invite_id)
        return after

    def accept_invite(self, token: str) -> Member:
        """Turn a pending invite into a member with the invited role and project memberships."""
        with self._engine.connect() as connection:
            found = repo.invites(connection, tables.invites.c.token_hash == _token_hash(token))
        if not found or found[0].status(self._clock()) != "pending":
            raise NotFound("The invite token is not valid, was used, revoked, or has expired; ask for a new invite.")
        invite = found[0]
        spec = MemberConfig.model_validate({"email": invite.email, "role": invite.role, "projects": invite.projects})
        member = self.add_member(f"invite:{invite.id}", spec)
        with self._write() as connection:
            repo.update(connection, tables.invites, ("id", invite.id), {"accepted_at": self._clock()})
        return member

    # Events

    def events(self, project: str | None = None, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        with self._engine.connect() as connection:
            return repo.events(connection, project, limit, before)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _project(connection: Connection, name: str) -> Project:
    found = repo.project(connection, name)
    if found is None:
        raise NotFound(f"No project is named '{name}'; list projects with 'bastion projects list'.")
    return found


def _member(connection: Connection, email: str) -> Member:
    found = repo.member(connection, email.lower())
    if found is None:
        raise NotFound(f"No member has the email '{email}'; list members with 'bastion members list'.")
    return found


def _account(connection: Connection, name: str) -> ServiceAccount:
    found = repo.service_account(connection, name)
    if found is None:
        raise NotFound(f"No service account is named '{name}'; list them with 'bastion service-accounts list'.")
    return found


def _check_projects(connection: Connection, names: Iterable[str]) -> None:
    for name in names:
        _project(connection, name)
