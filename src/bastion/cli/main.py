"""Entry point of the ``bastion`` command: one table of sub-commands."""

from __future__ import annotations

import typer

from bastion import __version__
from bastion.cli import accounts, apply, audit, events, keys, members, projects, report, scan, serve

app = typer.Typer(
    name="bastion",
    help="Bastion: a self-hosted, OpenAI-compatible compliance gateway for LLM APIs.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(serve.serve)
app.command()(serve.demo)
app.command("apply")(apply.apply_file)
app.command()(events.events)
app.command()(report.report)
app.command()(scan.scan)
app.add_typer(keys.app, name="keys")
app.add_typer(members.app, name="members")
app.add_typer(projects.app, name="projects")
app.add_typer(accounts.app, name="service-accounts")
app.add_typer(audit.app, name="audit")


@app.command()
def version() -> None:
    """Print Bastion's version."""
    typer.echo(__version__)


def main() -> None:
    app()
