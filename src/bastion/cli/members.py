"""``bastion members ...``: the organisation's people, their roles and project memberships, and invites."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bastion.cli.common import (
    ConfigOption,
    JsonOption,
    build,
    cell,
    count,
    duration,
    fail,
    print_record,
    print_rows,
    services,
)
from bastion.config import MemberConfig
from bastion.identity.model import limits_json
from bastion.services import local_actor

if TYPE_CHECKING:
    from bastion.identity.model import Member

app = typer.Typer(help="Add, change and remove members; invite people.", no_args_is_help=True)

Email = Annotated[str, typer.Argument(metavar="EMAIL", help="The member's email address.")]
RoleOption = Annotated[str, typer.Option("--role", "-r", help="Organisation role: owner, admin, member or reader.")]
Memberships = Annotated[
    list[str] | None,
    typer.Option("--project", "-p", help="A project membership as PROJECT:ROLE (admin, member, reader); repeatable."),
]
OPTIONS = {"email": "EMAIL", "role": "--role", "projects": "--project"}
COLUMNS = ["email", "role", "projects", "ip_allowlist", "limits", "created_at"]
INVITE_COLUMNS = ["id", "email", "role", "projects", "status", "created_by", "expires_at"]


def _memberships(values: list[str] | None) -> dict[str, str]:
    """``["support-bot:member"]`` -> ``{"support-bot": "member"}``."""
    found: dict[str, str] = {}
    for value in values or []:
        project, sep, role = value.partition(":")
        if not (sep and project and role):
            raise fail(f"--project: '{value}' is not PROJECT:ROLE; write e.g. support-bot:member")
        found[project] = role
    return found


def _spec(email: str, role: str, projects: list[str] | None) -> MemberConfig:
    return build(MemberConfig, {"email": email, "role": role, "projects": _memberships(projects)}, OPTIONS)


def _values(member: Member) -> dict[str, Any]:
    """A stored member as the config file would declare it (to change one field and keep the rest)."""
    return {
        "email": member.email,
        "role": member.role,
        "projects": member.projects,
        "ip_allowlist": list(member.ip_allowlist),
        "limits": limits_json(member.limits),
    }


@app.command("list")
def list_members(
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only members with a role in it.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List members, their organisation role and project memberships."""
    with services(config) as opened:
        if project is not None:
            opened.org.project(project)
        rows = [member.to_json() for member in opened.org.members(project)]
    print_rows(COLUMNS, rows, as_json)


@app.command()
def show(email: Email, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Show one member."""
    with services(config) as opened:
        member = opened.org.member(email)
    print_record(member.to_json(), as_json)


@app.command()
def add(email: Email, role: RoleOption, projects: Memberships = None, config: ConfigOption = None) -> None:
    """Add a member with an organisation role and, optionally, project memberships."""
    spec = _spec(email, role, projects)
    with services(config) as opened:
        member = opened.org.add_member(local_actor(), spec)
    typer.echo(f"added {member.email} as {member.role}; projects: {cell(member.projects)}")


@app.command("set-role")
def set_role(
    email: Email,
    role: Annotated[str, typer.Argument(metavar="ROLE", help="owner, admin, member or reader.")],
    config: ConfigOption = None,
) -> None:
    """Change a member's organisation role (project memberships stay as they are)."""
    with services(config) as opened:
        before = opened.org.member(email)
        spec = build(MemberConfig, {**_values(before), "role": role}, {"role": "ROLE"})
        after = opened.org.update_member(local_actor(), spec)
    typer.echo(f"{after.email}: role {before.role} -> {after.role}")


@app.command()
def remove(email: Email, config: ConfigOption = None) -> None:
    """Offboard a member: the membership ends and every key of theirs is revoked at once."""
    with services(config) as opened:
        member, revoked = opened.org.remove_member(local_actor(), email)
    typer.echo(f"removed {member.email}; revoked {count(revoked, 'key')}")


@app.command()
def invite(
    email: Email,
    role: RoleOption,
    projects: Memberships = None,
    expires_in: Annotated[str, typer.Option("--expires-in", help="How long the invite stays valid.")] = "7d",
    config: ConfigOption = None,
) -> None:
    """Invite someone; prints the invite token once (give it to them: 'bastion members accept TOKEN')."""
    spec = _spec(email, role, projects)
    span = duration("--expires-in", expires_in)
    with services(config) as opened:
        created, token = opened.org.invite(local_actor(), spec, span)
    typer.echo(token)
    typer.echo(
        f"# invite {created.id} for {created.email} as {created.role}, expires {cell(created.expires_at)}. "
        "The token is shown only once.",
        err=True,
    )


@app.command()
def invites(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """List invites and their status (pending, accepted, revoked, expired)."""
    with services(config) as opened:
        found = opened.org.invites()
    now = datetime.now(UTC)
    print_rows(INVITE_COLUMNS, [{**item.to_json(), "status": item.status(now)} for item in found], as_json)


@app.command()
def accept(
    token: Annotated[str, typer.Argument(metavar="TOKEN", help="The token 'bastion members invite' printed.")],
    config: ConfigOption = None,
) -> None:
    """Accept an invite: its email becomes a member with the invited role and projects."""
    with services(config) as opened:
        member = opened.org.accept_invite(token)
    typer.echo(f"{member.email} is now a member ({member.role}); projects: {cell(member.projects)}")


@app.command("revoke-invite")
def revoke_invite(
    invite_id: Annotated[str, typer.Argument(metavar="ID", help="The invite's id ('bastion members invites').")],
    config: ConfigOption = None,
) -> None:
    """Revoke a pending invite; its token no longer works."""
    with services(config) as opened:
        found = opened.org.revoke_invite(local_actor(), invite_id)
    typer.echo(f"revoked invite {found.id} for {found.email}")
