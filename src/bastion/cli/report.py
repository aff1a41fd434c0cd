"""``bastion report NAME``: compliance reports as Markdown or JSON, and GDPR erasure (``dsr --erase``).

A thin skin over ``compliance/``: it reads the options, builds the report the admin API would, and
prints it (or writes it to ``--out`` with mode 0600, since reports describe people and access).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli.common import ConfigOption, fail, open_store, settings_or_exit
from bastion.compliance import erasure, registry
from bastion.compliance.render import FORMATS
from bastion.compliance.report import Query, period
from bastion.compliance.source import Source
from bastion.services import local_actor

if TYPE_CHECKING:
    from bastion.compliance.report import Report

NAMES = ", ".join(registry.REPORTS)
OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Write the report to FILE (mode 0600).")]


def _check(name: str, output: str, subject: str | None, erase: bool, yes: bool, project: str | None) -> None:
    """Refuse option combinations that make no sense, before the store is opened: the first rule broken."""
    rules = [
        (name not in registry.REPORTS, f"there is no report named '{name}'; the reports are {NAMES}"),
        (output not in FORMATS, f"--format: '{output}' is not a format; use {' or '.join(FORMATS)}"),
        (subject is not None and name != "dsr", "--subject applies to the dsr report only"),
        (name == "dsr" and not subject, "the dsr report needs --subject with the person's email address"),
        (erase and name != "dsr", "--erase applies to the dsr report only"),
        (erase and project is not None, "--erase erases the person from the whole organisation; drop --project"),
        (
            erase and not yes,
            f"--erase shreds the key that links {subject} to the audit log and cannot be undone; "
            "run the report without --erase first to give the person their data, then add --yes",
        ),
    ]
    broken = next((message for failed, message in rules if failed), None)
    if broken is not None:
        raise fail(broken)


def _write(text: str, out: Path | None, name: str) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise fail(f"--out: cannot write {out}: {exc.strerror}") from exc
    typer.echo(f"wrote the {name} report to {out}", err=True)


def report(
    name: Annotated[str, typer.Argument(metavar="NAME", help=f"The report: {NAMES}.")],
    output: Annotated[str, typer.Option("--format", "-f", help="markdown or json.")] = "markdown",
    since: Annotated[
        str | None, typer.Option("--since", help="First day covered (2026-11-01) or a UTC time; default: the start.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last day covered (the whole day) or a UTC time; default: now.")
    ] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project; default: all.")] = None,
    out: OutOption = None,
    subject: Annotated[str | None, typer.Option("--subject", help="dsr: the person's email address.")] = None,
    erase: Annotated[bool, typer.Option("--erase", help="dsr: erase the subject by crypto-shredding.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm --erase, which cannot be undone.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print a compliance report: usage, violations, keys, access, soc2, or dsr --subject EMAIL [--erase --yes]."""
    _check(name, output, subject, erase, yes, project)
    settings = settings_or_exit(config)
    with open_store(settings) as opened:
        source = Source.of(opened, settings.file)
        query = Query(period(since, until, source.now()), project, subject)
        built: Report
        if erase and subject is not None:
            built = erasure.receipt(source, query, erasure.erase(source, subject, local_actor()))
        else:
            built = registry.build(name, source, query)
    _write(FORMATS[output].render(built), out, name)
