"""Where a PostGIS label store lives: a libpq connection plus the project's schema.

A location is a libpq URL with one extra query parameter, ``schema`` (one project = one
schema): ``postgresql://li@db.center:5432/labels?schema=project_a``. Everything else is
libpq's: ``service=NAME`` (``postgresql:///?service=center&schema=project_a``), the ``PG*``
environment variables and ``~/.pgpass``. GDAL and QGIS's spelling works too:
``PG:service=center schema=project_a``.

Passwords never reach a message: :attr:`PgLocation.display` leaves them out.

>>> loc = parse_location("postgresql://li:secret@db:5433/labels?schema=project_a&sslmode=require")
>>> loc.schema, loc.display
('project_a', 'postgresql://li@db:5433/labels?schema=project_a&sslmode=require')
>>> "secret" in loc.conninfo, "schema" in loc.conninfo
(True, False)
>>> parse_location("PG:service=center schema=p1").display
'postgresql:///?service=center&schema=p1'
>>> is_postgres_location("labels.gpkg"), is_postgres_location("postgres://h/db?schema=a")
(False, True)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from geolabel.errors import InputError

#: libpq keywords a location URL has before its query (the rest, e.g. sslmode, go into it).
IN_URL = ("host", "port", "user", "password", "dbname")
PREFIXES = ("postgresql://", "postgres://", "PG:")
#: A project schema: a plain lower-case SQL identifier (no quoting games across sites).
SCHEMA_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class PgLocation:
    """A PostGIS store's connection (``conninfo``, handed to libpq) and ``schema``."""

    conninfo: str
    schema: str
    display: str

    def __str__(self) -> str:
        return self.display


def is_postgres_location(location: object) -> bool:
    """True for a PostgreSQL location (URL or ``PG:`` string), False for a file path."""
    return isinstance(location, str | PgLocation) and str(location).startswith(PREFIXES)


def parse_location(location: str | PgLocation) -> PgLocation:
    """The connection and schema of a PostgreSQL location; a missing or unusable schema is said."""
    if isinstance(location, PgLocation):
        return location
    if location.startswith("PG:"):
        return _from_keywords(location[3:])
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = [v for k, v in query if k == "schema"]
    rest = [(k, v) for k, v in query if k != "schema"]
    conninfo = urlunsplit(parts._replace(query=urlencode(rest)))
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{quote(parts.username)}@{netloc}"
    if parts.port:
        netloc += f":{parts.port}"
    shown = [(k, v) for k, v in query if k != "password"]
    display = urlunsplit(("postgresql", netloc, parts.path or "/", urlencode(shown, safe=",:/"), ""))
    return PgLocation(conninfo, _check_schema(schema[-1] if schema else None, display), display)


def _from_keywords(text: str) -> PgLocation:
    """``service=center schema=p1 user=li`` (libpq keywords, values without spaces)."""
    pairs = [item.split("=", 1) for item in text.split() if "=" in item]
    schema = [v.strip("'\"") for k, v in pairs if k == "schema"]
    rest = [(k, v) for k, v in pairs if k != "schema"]
    shown = [(k, v.strip("'\"")) for k, v in pairs if k != "password"]
    display = "postgresql:///?" + urlencode(shown, safe=",:/")
    conninfo = " ".join(f"{k}={v}" for k, v in rest)
    return PgLocation(conninfo, _check_schema(schema[-1] if schema else None, display), display)


def _check_schema(schema: str | None, display: str) -> str:
    if not schema:
        raise InputError(f"{display}: add ?schema=NAME to the location: each project is one PostgreSQL schema")
    if not SCHEMA_PATTERN.fullmatch(schema):
        raise InputError(
            f"{display}: schema {schema!r} must be lower-case letters, digits and _ (at most 63), "
            "not starting with a digit"
        )
    return schema


def conninfo_keywords(conninfo: str) -> dict[str, str]:
    """libpq's keywords and values of a connection string or URL (libpq's own parser)."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise InputError("PostGIS label stores need psycopg 3: pip install 'geolabel[postgis]'") from None
    return {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}


def location_url(params: dict[str, str], schema: str) -> str:
    """A location URL from libpq keywords (``params``) and a project schema.

    >>> location_url({"host": "db", "port": "5433", "user": "li", "dbname": "labels", "sslmode": "require"}, "p1")
    'postgresql://li@db:5433/labels?sslmode=require&schema=p1'
    """
    netloc = quote(params.get("host", ""), safe="")
    if params.get("port"):
        netloc += f":{params['port']}"
    if params.get("user"):
        secret = f":{quote(params['password'], safe='')}" if params.get("password") else ""
        netloc = f"{quote(params['user'], safe='')}{secret}@{netloc}"
    query = [(k, v) for k, v in params.items() if k not in IN_URL and v] + [("schema", schema)]
    return urlunsplit(("postgresql", netloc, "/" + quote(params.get("dbname", "")), urlencode(query), ""))


def application_name() -> str:
    """What the server's activity view shows for geolabel's connections."""
    return f"geolabel-{os.getpid()}"


def shown_location(location: object) -> str:
    """How messages name a store or file: a PostgreSQL location as :attr:`PgLocation.display`
    (no password), anything else as it was given.

    >>> shown_location("postgresql://li:secret@db/labels?schema=p1"), shown_location("a/labels.gpkg")
    ('postgresql://li@db/labels?schema=p1', 'a/labels.gpkg')
    """
    if isinstance(location, PgLocation):
        return location.display
    text = os.fspath(location) if isinstance(location, str | os.PathLike) else str(location)
    if not is_postgres_location(text):
        return str(text)
    try:
        return parse_location(text).display
    except InputError:  # no usable schema: the URL without anything secret
        return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1@", re.sub(r"password=[^&\s]*&?", "", text))
