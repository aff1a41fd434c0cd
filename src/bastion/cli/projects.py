"""``bastion projects list|show|create|delete``: projects, their environment, model allowlist and limits."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli.common import ConfigOption, JsonOption, build, count, fail, print_record, print_rows, services
from bastion.config import ProjectConfig
from bastion.services import local_actor

app = typer.Typer(help="Create, inspect and delete projects.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The project's name.")]
Limit = Annotated[int | None, typer.Option(help="Limit for the whole project (absent: no limit).")]
OPTIONS = {"name": "NAME", "environment": "--environment", "models": "--models"}
OPTIONS |= {"rpm": "--rpm", "tpm": "--tpm", "daily_tokens": "--daily-tokens"}
COLUMNS = ["name", "environment", "models", "limits", "created_at"]


@app.command("list")
def list_projects(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """List projects."""
    with services(config) as opened:
        rows = [project.to_json() for project in opened.org.projects()]
    print_rows(COLUMNS, rows, as_json)


@app.command()
def show(name: Name, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Show one project: environment, models, limits and key policy."""
    with services(config) as opened:
        project = opened.org.project(name)
    print_record(project.to_json(), as_json)


@app.command()
def create(
    name: Name,
    environment: Annotated[
        str, typer.Option("--environment", "-e", help="production, staging, development or sandbox.")
    ] = "development",
    models: Annotated[
        str | None, typer.Option("--models", help="Comma-separated model allowlist (absent: every model).")
    ] = None,
    rpm: Limit = None,
    tpm: Limit = None,
    daily_tokens: Limit = None,
    config: ConfigOption = None,
) -> None:
    """Create a project."""
    limits = {k: v for k, v in (("rpm", rpm), ("tpm", tpm), ("daily_tokens", daily_tokens)) if v is not None}
    allowed = [model.strip() for model in models.split(",") if model.strip()] if models is not None else None
    values = {"name": name, "environment": environment, "models": allowed, "limits": limits}
    spec = build(ProjectConfig, values, OPTIONS)
    with services(config) as opened:
        project = opened.org.create_project(local_actor(), spec)
    typer.echo(f"created project {project.name} ({project.environment})")


@app.command()
def delete(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this revokes every key of the project.")] = False,
    config: ConfigOption = None,
) -> None:
    """Delete a project: its service accounts are removed and every key of it is revoked (needs --yes)."""
    if not yes:
        raise fail(f"deleting project '{name}' revokes all its keys and removes its service accounts; add --yes")
    with services(config) as opened:
        now = opened.keys.now()
        usable = [k for k in opened.keys.list_keys(name) if k.effective_status(now) in ("active", "rotating")]
        project = opened.org.delete_project(local_actor(), name)
    typer.echo(f"deleted project {project.name}; revoked {count(len(usable), 'key')}")
