"""Request bodies of the admin API: the config file's specs for creates, partial versions for PATCH.

A PATCH body names only the fields to change; :func:`merged` lays it over the object's current
spec (nested objects such as ``limits`` merge field by field) and validates the result with the
same pydantic spec that ``bastion.yaml`` uses, so both surfaces accept exactly the same values.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.api.admin_routes.problems import invalid
from bastion.config import (
    AttestationConfig,
    DataPolicyConfig,
    Duration,
    Environment,
    KeyPolicyConfig,
    LimitsConfig,
    MemberConfig,
    Name,
    Network,
    Permission,
    ProjectRole,
    ProviderKind,
    Residency,
    Role,
)

Spec = TypeVar("Spec", bound=BaseModel)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectPatch(Body):
    environment: Environment | None = None
    models: list[str] | None = None
    residency: list[Residency] | None = Field(default=None, description="Allowed residencies; null: any.")
    limits: LimitsConfig | None = None
    keys: KeyPolicyConfig | None = None
    data_policy: DataPolicyConfig | None = Field(
        default=None, description="Merged field by field into the current policy (entities, output, require ...)."
    )


class ProviderPatch(Body):
    """The fields to change; ``timeouts`` and ``breaker`` merge field by field, ``models`` is replaced whole."""

    kind: ProviderKind | None = None
    vendor: Name | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    api_version: str | None = None
    region: str | None = None
    residency: Residency | None = None
    models: dict[str, str] | list[str] | None = None
    priority: int | None = None
    weight: int | None = None
    timeouts: dict[str, float] | None = None
    breaker: dict[str, Any] | None = None


class VendorPatch(Body):
    """The vendor's attestations, replaced whole."""

    attestations: list[AttestationConfig] | None = None


class MemberPatch(Body):
    role: Role | None = None
    projects: dict[Name, ProjectRole] | None = Field(
        default=None, description="The member's role in the key's project; {} removes them from it."
    )
    ip_allowlist: list[Network] | None = None
    limits: LimitsConfig | None = None


class ServiceAccountPatch(Body):
    permissions: list[Permission] | None = None
    ip_allowlist: list[Network] | None = None
    limits: LimitsConfig | None = None
    key_ttl: Duration | None = None


class ServiceAccountCreate(ServiceAccountPatch):
    """A service account of the project in the path; omitted fields take the config file's defaults."""

    name: Name


class InviteCreate(MemberConfig):
    expires_in: Duration = timedelta(days=7)


class InviteAccept(Body):
    token: str = Field(min_length=1, max_length=200)


class KeyOwner(Body):
    kind: Literal["member", "service_account", "project"]
    name: str | None = Field(default=None, max_length=254, description="The member's email or the account's name.")


class KeyCreate(Body):
    name: str = Field(default="default", min_length=1, max_length=100)
    expires_in: Duration | None = None
    owner: KeyOwner | None = Field(default=None, description="Whom the key is for; the caller when omitted.")


class KeyRotate(Body):
    overlap: Duration = Field(default=timedelta(hours=24), description="How long the old key keeps working.")


def spec_json(current: dict[str, Any], spec: type[BaseModel]) -> dict[str, Any]:
    """The fields of an object's ``to_json()`` that its config spec declares."""
    return {name: value for name, value in current.items() if name in spec.model_fields}


def merged(spec: type[Spec], current: dict[str, Any], patch: dict[str, Any]) -> Spec:
    """``current`` with ``patch`` laid over it (objects field by field), validated as ``spec`` (else 400)."""
    return validated(spec, _merge(current, patch))


def validated(spec: type[Spec], data: dict[str, Any]) -> Spec:
    try:
        return spec.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc.errors(), ()) from exc


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in patch.items():
        old = out.get(name)
        out[name] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out
