"""``bastion keys create|list|revoke``: API keys, shown once, stored only as keyed hashes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli.common import ConfigOption, fail, services
from bastion.durations import parse_duration

if TYPE_CHECKING:
    from bastion.identity.keys import KeyRecord

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _as_dict(record: KeyRecord, now: datetime) -> dict[str, str | None]:
    return {
        "id": record.id,
        "project": record.project,
        "name": record.name,
        "prefix": record.prefix,
        "status": record.effective_status(now),
        "created_at": _time(record.created_at),
        "expires_at": _time(record.expires_at),
        "revoked_at": _time(record.revoked_at),
    }


@app.command()
def create(
    project: Annotated[str, typer.Option("--project", "-p", help="Project the key belongs to.")],
    name: Annotated[str, typer.Option("--name", "-n", help="A label to recognise the key by.")] = "default",
    expires_in: Annotated[str | None, typer.Option("--expires-in", help="Lifetime, e.g. 30d, 12h.")] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once; it cannot be shown again."""
    try:
        lifetime = parse_duration(expires_in) if expires_in else None
    except ValueError as exc:
        raise fail(f"--expires-in: {exc}") from exc
    with services(config) as opened:
        record, plaintext = opened.keys.create(project, name=name, expires_in=lifetime)
    typer.echo(plaintext)
    expiry = _time(record.expires_at) or "never"
    typer.echo(
        f"# id {record.id}, project {record.project}, expires {expiry}. Store it now: it is shown only once.", err=True
    )


@app.command("list")
def list_keys(
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    config: ConfigOption = None,
) -> None:
    """List keys (never their secret part)."""
    with services(config) as opened:
        records = opened.keys.list_keys(project)
    now = datetime.now().astimezone()
    rows = [_as_dict(record, now) for record in records]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    columns = ["id", "project", "name", "prefix", "status", "created_at", "expires_at"]
    table = [columns] + [[row[column] or "-" for column in columns] for row in rows]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(columns))]
    for line in table:
        typer.echo("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id, as 'bastion keys list' shows it.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key; every gateway refuses it from its next request on."""
    with services(config) as opened:
        record = opened.keys.revoke(key_id)
    typer.echo(f"revoked {record.id} ({record.prefix}…, project {record.project})")
