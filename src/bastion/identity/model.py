"""The organisation as Bastion sees it: projects, members, service accounts, invites, and a caller.

Frozen dataclasses built from store rows; ``to_json`` gives the shape the admin API returns and the
admin events record (never a secret).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bastion.config import PERMISSIONS
from bastion.durations import format_duration
from bastion.policy.data import DataPolicy
from bastion.policy.limits import Limits

if TYPE_CHECKING:
    from datetime import datetime, timedelta

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ORG_ROLES = ("owner", "admin", "member", "reader")
PROJECT_ROLES = ("admin", "member", "reader")
ROLE_PERMISSIONS = {
    "admin": frozenset(PERMISSIONS),
    "member": frozenset(PERMISSIONS),
    "reader": frozenset({"models.read"}),
}


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _span(value: timedelta | None) -> str | None:
    return format_duration(value) if value else None


def limits_from(value: dict[str, Any] | None) -> Limits:
    """Limits from their stored JSON form (absent or null: unlimited)."""
    return Limits(**{k: v for k, v in (value or {}).items() if v is not None})


def limits_json(limits: Limits) -> dict[str, int]:
    return {k: v for k, v in (("rpm", limits.rpm), ("tpm", limits.tpm), ("daily_tokens", limits.daily_tokens)) if v}


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    environment: str
    models: tuple[str, ...] | None
    limits: Limits
    key_limits: Limits
    key_max_age: timedelta | None
    key_over_age: str
    created_at: datetime
    residency: tuple[str, ...] | None = None  # allowed residencies; None: any
    data_policy: DataPolicy = field(default_factory=DataPolicy)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "environment": self.environment,
            "models": list(self.models) if self.models is not None else None,
            "residency": list(self.residency) if self.residency is not None else None,
            "data_policy": self.data_policy.to_json(),
            "limits": limits_json(self.limits),
            "keys": {
                "max_age": _span(self.key_max_age),
                "over_age": self.key_over_age,
                "limits": limits_json(self.key_limits),
            },
            "created_at": _time(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    email: str
    role: str
    projects: dict[str, str]
    ip_allowlist: tuple[str, ...]
    limits: Limits
    created_at: datetime

    def project_role(self, project: str) -> str | None:
        """Owners and admins administer every project; others hold the role of their membership, if any."""
        if self.role in ("owner", "admin"):
            return "admin"
        return self.projects.get(project)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "projects": dict(sorted(self.projects.items())),
            "ip_allowlist": list(self.ip_allowlist),
            "limits": limits_json(self.limits),
            "created_at": _time(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    id: str
    name: str
    project: str
    permissions: tuple[str, ...]
    ip_allowlist: tuple[str, ...]
    limits: Limits
    key_ttl: timedelta | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "project": self.project,
            "permissions": list(self.permissions),
            "ip_allowlist": list(self.ip_allowlist),
            "limits": limits_json(self.limits),
            "key_ttl": _span(self.key_ttl),
            "created_at": _time(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Invite:
    id: str
    email: str
    role: str
    projects: dict[str, str]
    created_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> str:
        if self.revoked_at:
            return "revoked"
        if self.accepted_at:
            return "accepted"
        return "expired" if now >= self.expires_at else "pending"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "projects": self.projects,
            "created_by": self.created_by,
            "created_at": _time(self.created_at),
            "expires_at": _time(self.expires_at),
            "accepted_at": _time(self.accepted_at),
            "revoked_at": _time(self.revoked_at),
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts with a key: a member, a service account, or the project itself (a project key)."""

    kind: str  # "member" | "service_account" | "project"
    id: str
    name: str
    permissions: frozenset[str]
    networks: tuple[IPNetwork, ...] = ()
    limits: Limits = field(default_factory=Limits)
    org_role: str | None = None
    project_role: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


def networks(cidrs: tuple[str, ...] | list[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)
