"""Settings: the config file (``bastion.yaml``) and ``BASTION_*`` environment, validated once at start.

Errors name the file, the line and the key (``bastion.yaml:14: providers[0].kind ...``) so that a
bad config stops the gateway before it serves anything.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from bastion.durations import format_duration, parse_duration
from bastion.errors import ConfigError
from bastion.policy.data import CLASSES, ENTITY_CLASS, TAGS

_NAME = r"^[a-z0-9][a-z0-9._-]{0,62}$"
Name = Annotated[str, Field(pattern=_NAME)]
Email = Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", max_length=254)]
ProviderKind = Literal["openai", "azure", "openai_compatible", "echo"]
# Residencies and attestation types are open lists (lower-case words); these are the ones Bastion documents.
Residency = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
AttestationType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
DataClass = Literal["public", "internal", "confidential", "regulated"]
EntityAction = Literal["allow", "tokenize", "redact", "block"]
OutputAction = Literal["redact", "allow"]
Environment = Literal["production", "staging", "development", "sandbox"]
Role = Literal["owner", "admin", "member", "reader"]
ProjectRole = Literal["admin", "member", "reader"]
Permission = Literal["chat.completions", "embeddings", "responses", "models.read"]
PERMISSIONS: tuple[str, ...] = ("chat.completions", "embeddings", "responses", "models.read")
PositiveInt = Annotated[int, Field(gt=0)]
DEFAULT_MAX_BODY = 8 * 1024 * 1024


def _network(value: Any) -> str:
    """A CIDR (or a single address), IPv4 or IPv6, normalised: ``10.0.1.7/24`` is refused, not guessed."""
    try:
        return str(ipaddress.ip_network(str(value), strict=True))
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a network in CIDR notation (e.g. 10.0.1.0/24 or 2001:db8::/32)") from exc


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


Network = Annotated[str, BeforeValidator(_network)]
Duration = Annotated[timedelta, BeforeValidator(_duration), PlainSerializer(format_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitsConfig(_Strict):
    """Requests and tokens per minute, and tokens per UTC day; an absent value means no limit."""

    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    daily_tokens: PositiveInt | None = None


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=1024, le=1024 * 1024 * 1024)
    trusted_proxies: list[Network] = []
    ip_limits: LimitsConfig = LimitsConfig()
    admin_rpm: PositiveInt = 300


class Timeouts(_Strict):
    """Seconds; ``first_byte`` is until the response headers, ``idle`` between two reads of the body."""

    connect: float = Field(default=5.0, gt=0)
    first_byte: float = Field(default=60.0, gt=0)
    idle: float = Field(default=60.0, gt=0)
    total: float = Field(default=600.0, gt=0)


class BreakerConfig(_Strict):
    """When an endpoint's circuit opens: ``failures`` in a row, or an error ``rate`` over ``window`` once at
    least ``min_requests`` were seen; it stays open for ``cooldown``, then lets one probe through."""

    failures: PositiveInt = 5
    error_rate: float = Field(default=0.5, gt=0, le=1)
    window: Duration = timedelta(seconds=30)
    min_requests: PositiveInt = 10
    cooldown: Duration = timedelta(seconds=30)
    probe_interval: Duration | None = None  # active probes (GET /models) while open; none: passive only


class ProviderConfig(_Strict):
    name: Name
    kind: ProviderKind
    vendor: Name | None = None
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    api_version: str | None = Field(default=None, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$")
    region: str | None = Field(default=None, max_length=64)
    residency: Residency | None = None
    models: dict[str, str] = Field(min_length=1)
    priority: int = Field(default=100, ge=0)
    weight: PositiveInt = 1
    timeouts: Timeouts = Timeouts()
    breaker: BreakerConfig = BreakerConfig()

    @field_validator("models", mode="before")
    @classmethod
    def _models_as_mapping(cls, value: Any) -> Any:
        """``[a, b]`` means each model has the same name upstream; a mapping renames ours -> theirs."""
        if isinstance(value, list):
            return {str(item): str(item) for item in value}
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _kind_needs(self) -> ProviderConfig:
        if self.kind != "echo" and not self.base_url:
            raise ValueError(f"a provider of kind '{self.kind}' needs base_url")
        if self.kind == "azure" and not self.api_version:
            raise ValueError("a provider of kind 'azure' needs api_version, e.g. \"2024-10-21\"")
        return self

    @property
    def residence(self) -> str | None:
        """Where the endpoint keeps data: its ``residency``, ``local`` for the echo model, else unknown."""
        return self.residency or ("local" if self.kind == "echo" else None)


class EvidenceConfig(_Strict):
    """The document that backs an attestation: its name and the SHA-256 of its bytes."""

    document: str = Field(min_length=1, max_length=255)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class AttestationConfig(_Strict):
    """A vendor's contractual or audited position (``zdr``, ``dpa``, ``baa``, ``soc2_type2``, ``iso27001``,
    ``iso27018``, ...), valid up to and including ``expires``."""

    type: AttestationType
    expires: date
    evidence: EvidenceConfig | None = None


class VendorConfig(_Strict):
    """The legal entity behind one or more providers."""

    name: Name
    attestations: list[AttestationConfig] = []


class RoutingConfig(_Strict):
    """Retries across the eligible endpoints: at most ``attempts`` per request, within ``budget`` seconds,
    waiting a jittered ``backoff`` (doubling, up to ``backoff_max``) between them."""

    attempts: int = Field(default=3, ge=1, le=10)
    budget: float = Field(default=30.0, gt=0)
    backoff: float = Field(default=0.1, ge=0)
    backoff_max: float = Field(default=2.0, ge=0)


class KeyPolicyConfig(_Strict):
    """How keys of a project age: a maximum age, what happens past it, and limits for each key."""

    max_age: Duration | None = None
    over_age: Literal["refuse", "warn"] = "warn"
    limits: LimitsConfig = LimitsConfig()


class OutputPolicyConfig(_Strict):
    """What happens to sensitive values in an answer that the caller did not send."""

    mask_unsupplied: bool = True
    entities: dict[str, OutputAction] = {}


class VaultConfig(_Strict):
    """``persist``: keep the project's placeholders (encrypted) for ``ttl``, so they stay the same across requests."""

    persist: bool = False
    ttl: Duration = timedelta(hours=24)


class DataPolicyConfig(_Strict):
    """How a project treats sensitive data; see docs/data-protection.md."""

    default_class: DataClass = "internal"
    entities: dict[str, EntityAction] = {}
    min_score: dict[str, float] = {}
    ner: bool = False
    output: OutputPolicyConfig = OutputPolicyConfig()
    vault: VaultConfig = VaultConfig()
    require: dict[str, list[AttestationType]] = {}

    @field_validator("entities", "min_score", "output")
    @classmethod
    def _known_entities(cls, value: Any) -> Any:
        names = value.entities if isinstance(value, OutputPolicyConfig) else value
        unknown = sorted(set(names) - set(ENTITY_CLASS))
        if unknown:
            raise ValueError(f"unknown entity type {', '.join(unknown)}; use one of {', '.join(sorted(ENTITY_CLASS))}")
        if isinstance(value, dict) and any(not isinstance(v, str) and not 0 <= v <= 1 for v in value.values()):
            raise ValueError("a minimum score is a number from 0 to 1")
        return value

    @field_validator("require")
    @classmethod
    def _classes_or_tags(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(CLASSES) - set(TAGS))
        if unknown:
            raise ValueError(
                f"require names {', '.join(unknown)}; its keys are data classes ({', '.join(CLASSES)}) "
                f"or tags ({', '.join(TAGS)})"
            )
        return value


class ProjectConfig(_Strict):
    name: Name
    environment: Environment = "development"
    models: list[str] | None = None
    residency: list[Residency] | None = None
    limits: LimitsConfig = LimitsConfig()
    keys: KeyPolicyConfig = KeyPolicyConfig()
    data_policy: DataPolicyConfig = DataPolicyConfig()


class MemberConfig(_Strict):
    email: Email
    role: Role
    projects: dict[Name, ProjectRole] = {}
    ip_allowlist: list[Network] = []
    limits: LimitsConfig = LimitsConfig()


class ServiceAccountConfig(_Strict):
    name: Name
    project: Name
    permissions: list[Permission] = ["chat.completions", "embeddings", "responses", "models.read"]
    ip_allowlist: list[Network] = []
    limits: LimitsConfig = LimitsConfig()
    key_ttl: Duration | None = None


class AuditConfig(_Strict):
    """The audit log: the origin its checkpoints name, and how often one is signed while the log grows.

    ``origin`` defaults to ``bastion.local/<organization>``; it is also the name of the signing key.
    """

    origin: str | None = Field(default=None, min_length=1, max_length=255)
    checkpoint_interval: Duration = timedelta(seconds=60)

    @field_validator("origin")
    @classmethod
    def _one_word(cls, value: str | None) -> str | None:
        if value is not None and (not value.isprintable() or any(c.isspace() or c == "+" for c in value)):
            raise ValueError(f"'{value}' must be one word without spaces or '+', e.g. audit.acme.com/bastion")
        return value


class FileConfig(_Strict):
    """What ``bastion.yaml`` may hold."""

    organization: Name = "default"
    server: ServerConfig = ServerConfig()
    audit: AuditConfig = AuditConfig()
    routing: RoutingConfig = RoutingConfig()
    vendors: list[VendorConfig] = []
    providers: list[ProviderConfig] = []
    projects: list[ProjectConfig] = []
    members: list[MemberConfig] = []
    service_accounts: list[ServiceAccountConfig] = []


Loc = tuple[str | int, ...]


def cross_check(config: FileConfig) -> list[tuple[Loc, str]]:
    """Rules that span sections: unique names, references to declared projects, served models."""
    problems = _duplicates("vendors", [v.name for v in config.vendors], "name")
    problems += _duplicates("providers", [p.name for p in config.providers], "name")
    problems += _duplicates("projects", [p.name for p in config.projects], "name")
    problems += _duplicates("members", [m.email for m in config.members], "email")
    problems += _duplicates("service_accounts", [a.name for a in config.service_accounts], "name")
    return problems + _references(config) + _allowlists(config)


def _references(config: FileConfig) -> list[tuple[Loc, str]]:
    projects = {p.name for p in config.projects}
    problems: list[tuple[Loc, str]] = [
        (("members", index, "projects", name), f"names project '{name}', which is not declared under projects")
        for index, member in enumerate(config.members)
        for name in sorted(set(member.projects) - projects)
    ]
    problems += [
        (("service_accounts", index, "project"), f"names project '{account.project}', which is not declared")
        for index, account in enumerate(config.service_accounts)
        if account.project not in projects
    ]
    vendors = {v.name for v in config.vendors}
    problems += [
        (("providers", index, "vendor"), f"names vendor '{provider.vendor}', which is not declared under vendors")
        for index, provider in enumerate(config.providers)
        if provider.vendor is not None and provider.vendor not in vendors
    ]
    return problems


def _allowlists(config: FileConfig) -> list[tuple[Loc, str]]:
    served = {model for provider in config.providers for model in provider.models}
    problems: list[tuple[Loc, str]] = []
    for index, project in enumerate(config.projects):
        unknown = sorted(set(project.models or ()) - served)
        if unknown:
            listed = ", ".join(unknown)
            fix = "add it to a provider's models or remove it"
            problems.append((("projects", index, "models"), f"allows {listed}, which no provider serves; {fix}"))
    return problems


def _duplicates(section: str, values: list[str], key: str) -> list[tuple[Loc, str]]:
    return [
        ((section, index, key), f"two {section} have the {key} '{value}'; it must be unique")
        for index, value in enumerate(values)
        if value in values[:index]
    ]


@dataclass(frozen=True)
class Settings:
    """Everything Bastion needs to start, built once by :func:`load_settings`."""

    file: FileConfig
    source: str
    home: Path
    database_url: str
    redis_url: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    audit_key: str | None = field(default=None, repr=False)  # BASTION_AUDIT_KEY: PRIVATE+KEY+... text

    @property
    def server(self) -> ServerConfig:
        return self.file.server

    @property
    def audit_origin(self) -> str:
        """The log's name in its checkpoints: ``audit.origin``, else ``bastion.local/<organization>``."""
        return self.file.audit.origin or f"bastion.local/{self.file.organization}"


def load_settings(path: str | os.PathLike[str] | None = None, *, environ: dict[str, str] | None = None) -> Settings:
    """Read the config file named by ``path`` or ``BASTION_CONFIG`` (optional) and the environment."""
    env = dict(os.environ if environ is None else environ)
    source = str(path or env.get("BASTION_CONFIG") or "")
    file = parse_file(Path(source)) if source else FileConfig()
    return settings_from(file, source or "<defaults>", env)


def settings_from(file: FileConfig, source: str, env: dict[str, str]) -> Settings:
    """Combine a parsed config with the ``BASTION_*`` environment, which wins."""
    home = Path(env.get("BASTION_HOME", ".bastion"))
    database_url = env.get("BASTION_DATABASE_URL") or f"sqlite:///{home / 'bastion.db'}"
    return Settings(
        file=file,
        source=source,
        home=home,
        database_url=database_url,
        redis_url=env.get("BASTION_REDIS_URL") or None,
        secret_key=env.get("BASTION_SECRET_KEY") or None,
        audit_key=env.get("BASTION_AUDIT_KEY") or None,
    )


def parse_file(path: Path) -> FileConfig:
    """Parse and validate a config file, raising :class:`ConfigError` with ``file:line:`` on any fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror}); check the path") from exc
    return parse_text(text, str(path))


def parse_text(text: str, source: str) -> FileConfig:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the config file must be a mapping of sections (providers, projects, ...)")
    lines = _lines(node) if node is not None else {}
    try:
        config = FileConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(source, lines, err) for err in exc.errors())) from exc
    problems = cross_check(config)
    if problems:
        raise ConfigError("\n".join(f"{source}:{_line(lines, loc)}: {_dotted(loc)}: {msg}" for loc, msg in problems))
    return config


def _lines(node: yaml.Node, path: Loc = ()) -> dict[Loc, int]:
    """Map each key path of the YAML document to the 1-based line where it is written."""
    found = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            found.update(_lines(value, child))
            found[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.update(_lines(item, (*path, index)))
    return found


def _describe(source: str, lines: dict[Loc, int], err: Any) -> str:
    loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and "[" in part))
    line = _line(lines, loc)
    where = _dotted(loc)
    if err["type"] == "extra_forbidden":
        parent = _dotted(loc[:-1]) or "the top level"
        return f"{source}:{line}: unknown key '{loc[-1]}' in {parent}; check the spelling against docs/configuration.md"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{source}:{line}: {where or 'config'}: {message}"


def _line(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of the deepest part of ``loc`` that the document spells out."""
    return next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), 1)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
