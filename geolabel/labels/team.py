"""Who works on a PostGIS project: members, their team and role (labeler, reviewer, admin).

A member is a PostgreSQL login role that belongs to one of the project's three group roles
(:func:`geolabel.labels.pg_sql.group_role`) and has a row in ``geolabel_members``; the
database's row-level security reads that row for the member's team. Managing members needs
a role that may create roles (CREATEROLE), such as the checking center's admin. Passwords
go to the server already hashed (SCRAM-SHA-256), so the cleartext never leaves this process.

>>> check_user_name("li_wei")
'li_wei'
>>> check_user_name("pg_monitor")
Traceback (most recent call last):
...
geolabel.errors.InputError: user 'pg_monitor': names starting with pg_ are reserved by PostgreSQL
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from geolabel.errors import AccessDeniedError, InputError, check_choice
from geolabel.labels.pg_location import PgLocation, is_postgres_location, parse_location
from geolabel.labels.pg_sql import ROLES
from geolabel.labels.store import LabelStore, NotAStoreError, busy_timeout

if TYPE_CHECKING:
    import psycopg

#: A role name as PostgreSQL spells identifiers: a letter or _, then letters, digits, _ or $.
USER_PATTERN = re.compile(r"[^\W\d][\w$]*")
_RESERVED = {"public", "none", "current_user", "current_role", "session_user"}
#: A password: given through a prompt (a callable asked only when a login role is created) or as text.
Password = str | Callable[[], str] | None


@dataclass(frozen=True)
class Member:
    """A project member: login role ``user``, ``team`` (None for an admin without one), ``role``."""

    user: str
    team: str | None
    role: str


def check_user_name(user: str) -> str:
    """``user`` if PostgreSQL can have a login role of that name (quoted, case kept)."""
    if not USER_PATTERN.fullmatch(user) or len(user.encode()) > 63:
        raise InputError(
            f"user {user!r}: a user name is a letter or _ followed by letters, digits, _ or $ (at most 63 bytes)"
        )
    if user.lower().startswith("pg_"):
        raise InputError(f"user {user!r}: names starting with pg_ are reserved by PostgreSQL")
    if user.lower() in _RESERVED:
        raise InputError(f"user {user!r}: a reserved word in PostgreSQL, not a role name")
    return user


def add_member(
    store: LabelStore | str | PgLocation, user: str, *, role: str, team: str | None = None, password: Password = None
) -> Member:
    """Add ``user`` to the project as ``role`` of ``team`` (re-adding changes both).

    Creates the login role when it does not exist yet, with ``password`` (text, or a callable
    asked for it only then); an existing role keeps its password. Example::

        add_member("postgresql://admin@center/labels?schema=p1", "li", role="labeler", team="hunan",
                   password=getpass.getpass)
    """
    check_user_name(user)
    check_choice(role, ROLES, param="role")
    team = (team or "").strip() or None
    if team is None and role != "admin":
        raise InputError(f"user {user!r}: a {role} needs a `team`", params=("team",))
    with _project(store) as (conn, loc, groups):
        _check_new_member(conn, loc, user, groups)
        with conn.transaction():
            if not _login_exists(conn, loc, user):
                _create_login(conn, loc, user, _ask(password, user))
            _set_groups(conn, user, keep=groups[role], groups=groups)
            conn.execute(
                f"INSERT INTO {loc.schema}.geolabel_members (role_name, team, role) VALUES (%s, %s, %s) "
                "ON CONFLICT (role_name) DO UPDATE SET team = excluded.team, role = excluded.role",
                (user, team, role),
            )
    return Member(user, team, role)


def remove_member(store: LabelStore | str | PgLocation, user: str) -> Member:
    """Take ``user`` out of the project (group membership and member row); their login role
    stays, as it may work on other projects. Returns what they were."""
    check_user_name(user)
    with _project(store) as (conn, loc, groups):
        row = conn.execute(
            f"SELECT team, role FROM {loc.schema}.geolabel_members WHERE role_name = %s", (user,)
        ).fetchone()
        if row is None:
            raise InputError(f"{loc}: {user} is not a member of project {loc.schema}")
        with conn.transaction():
            _set_groups(conn, user, keep=None, groups=groups)
            conn.execute(f"DELETE FROM {loc.schema}.geolabel_members WHERE role_name = %s", (user,))
    return Member(user, row[0], row[1])


def list_members(store: LabelStore | str | PgLocation) -> list[Member]:
    """The project's members, by team (admins without a team first), then user."""
    with _project(store) as (conn, loc, _):
        rows = conn.execute(
            f"SELECT role_name, team, role FROM {loc.schema}.geolabel_members ORDER BY team NULLS FIRST, role_name"
        ).fetchall()
    return [Member(*row) for row in rows]


# -- the project's connection, roles and failures -------------------------------------------


@contextmanager
def _project(
    store: LabelStore | str | PgLocation,
) -> Iterator[tuple[psycopg.Connection[Any], PgLocation, dict[str, str]]]:
    """A connection to the project of ``store`` and its group roles (role -> group role name)."""
    import psycopg

    from geolabel.labels.pg_connect import connect

    loc = _location(store)
    conn = connect(loc, busy_timeout())
    try:
        groups = _groups(conn, loc)
        yield conn, loc, groups
    except psycopg.Error as exc:
        raise _explain(exc, loc) from None
    finally:
        conn.close()


def _location(store: LabelStore | str | PgLocation) -> PgLocation:
    from geolabel.labels.pg_store import PostGISStore

    if isinstance(store, PostGISStore):
        return store.location
    if isinstance(store, PgLocation) or (isinstance(store, str) and is_postgres_location(store)):
        return parse_location(store)
    where = getattr(store, "uri", store)
    raise InputError(
        f"{where}: teams need a PostGIS store (postgresql://host/db?schema=NAME); a GeoPackage has no users or roles"
    )


def _groups(conn: psycopg.Connection[Any], loc: PgLocation) -> dict[str, str]:
    import psycopg

    try:
        rows = conn.execute(
            f"SELECT key, value FROM {loc.schema}.geolabel_meta WHERE key = ANY(%s)", ([f"role_{r}" for r in ROLES],)
        ).fetchall()
    except psycopg.errors.UndefinedTable:
        raise NotAStoreError(f"{loc}: no geolabel project in schema {loc.schema!r}") from None
    groups = {key.removeprefix("role_"): value for key, value in rows}
    if set(groups) != set(ROLES):
        raise NotAStoreError(f"{loc}: the project has no group roles in geolabel_meta (a damaged store)")
    return groups


def _explain(exc: Exception, loc: PgLocation) -> Exception:
    diag = getattr(exc, "diag", None)
    text = getattr(diag, "message_primary", None) or str(exc).strip().splitlines()[0]
    if getattr(exc, "sqlstate", None) == "42501":
        return AccessDeniedError(
            f"{loc}: refused by the database ({text}); managing members needs the project's owner or an admin "
            "whose role may create roles (CREATEROLE)"
        )
    return exc


def _check_new_member(conn: psycopg.Connection[Any], loc: PgLocation, user: str, groups: dict[str, str]) -> None:
    if user in groups.values():
        raise InputError(f"{loc}: {user} is one of the project's group roles, not a person")


def _login_exists(conn: psycopg.Connection[Any], loc: PgLocation, user: str) -> bool:
    row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
    if row is not None and not row[0]:
        raise InputError(f"{loc}: role {user} exists but may not log in (a group role?); members are login roles")
    return row is not None


def _ask(password: Password, user: str) -> str:
    text = password() if callable(password) else password
    if not text:
        raise InputError(f"user {user!r} has no login role yet; give a `password` to create it", params=("password",))
    return text


def _create_login(conn: psycopg.Connection[Any], loc: PgLocation, user: str, password: str) -> None:
    """CREATE ROLE with the password hashed here: the statement (and any server log) holds no cleartext."""
    from psycopg import sql

    verifier = conn.pgconn.encrypt_password(password.encode(), user.encode(), b"scram-sha-256").decode()
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(verifier)))


def _set_groups(conn: psycopg.Connection[Any], user: str, *, keep: str | None, groups: dict[str, str]) -> None:
    """Make ``user`` a member of group ``keep`` only, of this project's groups (None: of none)."""
    from psycopg import sql

    held = {
        row[0]
        for row in conn.execute(
            "SELECT g.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
            "JOIN pg_roles u ON u.oid = a.member WHERE u.rolname = %s AND g.rolname = ANY(%s)",
            (user, list(groups.values())),
        )
    }
    for group in sorted(held - {keep}):
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), sql.Identifier(user)))
    if keep is not None and keep not in held:
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(keep), sql.Identifier(user)))
