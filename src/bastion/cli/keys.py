"""``bastion keys create|list|rotate|due|revoke``: API keys, shown once, stored only as keyed hashes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from bastion.cli.common import ConfigOption, JsonOption, cell, duration, fail, print_rows, services
from bastion.identity.keys import Owner
from bastion.services import local_actor

if TYPE_CHECKING:
    from datetime import datetime

    from bastion.identity.keys import KeyRecord
    from bastion.services import Services

app = typer.Typer(help="Create, list, rotate and revoke API keys.", no_args_is_help=True)

KeyId = Annotated[str, typer.Argument(metavar="ID", help="The key's id, as 'bastion keys list' shows it.")]
COLUMNS = ["id", "project", "principal", "name", "prefix", "status", "created_at", "expires_at"]
DUE_COLUMNS = ["id", "project", "prefix", "status", "reason"]


def _names(opened: Services) -> dict[str, str]:
    """Principal ids to the names people know them by (emails, service account names)."""
    names = {member.id: member.email for member in opened.org.members()}
    names.update({account.id: account.name for account in opened.org.service_accounts()})
    return names


def _as_dict(record: KeyRecord, now: datetime, names: dict[str, str]) -> dict[str, Any]:
    data = record.to_json(now)
    holder = record.project if record.principal_type == "project" else record.principal_id or ""
    data["principal"]["name"] = names.get(holder, holder)
    return data


def _row(data: dict[str, Any]) -> dict[str, Any]:
    principal = data["principal"]
    return {**data, "principal": f"{principal['type']}:{principal['name']}"}


def _owner(member: str | None, account: str | None) -> Owner:
    if member and account:
        raise fail("--member and --service-account exclude each other; a key has one holder")
    if member:
        return Owner("member", member)
    if account:
        return Owner("service_account", account)
    return Owner()


@app.command()
def create(
    project: Annotated[str, typer.Option("--project", "-p", help="Project the key belongs to.")],
    name: Annotated[str, typer.Option("--name", "-n", help="A label to recognise the key by.")] = "default",
    expires_in: Annotated[str | None, typer.Option("--expires-in", help="Lifetime, e.g. 30d, 12h.")] = None,
    member: Annotated[str | None, typer.Option("--member", help="Issue the key to this member (email).")] = None,
    account: Annotated[
        str | None, typer.Option("--service-account", help="Issue the key to this service account.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once; it cannot be shown again. Without a holder it is a project key."""
    lifetime = duration("--expires-in", expires_in) if expires_in else None
    owner = _owner(member, account)
    with services(config) as opened:
        record, plaintext = opened.keys.create(project, name, lifetime, owner=owner, actor=local_actor())
    typer.echo(plaintext)
    holder = f"{owner.kind.replace('_', ' ')} {owner.name}" if owner.name else "the project"
    typer.echo(
        f"# id {record.id}, project {record.project}, held by {holder}, expires {cell(record.expires_at)}. "
        "Store it now: it is shown only once.",
        err=True,
    )


@app.command("list")
def list_keys(
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project's keys.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List keys with their holder and status (never their secret part)."""
    with services(config) as opened:
        now, names = opened.keys.now(), _names(opened)
        rows = [_as_dict(record, now, names) for record in opened.keys.list_keys(project)]
    print_rows(COLUMNS, rows if as_json else [_row(row) for row in rows], as_json)


@app.command()
def rotate(
    key_id: KeyId,
    overlap: Annotated[
        str, typer.Option("--overlap", help="How long the old key keeps working, e.g. 24h, 1h, 7d.")
    ] = "24h",
    config: ConfigOption = None,
) -> None:
    """Issue a replacement key and print it once; the old key works until the overlap ends, then is refused."""
    span = duration("--overlap", overlap)
    with services(config) as opened:
        new, plaintext = opened.keys.rotate(key_id, span, actor=local_actor())
        old = opened.keys.get(key_id)
    typer.echo(plaintext)
    typer.echo(
        f"# {old.id} ({old.prefix}…) is rotating until {cell(old.expires_at)}; its replacement is {new.id}, "
        f"project {new.project}, expires {cell(new.expires_at)}. Store it now: it is shown only once.",
        err=True,
    )


@app.command()
def due(
    within: Annotated[str, typer.Option("--within", help="Horizon, e.g. 7d, 24h.")] = "7d",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List usable keys that expire, or pass their project's maximum age, within the horizon."""
    span = duration("--within", within)
    with services(config) as opened:
        now = opened.keys.now()
        found = opened.keys.due(span)
    rows = [{**record.to_json(now), "reason": reason} for record, reason in found]
    print_rows(DUE_COLUMNS, rows, as_json)


@app.command()
def revoke(key_id: KeyId, config: ConfigOption = None) -> None:
    """Revoke a key; every gateway refuses it from its next request on."""
    with services(config) as opened:
        record = opened.keys.revoke(key_id, actor=local_actor())
    typer.echo(f"revoked {record.id} ({record.prefix}…, project {record.project})")
