"""``bastion service-accounts ...``: non-human principals bound to one project, with their own limits."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bastion.cli.common import ConfigOption, JsonOption, build, count, duration, print_record, print_rows, services
from bastion.config import PERMISSIONS, ServiceAccountConfig
from bastion.services import local_actor

app = typer.Typer(help="Create, inspect and delete service accounts.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The service account's name.")]
Limit = Annotated[int | None, typer.Option(help="Limit for the account's keys together (absent: no limit).")]
OPTIONS = {"name": "NAME", "project": "--project", "permissions": "--permission", "ip_allowlist": "--allow"}
OPTIONS |= {"rpm": "--rpm", "tpm": "--tpm"}
COLUMNS = ["name", "project", "permissions", "ip_allowlist", "limits", "key_ttl", "created_at"]


@app.command("list")
def list_accounts(
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project's accounts.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List service accounts."""
    with services(config) as opened:
        if project is not None:
            opened.org.project(project)
        rows = [account.to_json() for account in opened.org.service_accounts(project)]
    print_rows(COLUMNS, rows, as_json)


@app.command()
def show(name: Name, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Show one service account."""
    with services(config) as opened:
        account = opened.org.service_account(name)
    print_record(account.to_json(), as_json)


@app.command()
def create(
    name: Name,
    project: Annotated[str, typer.Option("--project", "-p", help="The one project the account belongs to.")],
    permissions: Annotated[
        list[str] | None,
        typer.Option("--permission", help=f"Repeatable; one of {', '.join(PERMISSIONS)} (default: all)."),
    ] = None,
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="Source network in CIDR notation; repeatable (default: any).")
    ] = None,
    rpm: Limit = None,
    tpm: Limit = None,
    key_ttl: Annotated[str | None, typer.Option("--key-ttl", help="Longest lifetime of its keys, e.g. 30d.")] = None,
    config: ConfigOption = None,
) -> None:
    """Create a service account in a project."""
    values: dict[str, Any] = {"name": name, "project": project, "ip_allowlist": allow or []}
    values["limits"] = {k: v for k, v in (("rpm", rpm), ("tpm", tpm)) if v is not None}
    values["key_ttl"] = duration("--key-ttl", key_ttl) if key_ttl else None
    if permissions:
        values["permissions"] = permissions
    spec = build(ServiceAccountConfig, values, OPTIONS)
    with services(config) as opened:
        account = opened.org.create_service_account(local_actor(), spec)
    typer.echo(f"created service account {account.name} in project {account.project}")


@app.command()
def delete(name: Name, config: ConfigOption = None) -> None:
    """Delete a service account and revoke every key it holds."""
    with services(config) as opened:
        account, revoked = opened.org.delete_service_account(local_actor(), name)
    typer.echo(f"deleted service account {account.name}; revoked {count(revoked, 'key')}")
