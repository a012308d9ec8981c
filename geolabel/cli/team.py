"""``geolabel team``: who works on a PostGIS project (add, list, remove members)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from geolabel.vocabulary import ROLES

if TYPE_CHECKING:
    from geolabel.labels.team import Member


@click.group(short_help="Project members: add, list, remove (PostGIS stores).")
def team() -> None:
    """Members of a PostGIS project: login roles with a team and a role.

    A labeler adds and edits their team's labels (draft or submitted), a reviewer
    accepts or rejects their team's labels, an admin may do everything. Managing
    members needs a database role that may create roles (CREATEROLE).
    """


@team.command(short_help="Add a member, or change their team or role.")
@click.argument("store")
@click.option("--user", required=True, help="Login role of the member (created if missing).")
@click.option("--team", "team_name", help="The member's team (needed for labelers and reviewers).")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the member may do.")
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Read a new login role's password from the first line of this file (default: ask).",
)
def add(store: str, user: str, team_name: str | None, role: str, password_file: str | None) -> None:
    """Make USER a member of the project in STORE, as ROLE of TEAM.

    A missing login role is created with a password that is asked for (not echoed)
    or read from --password-file; it is never given on the command line. Adding a
    member again changes their team and role.

    \b
    Example:
      geolabel team add "postgresql://admin@center/labels?schema=p1" --user li --team hunan --role labeler
    """
    from geolabel.labels.pg_location import parse_location
    from geolabel.labels.team import add_member

    def ask() -> str:
        if password_file:
            return _first_line(password_file)
        text: str = click.prompt(f"password for new user {user}", hide_input=True, confirmation_prompt=True)
        return text

    member = add_member(store, user, role=role, team=team_name, password=ask)
    click.echo(f"{parse_location(store).display}: {member.user} is {_said(member)}")


@team.command("list", short_help="List members with team and role.")
@click.argument("store")
def list_(store: str) -> None:
    """List the members of the project in STORE: user, team, role."""
    from geolabel.labels.team import list_members

    members = list_members(store)
    if not members:
        click.echo("no members yet; add one with `geolabel team add`")
        return
    rows = [("user", "team", "role"), *((m.user, m.team or "-", m.role) for m in members)]
    widths = [max(len(r[k]) for r in rows) for k in range(2)]
    for user, team_name, role in rows:
        click.echo(f"{user:<{widths[0]}}  {team_name:<{widths[1]}}  {role}")


@team.command(short_help="Remove a member (their login role stays).")
@click.argument("store")
@click.option("--user", required=True, help="Login role of the member.")
def remove(store: str, user: str) -> None:
    """Take USER out of the project in STORE. The login role itself stays (it may work
    on other projects); drop it in PostgreSQL if it is no longer needed."""
    from geolabel.labels.pg_location import parse_location
    from geolabel.labels.team import remove_member

    member = remove_member(store, user)
    click.echo(f"{parse_location(store).display}: {member.user} removed (was {_said(member)})")


def _said(member: Member) -> str:
    return f"{member.role} of team {member.team}" if member.team else member.role


def _first_line(path: str) -> str:
    from geolabel.errors import InputError

    with open(path, encoding="utf-8") as f:
        line = f.readline().rstrip("\r\n")
    if not line:
        raise InputError(f"{path}: the first line holds no password")
    return line
