"""Creating a PostGIS label store: the project schema and its group roles, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from geolabel.errors import AccessDeniedError, GeolabelError, InputError, OutputExistsError, UnreachableError
from geolabel.labels.pg_connect import connect, psycopg_module, server_message
from geolabel.labels.pg_location import PgLocation, parse_location
from geolabel.labels.pg_sql import ROLES, create_sql, group_role
from geolabel.labels.pg_store import PostGISStore
from geolabel.labels.store import STORE_FORMAT, busy_timeout

if TYPE_CHECKING:
    import pyproj

    from geolabel.labels.schema import ClassSchema
    from geolabel.labels.tagschema import TagSchema


def srid_of(crs: pyproj.CRS, where: str) -> int:
    """The EPSG code PostGIS knows a store CRS by."""
    code = crs.to_epsg(min_confidence=90)
    if code is None:
        raise InputError(
            f"{where}: a PostGIS store needs a CRS with an EPSG code ({crs.name} has none); "
            "use a GeoPackage store for this CRS"
        )
    return int(code)


def create_postgis_store(
    location: str | PgLocation,
    *,
    crs: pyproj.CRS,
    schema: ClassSchema,
    tag_schema: TagSchema | None = None,
    overwrite: bool = False,
    fill: Callable[[PostGISStore], None] | None = None,
) -> PostGISStore:
    """Create project schema and group roles in one transaction (all or nothing).

    ``overwrite`` drops an existing geolabel project in that schema first; any other schema
    of that name is left alone. ``tag_schema``: the project's tile tags. ``fill`` is called
    with the new store inside the same transaction (a copy loads the project there): if it
    fails, nothing was created and an old project replaced with ``overwrite`` is still there."""
    import json

    from geolabel.labels.store import now_iso

    loc = parse_location(location)
    srid = srid_of(crs, loc.display)
    conn = connect(loc, busy_timeout())
    pg = psycopg_module()
    try:
        database = conn.info.dbname
        groups = {role: group_role(database, loc.schema, role) for role in ROLES}
        with conn.transaction():
            _drop_existing(conn, loc, overwrite)
            _ensure_postgis(conn, loc)
            _ensure_groups(conn, loc, groups, database)
            for sql in create_sql(loc.schema, srid, groups):
                conn.execute(sql)
            meta = {
                "store_format": str(STORE_FORMAT),
                "crs": crs.to_wkt(),
                "srid": str(srid),
                "schema": schema.to_json(),
                "created": now_iso(),
                **{f"role_{role}": name for role, name in groups.items()},
            }
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {loc.schema}.geolabel_meta VALUES (%s, %s)", sorted(meta.items()))
                cur.executemany(
                    f"INSERT INTO {loc.schema}.geolabel_classes VALUES (%s, %s, %s, %s, %s)",
                    [
                        (c.code, c.name, c.color, c.priority, json.dumps(dict(c.names), ensure_ascii=False))
                        for c in schema
                    ],
                )
            if fill is not None or tag_schema is not None:
                store = PostGISStore(loc, connection=conn)
                try:
                    if tag_schema is not None:
                        store.write_tag_schema(tag_schema)
                    if fill is not None:
                        fill(store)
                finally:
                    store.close()
    except pg.Error as exc:
        code = exc.sqlstate or ""
        if code == "42501":
            raise AccessDeniedError(
                f"{loc}: cannot create the project ({server_message(exc)}); it needs a role that may create schemas "
                "and roles in this database (CREATEROLE), such as the checking center's admin"
            ) from None
        raise UnreachableError(f"{loc}: cannot create the project ({server_message(exc)})") from None
    finally:
        conn.close()
    return PostGISStore(loc)


def _drop_existing(conn: Any, loc: PgLocation, overwrite: bool) -> None:
    exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (loc.schema,)).fetchone()
    if not exists:
        return
    is_store = conn.execute(
        "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'geolabel_meta'", (loc.schema,)
    ).fetchone()
    if not is_store:
        raise OutputExistsError(f"{loc}: schema {loc.schema!r} exists and is not a geolabel project; it is left alone")
    if not overwrite:
        raise OutputExistsError(
            f"{loc}: project {loc.schema!r} already exists; pass `overwrite=True` to replace it "
            "(its labels would be lost)",
            params=("overwrite",),
        )
    conn.execute(f"DROP SCHEMA {loc.schema} CASCADE")


def _ensure_postgis(conn: Any, loc: PgLocation) -> None:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone():
        return
    try:
        conn.execute("CREATE EXTENSION postgis")
    except Exception as exc:
        raise GeolabelError(
            f"{loc}: the database has no PostGIS and this role cannot add it ({server_message(exc)}); "
            "ask its owner to run CREATE EXTENSION postgis"
        ) from None


def _ensure_groups(conn: Any, loc: PgLocation, groups: dict[str, str], database: str) -> None:
    from psycopg import sql

    for role, name in groups.items():
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("COMMENT ON ROLE {} IS {}").format(
                sql.Identifier(name), sql.Literal(f"geolabel {role}s of {database}.{loc.schema}")
            )
        )
