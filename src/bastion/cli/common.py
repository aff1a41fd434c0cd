"""What every CLI command shares: loading settings and opening services, with errors as one clear line."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.config import Settings, load_settings
from bastion.errors import BastionError
from bastion.services import Services, open_services

if TYPE_CHECKING:
    from collections.abc import Iterator

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (bastion.yaml); default: $BASTION_CONFIG.", show_default=False),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def settings_or_exit(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except BastionError as exc:
        raise fail(exc.message) from exc


@contextmanager
def services(config: Path | None) -> Iterator[Services]:
    """Open the services for one command; any Bastion error ends the command with its message."""
    try:
        opened = open_services(settings_or_exit(config))
    except BastionError as exc:
        raise fail(exc.message) from exc
    try:
        yield opened
    except BastionError as exc:
        raise fail(exc.message) from exc
    finally:
        opened.close()
