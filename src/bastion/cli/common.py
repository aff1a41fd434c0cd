"""What every CLI command shares: settings and services, errors as one clear line, tables and JSON output."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from bastion.config import Settings, load_settings
from bastion.durations import parse_duration
from bastion.errors import BastionError
from bastion.services import Services, open_services

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from datetime import timedelta

Model = TypeVar("Model", bound=BaseModel)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (bastion.yaml); default: $BASTION_CONFIG.", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

# What a pattern a value failed to match stands for, by the field it was given for.
_PATTERNS = {
    "email": "an email address such as bob@acme.com",
    "name": "a name of lowercase letters, digits, '.', '_' and '-' (at most 63)",
    "project": "a project name of lowercase letters, digits, '.', '_' and '-'",
    "projects": "a project name of lowercase letters, digits, '.', '_' and '-'",
}


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise (``raise fail(...)``)."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def settings_or_exit(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except BastionError as exc:
        raise fail(exc.message) from exc


@contextmanager
def open_store(settings: Settings, *, ensure_file: bool = True) -> Iterator[Services]:
    """Open the services on ``settings``; any Bastion error ends the command with its message."""
    try:
        opened = open_services(settings, ensure_file=ensure_file)
    except BastionError as exc:
        raise fail(exc.message) from exc
    try:
        yield opened
    except BastionError as exc:
        raise fail(exc.message) from exc
    finally:
        opened.close()


@contextmanager
def services(config: Path | None) -> Iterator[Services]:
    """Open the services for one command from the config file (``--config`` or ``$BASTION_CONFIG``)."""
    with open_store(settings_or_exit(config)) as opened:
        yield opened


def duration(option: str, text: str) -> timedelta:
    """Parse a duration option (``30d``, ``24h``), or end the command naming the option."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise fail(f"{option}: {exc}") from exc


def build(model: type[Model], values: dict[str, Any], options: Mapping[str, str]) -> Model:
    """Validate command-line values as the config file would; a fault names the option it came from."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = next((str(part) for part in reversed(error["loc"]) if str(part) in options), str(error["loc"][0]))
        raise fail(f"{options.get(field, field)}: {_explain(field, error)}") from exc


def _explain(field: str, error: Any) -> str:
    value = f"'{error['input']}'"
    if error["type"] == "string_pattern_mismatch":
        return f"{value} is not {_PATTERNS.get(field, 'valid')}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith(value):  # the validator's own message already names the value
        return message
    return f"{value} is not valid; {message[:1].lower()}{message[1:]}"


def count(number: int, noun: str) -> str:
    """``count(1, "key")`` -> ``1 key``; ``count(2, "key")`` -> ``2 keys``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def cell(value: Any) -> str:
    """One value as a table shows it: ``-`` for nothing, lists joined by commas, mappings as ``k=v``."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list | tuple):
        return ",".join(cell(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={cell(item)}" for key, item in value.items())
    return str(value)


def print_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Print ``rows`` as aligned columns under a header line."""
    table = [list(columns)] + [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        typer.echo("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip())


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=cell))


def print_rows(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], as_json: bool) -> None:
    """What every list command prints: JSON of the whole rows, or a table of ``columns``."""
    if as_json:
        print_json(list(rows))
    else:
        print_table(columns, rows)


def print_record(record: Mapping[str, Any], as_json: bool) -> None:
    """What every show command prints: JSON, or one ``field  value`` line per field."""
    if as_json:
        print_json(record)
        return
    width = max(len(name) for name in record)
    for name, value in record.items():
        typer.echo(f"{name.ljust(width)}  {cell(value)}")
