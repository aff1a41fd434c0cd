"""``bastion events``: the admin events (who changed what, when), newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli.common import ConfigOption, JsonOption, print_rows, services

COLUMNS = ["id", "at", "actor", "action", "target", "project"]


def events(
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only events about this project.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many events to show.")] = 50,
    before: Annotated[int | None, typer.Option("--before", help="Only events older than this id (paging).")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List admin events (actor, action, target, time); --json adds the before/after of each change."""
    with services(config) as opened:
        found = opened.org.events(project, limit, before)
    rows = [{**event, "target": f"{event['target_type']}:{event['target_id']}"} for event in found]
    print_rows(COLUMNS, rows, as_json)
