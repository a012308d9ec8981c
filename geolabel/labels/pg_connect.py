"""Connections to a PostGIS label store's server (psycopg 3), failures said in one line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from geolabel.errors import InputError, UnreachableError, first_line
from geolabel.labels.pg_location import PgLocation, application_name

if TYPE_CHECKING:
    import psycopg


def psycopg_module() -> Any:
    try:
        import psycopg
    except ImportError:
        raise InputError(
            "PostGIS label stores need psycopg 3: pip install 'geolabel[postgis]' (see the README, Teams)"
        ) from None
    return psycopg


def connect(location: PgLocation, timeout: float) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are explicit) that waits ``timeout`` s for locks."""
    pg = psycopg_module()
    try:
        conn: psycopg.Connection[Any] = pg.connect(
            location.conninfo, autocommit=True, application_name=application_name()
        )
    except pg.OperationalError as exc:
        raise UnreachableError(f"{location}: cannot connect ({server_message(exc)})") from None
    except pg.ProgrammingError as exc:  # an unknown keyword in the URL
        raise InputError(f"{location}: not a usable PostgreSQL location ({server_message(exc)})") from None
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(timeout * 1000)}ms",))
    return conn


def server_message(exc: BaseException) -> str:
    """The server's one-line message (libpq never repeats a password in it)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary or first_line(exc).strip()
