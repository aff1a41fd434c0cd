"""``bastion apply -f FILE [--dry-run]``: make the store hold exactly the organisation the file declares.

Prints the plan (create / update / replace / delete, per object, with the fields that differ and the
keys a delete revokes) before changing anything; ``--dry-run`` stops there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli.common import JsonOption, fail, open_store, print_json
from bastion.config import parse_file, settings_from
from bastion.errors import ConfigError
from bastion.identity.apply import execute, plan
from bastion.services import local_actor

if TYPE_CHECKING:
    from bastion.config import FileConfig
    from bastion.identity.apply import Change

FileOption = Annotated[Path, typer.Option("--file", "-f", help="The organisation file (bastion.yaml / org.yaml).")]

# What each action of a plan counts as in the summary: a replace is a delete and a create.
COUNTS = {"create": ("create",), "update": ("update",), "delete": ("delete",), "replace": ("create", "delete")}


def summary(changes: list[Change]) -> dict[str, int]:
    """How many objects a plan creates, updates and deletes."""
    totals = {"create": 0, "update": 0, "delete": 0}
    for change in changes:
        for counted in COUNTS[change.action]:
            totals[counted] += 1
    return totals


def _print_plan(changes: list[Change], source: Path) -> None:
    if not changes:
        typer.echo(f"No changes: the store matches {source}.")
        return
    for change in changes:
        typer.echo(change.describe())
    totals = summary(changes)
    typer.echo(f"\nPlan: {totals['create']} to create, {totals['update']} to update, {totals['delete']} to delete.")


def apply_file(
    file: FileOption,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and change nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Plan and apply the file's projects, members and service accounts; objects it omits are deleted.

    Deleting a member or a service account revokes all their keys (offboarding). Applying the same
    file again changes nothing.
    """
    declared = _parse(file)
    settings = settings_from(declared, str(file), dict(os.environ))
    with open_store(settings, ensure_file=False) as opened:
        changes = plan(declared, opened.org, opened.keys, deletes=True)
        if not as_json:
            _print_plan(changes, file)
        if changes and not dry_run:
            execute(changes, opened.org, local_actor())
    _print_outcome(changes, file, applied=bool(changes) and not dry_run, as_json=as_json)


def _parse(file: Path) -> FileConfig:
    try:
        return parse_file(file)
    except ConfigError as exc:
        raise fail(exc.message) from exc


def _print_outcome(changes: list[Change], file: Path, *, applied: bool, as_json: bool) -> None:
    totals = summary(changes)
    if as_json:
        print_json({"file": str(file), "changes": [c.to_json() for c in changes], **totals, "applied": applied})
    elif applied:
        typer.echo(f"Applied: {totals['create']} created, {totals['update']} updated, {totals['delete']} deleted.")
