"""Settings: the config file (``bastion.yaml``) and ``BASTION_*`` environment, validated once at start.

Errors name the file, the line and the key (``bastion.yaml:14: providers[0].kind ...``) so that a
bad config stops the gateway before it serves anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bastion.errors import ConfigError

_NAME = r"^[a-z0-9][a-z0-9._-]{0,62}$"
Name = Annotated[str, Field(pattern=_NAME)]
ProviderKind = Literal["openai", "echo"]
Environment = Literal["production", "staging", "development", "sandbox"]
DEFAULT_MAX_BODY = 8 * 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=1024, le=1024 * 1024 * 1024)


class Timeouts(_Strict):
    """Seconds; ``first_byte`` is until the response headers, ``idle`` between two reads of the body."""

    connect: float = Field(default=5.0, gt=0)
    first_byte: float = Field(default=60.0, gt=0)
    idle: float = Field(default=60.0, gt=0)
    total: float = Field(default=600.0, gt=0)


class ProviderConfig(_Strict):
    name: Name
    kind: ProviderKind
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    models: dict[str, str] = Field(min_length=1)
    priority: int = Field(default=100, ge=0)
    timeouts: Timeouts = Timeouts()

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
        return self


class ProjectConfig(_Strict):
    name: Name
    environment: Environment = "development"
    models: list[str] | None = None


class FileConfig(_Strict):
    """What ``bastion.yaml`` may hold."""

    organization: Name = "default"
    server: ServerConfig = ServerConfig()
    providers: list[ProviderConfig] = []
    projects: list[ProjectConfig] = []


Loc = tuple[str | int, ...]


def cross_check(config: FileConfig) -> list[tuple[Loc, str]]:
    """Rules that span sections: unique names, and project allowlists naming served models."""
    problems: list[tuple[Loc, str]] = []
    for section, names in (
        ("providers", [p.name for p in config.providers]),
        ("projects", [p.name for p in config.projects]),
    ):
        for index, name in enumerate(names):
            if name in names[:index]:
                problems.append(((section, index, "name"), f"two {section} are named '{name}'; names must be unique"))
    served = {model for provider in config.providers for model in provider.models}
    for index, project in enumerate(config.projects):
        unknown = sorted(set(project.models or ()) - served)
        if unknown:
            listed = ", ".join(unknown)
            fix = "add it to a provider's models or remove it"
            problems.append((("projects", index, "models"), f"allows {listed}, which no provider serves; {fix}"))
    return problems


@dataclass(frozen=True)
class Settings:
    """Everything Bastion needs to start, built once by :func:`load_settings`."""

    file: FileConfig
    source: str
    home: Path
    database_url: str
    redis_url: str | None = None
    secret_key: str | None = field(default=None, repr=False)

    @property
    def server(self) -> ServerConfig:
        return self.file.server


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
