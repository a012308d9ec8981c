"""The PostGIS backend of the label store, for teams: :class:`PostGISStore` (psycopg 3).

Same interface and behaviour as the GeoPackage store; the rules (versions, history, who
may change what) are the database's own, see :mod:`geolabel.labels.pg_sql`. Bulk inserts
use binary COPY, large reads a server-side cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from geolabel.errors import (
    AccessDeniedError,
    InputError,
    StoreBusyError,
    UnreachableError,
    check_choice,
)
from geolabel.labels.pg_connect import connect, psycopg_module, server_message
from geolabel.labels.pg_location import PgLocation, parse_location
from geolabel.labels.pg_sql import CONFLICT_SQLSTATE, ROLES, time_text
from geolabel.labels.pg_tags import PostGISTags
from geolabel.labels.store import (
    GOLD_SCORE_FIELDS,
    LABEL_FIELDS,
    MERGED_FIELDS,
    PROVENANCE_FIELDS,
    REVIEW_FIELDS,
    SOURCES,
    STATUSES,
    STORE_FORMAT,
    TASK_FIELDS,
    TASK_TIMES,
    TILE_STATUSES,
    ConflictError,
    DamagedStoreError,
    GoldScore,
    HistoryEntry,
    LabelArrays,
    LabelStore,
    NotAStoreError,
    Review,
    Task,
    busy_timeout,
    check_task_fields,
    field_names,
    stale_task,
)

if TYPE_CHECKING:
    import psycopg
    import pyproj

    from geolabel.labels.schema import ClassSchema

#: Rows per round trip of a server-side cursor.
FETCH_ROWS = 20_000
UPDATABLE = ("class_code", "labeler", "team", "status", "tile_id", "comment", "source")
#: What the database lets each role do with labels (said when it refuses).
RULES = (
    "labelers add and change their own team's labels, not accepted or reviewed ones, and give only status "
    "draft or submitted; reviewers change only status and comment of their own team's labels"
)
_TIMES = ("created", "modified")
#: What the database lets each role do with tasks (said when it refuses).
TASK_RULES = (
    "labelers start and submit their own team's tasks given to them or to the team; reviewers accept or reject "
    "their own team's submitted tasks; the admin assigns"
)


class PostGISStore(PostGISTags, LabelStore):
    """A label store in one schema of a PostgreSQL/PostGIS database."""

    def __init__(self, location: str | PgLocation, *, timeout: float | None = None, connection: Any = None) -> None:
        """``connection``: work on the caller's connection (and inside its transaction: a
        copy fills a project in the transaction that creates it); closing leaves it open."""
        self.location = parse_location(location)
        self.uri = self.location.display
        self.timeout = busy_timeout() if timeout is None else timeout
        self._borrowed = connection is not None
        self._conn: psycopg.Connection[Any] = connection or connect(self.location, self.timeout)
        self._depth = 0
        try:
            self._read_meta()
        except BaseException:
            self.close()
            raise

    @property
    def s(self) -> str:
        """The project's schema (a checked identifier, safe to put into SQL)."""
        return self.location.schema

    def _read_meta(self) -> None:
        from geolabel.crs import parse_stored_crs
        from geolabel.labels.schema import ClassSchema

        try:
            meta = dict(self._execute(f"SELECT key, value FROM {self.s}.geolabel_meta").fetchall())
        except NotAStoreError:
            raise NotAStoreError(
                f"{self}: no geolabel project in schema {self.s!r}; create one with `create_store()`",
                params=("create_store()",),
            ) from None
        except AccessDeniedError:
            raise AccessDeniedError(
                f"{self}: {self._conn.info.user} is not a member of project {self.s}; "
                "ask the project's admin to add you with `add_member()`",
                params=("add_member()",),
            ) from None
        for key in ("store_format", "crs", "schema", "srid"):
            if not meta.get(key):
                raise DamagedStoreError(f"{self}: the store's metadata is damaged (geolabel_meta has no {key!r})")
        if int(meta["store_format"]) > STORE_FORMAT:
            raise NotAStoreError(f"{self}: made by a newer geolabel (store format {meta['store_format']})")
        self.crs: pyproj.CRS = parse_stored_crs(meta["crs"], what="geolabel_meta 'crs'")
        self.schema: ClassSchema = ClassSchema.from_json(meta["schema"])
        self.srid = int(meta["srid"])
        self.groups = {role: meta.get(f"role_{role}", "") for role in ROLES}

    def __str__(self) -> str:
        return self.uri

    # -- SQL with failures in the store's words -------------------------------------

    def _execute(self, sql: Any, args: Any = None) -> psycopg.Cursor[Any]:
        pg = psycopg_module()
        try:
            return self._conn.execute(sql, args)
        except pg.Error as exc:
            raise self._explain(exc) from None

    def _explain(self, exc: Exception) -> Exception:
        """The geolabel error for a database failure."""
        code = getattr(exc, "sqlstate", None) or ""
        text = server_message(exc)
        if code == CONFLICT_SQLSTATE:
            return ConflictError(f"{self}: {text}; reload it and apply your change again")
        if code == "42501" or "row-level security" in text:
            return AccessDeniedError(f"{self}: refused by the database: {text}")
        if code == "42P01" or code == "3F000":  # undefined table / schema
            return NotAStoreError(f"{self}: {text}")
        if code in ("55P03", "40P01"):  # lock_not_available, deadlock
            return StoreBusyError(
                f"{self}: store busy (another writer holds the rows; gave up after {self.timeout:g} s)"
            )
        if code == "23505":
            return InputError(f"{self}: a label id is already in the store ({text})")
        if code.startswith(("08", "57")):
            return UnreachableError(f"{self}: lost the connection to the server ({text})")
        if code.startswith(("22", "23")):
            return InputError(f"{self}: the database refused a value ({text})")
        return exc

    # -- transactions ---------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Nested calls join the outer transaction; the outermost commits or rolls back."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        pg = psycopg_module()
        self._depth = 1
        try:
            with self._conn.transaction():
                yield
        except pg.Error as exc:
            raise self._explain(exc) from None
        finally:
            self._depth = 0

    # -- writes -----------------------------------------------------------------------

    def insert_rows(self, geoms: Any, rows: Sequence[dict[str, Any]]) -> None:
        import shapely

        if not len(rows):
            return
        ewkbs = shapely.to_wkb(
            shapely.set_srid(geoms, self.srid), flavor="extended", output_dimension=2, include_srid=True
        )
        columns = [_column_to_db(f, [row[f] for row in rows]) for f in LABEL_FIELDS]
        values = [list(record) for record in zip(ewkbs, *columns)]
        try:
            if self._row_security():
                self._insert_each(values)
            else:
                self._copy_in(values)
        except AccessDeniedError:
            raise AccessDeniedError(f"{self}: your role may not add these labels ({RULES})") from None
        self._analyze_after(len(rows))

    def _row_security(self) -> bool:
        """True when row-level security applies to this login (members; not the owner or
        a superuser). PostgreSQL refuses COPY into such a table: inserts go one by one."""
        row = self._execute("SELECT row_security_active(%s::regclass)", (f"{self.s}.labels",)).fetchone()
        return bool(row and row[0])

    def _copy_in(self, values: list[list[Any]]) -> None:
        cols = ", ".join(("geom", *LABEL_FIELDS))
        self._register_geometry()
        sql = f"COPY {self.s}.labels ({cols}) FROM STDIN (FORMAT BINARY)"
        with self.transaction(), self._conn.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(["geometry", "text", "int4", "text", "text", "text", "text", "text", "text",
                            "timestamptz", "timestamptz", "text", "int4"])  # fmt: skip
            for row in values:
                copy.write_row(row)

    def _insert_each(self, values: list[list[Any]]) -> None:
        cols = ", ".join(("geom", *LABEL_FIELDS))
        marks = ", ".join(["ST_GeomFromEWKB(%s)", *["%s"] * len(LABEL_FIELDS)])
        with self.transaction(), self._conn.cursor() as cur:
            try:
                cur.executemany(f"INSERT INTO {self.s}.labels ({cols}) VALUES ({marks})", values)
            except psycopg_module().Error as exc:
                raise self._explain(exc) from None

    def _register_geometry(self) -> None:
        """Let binary COPY send geometries as EWKB bytes (PostGIS's binary input)."""
        if getattr(self, "_geometry_ready", False):
            return
        from psycopg.adapt import Dumper
        from psycopg.pq import Format
        from psycopg.types import TypeInfo

        info = TypeInfo.fetch(self._conn, "geometry")
        if info is None:
            raise DamagedStoreError(f"{self}: the database has no PostGIS geometry type")
        info.register(self._conn)

        geometry_oid = info.oid

        class EwkbDumper(Dumper):
            format = Format.BINARY
            oid = geometry_oid

            def dump(self, obj: Any) -> bytes:
                return obj if isinstance(obj, bytes) else bytes(obj)

        self._conn.adapters.register_dumper(None, EwkbDumper)
        self._geometry_ready = True

    def _analyze_after(self, n: int) -> None:
        if n >= 10_000:
            self._execute(f"ANALYZE {self.s}.labels")

    def update(self, label_id: str, *, expected_version: int | None = None, geometry: Any = None, **fields: Any) -> int:
        sets, args = self._assignments(label_id, geometry, fields)
        if expected_version is not None:
            sets.append("base_version = %s")
            args.append(int(expected_version))
        sql = f"UPDATE {self.s}.labels SET {', '.join(sets)} WHERE label_id = %s"
        args.append(label_id)
        if expected_version is not None:
            sql += " AND version = %s"
            args.append(int(expected_version))
        denied = f"{self}: label {label_id}: your role may not make this change ({RULES})"
        # One statement, atomic on its own: one round trip outside a transaction (not three).
        try:
            row = self._execute(sql + " RETURNING version", args).fetchone()
        except AccessDeniedError:
            raise AccessDeniedError(denied) from None
        if row is not None:
            return int(row[0])
        current = self._execute(f"SELECT version FROM {self.s}.labels WHERE label_id = %s", (label_id,)).fetchone()
        if current is None:
            raise InputError(f"{self}: no label with id {label_id}")
        if expected_version is not None and current[0] != expected_version:
            raise ConflictError(
                f"label {label_id} was changed by someone else (now version {current[0]}, "
                f"you edited version {expected_version}); reload it and apply your change again"
            )
        raise AccessDeniedError(denied)

    def _assignments(self, label_id: str, geometry: Any, fields: dict[str, Any]) -> tuple[list[str], list[Any]]:
        import shapely

        unknown = set(fields) - set(UPDATABLE)
        if unknown:
            raise InputError(f"cannot update field(s) {sorted(unknown)}; updatable: {sorted(UPDATABLE)}")
        if "class_code" in fields:
            cls = self.schema.get(int(fields["class_code"]))
            fields = {**fields, "class_code": cls.code, "class_name": cls.name}
        if "status" in fields:
            check_choice(fields["status"], STATUSES, "status")
        if "source" in fields:
            check_choice(fields["source"], SOURCES, "source")
        sets = [f"{k} = %s" for k in fields]
        args: list[Any] = list(fields.values())
        if geometry is not None:
            if geometry.geom_type != "Polygon" or not shapely.is_valid(geometry) or geometry.is_empty:
                raise InputError(f"label {label_id}: new geometry must be a valid, non-empty Polygon")
            sets.append(f"geom = ST_GeomFromWKB(%s, {self.srid})")
            args.append(shapely.to_wkb(geometry, flavor="iso", output_dimension=2))
        if not sets:
            sets.append("version = version")  # a change with nothing in it still counts as one
        return sets, args

    def delete(self, label_ids: Iterable[str]) -> int:
        ids = list(dict.fromkeys(label_ids))
        with self.transaction():
            try:
                gone = self._execute(
                    f"DELETE FROM {self.s}.labels WHERE label_id = ANY(%s) RETURNING label_id", (ids,)
                ).fetchall()
            except AccessDeniedError:  # no DELETE right at all (a reviewer)
                gone, left = [], set(ids)
            else:  # rows row-level security hid from the DELETE
                left = set() if len(gone) == len(ids) else {r[0] for r in self._execute(
                    f"SELECT label_id FROM {self.s}.labels WHERE label_id = ANY(%s)", (ids,)
                )}  # fmt: skip
            if left:
                raise AccessDeniedError(
                    f"{self}: label {sorted(left)[0]}: your role may not delete it ({RULES}); nothing was deleted"
                )
        return len(gone)

    def replace_geometries(self, changes: Sequence[tuple[str, Any]]) -> None:
        import shapely

        if not changes:
            return
        wkbs = shapely.to_wkb([g for _, g in changes], flavor="iso", output_dimension=2)
        with self.transaction(), self._conn.cursor() as cur:
            try:
                cur.executemany(
                    f"UPDATE {self.s}.labels SET geom = ST_GeomFromWKB(%s, {self.srid}) WHERE label_id = %s "
                    "RETURNING label_id",
                    [(w, label_id) for w, (label_id, _) in zip(wkbs, changes)],
                    returning=True,
                )
                changed: set[str] = set()
                while True:
                    changed.update(r[0] for r in cur.fetchall())
                    if not cur.nextset():
                        break
            except psycopg_module().Error as exc:
                raise self._explain(exc) from None
            self._check_all_changed([label_id for label_id, _ in changes], changed)

    def _check_all_changed(self, label_ids: list[str], changed: set[str]) -> None:
        """Row-level security skips rows a role may not change without an error: say so
        (the caller's transaction then rolls back, nothing is half done)."""
        missed = [i for i in label_ids if i not in changed]
        if not missed:
            return
        there = {
            r[0] for r in self._execute(f"SELECT label_id FROM {self.s}.labels WHERE label_id = ANY(%s)", (missed,))
        }
        if there:
            raise AccessDeniedError(
                f"{self}: label {sorted(there)[0]}: your role may not change it ({RULES}); nothing was changed"
            )

    # -- reads ------------------------------------------------------------------------

    def read(
        self,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        tile_id: str | None = None,
        classes: Iterable[int] | None = None,
        status: Iterable[str] | None = None,
        labeler: str | None = None,
        team: str | None = None,
        label_ids: Iterable[str] | None = None,
        fields: Sequence[str] | None = None,
    ) -> LabelArrays:
        import numpy as np
        import shapely

        names = field_names(fields)
        where: list[str] = []
        args: list[Any] = []
        if bbox is not None:
            where.append(f"geom && ST_MakeEnvelope(%s, %s, %s, %s, {self.srid})")
            args += [float(v) for v in bbox]
        for column, values in (("class_code", classes), ("status", status), ("label_id", label_ids)):
            if values is not None:
                where.append(f"{column} = ANY(%s)")
                args.append([int(v) for v in values] if column == "class_code" else [str(v) for v in values])
        for column, value in (("tile_id", tile_id), ("labeler", labeler), ("team", team)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        selected = ["ST_AsBinary(geom)", *(time_text(n) if n in _TIMES else n for n in names)]
        sql = f"SELECT {', '.join(selected)} FROM {self.s}.labels"
        if where:
            sql += " WHERE " + " AND ".join(where)
        small = bbox is not None or tile_id is not None or label_ids is not None
        rows = self._fetch_all(sql + " ORDER BY fid", args, small=small)
        geoms = (
            shapely.from_wkb(np.array([bytes(r[0]) for r in rows], dtype=object))
            if rows
            else np.array([], dtype=object)
        )
        columns = {name: [r[k + 1] for r in rows] for k, name in enumerate(names)}
        arrays = LabelArrays(geoms=geoms, columns=columns)
        if bbox is not None and len(rows):
            arrays = arrays.take(shapely.intersects(geoms, shapely.box(*bbox)))
        return arrays

    def _fetch_all(self, sql: str, args: Sequence[Any], *, small: bool = False) -> list[Any]:
        """All rows, binary. A ``small`` read (a window, a tile, given ids) takes one round
        trip; others go through a server-side cursor (``FETCH_ROWS`` per round trip), so
        the whole result never sits in libpq's buffer as well."""
        pg = psycopg_module()
        try:
            if small:
                with self._conn.cursor(binary=True) as cur:
                    return cur.execute(sql, args).fetchall()
            rows: list[Any] = []
            with self._conn.transaction(), self._conn.cursor(name="geolabel_read", binary=True) as cur:
                cur.itersize = FETCH_ROWS
                cur.execute(sql, args)
                while batch := cur.fetchmany(FETCH_ROWS):
                    rows += batch
            return rows
        except pg.Error as exc:
            raise self._explain(exc) from None

    def count(self) -> int:
        (n,) = self._execute(f"SELECT count(*) FROM {self.s}.labels").fetchall()[0]
        return int(n)

    def set_tile_status(self, tile_id: str, status: str, *, labeler: str | None = None) -> None:
        check_choice(status, TILE_STATUSES, "tile status")
        with self.transaction():
            self._execute(
                f"INSERT INTO {self.s}.geolabel_tiles VALUES (%s, %s, %s, now()) ON CONFLICT (tile_id) DO UPDATE "
                "SET status = excluded.status, labeler = excluded.labeler, modified = excluded.modified",
                (tile_id, status, labeler),
            )

    def tile_statuses(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.tile_rows()}

    def tile_rows(self) -> list[tuple[str, str, str | None, str | None]]:
        sql = f"SELECT tile_id, status, labeler, {time_text('modified')} FROM {self.s}.geolabel_tiles ORDER BY tile_id"
        return [tuple(r) for r in self._execute(sql).fetchall()]

    # -- history ----------------------------------------------------------------------

    def history(
        self, *, label_id: str | None = None, labeler: str | None = None, since: str | None = None
    ) -> list[HistoryEntry]:
        import shapely

        where, args = [], []
        for column, value in (("label_id", label_id), ("labeler", labeler)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        if since is not None:
            where.append("changed_at >= %s::timestamptz")
            args.append(since)
        sql = (
            f"SELECT history_id, label_id, action, db_role, labeler, {time_text('changed_at')}, old_version, "
            f"new_version, ST_AsBinary(old_geom), old_fields FROM {self.s}.geolabel_history"
        )
        rows = self._fetch_all(sql + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY history_id", args)
        return [
            HistoryEntry.from_row(r, shapely.from_wkb(bytes(r[8])) if r[8] is not None else None, r[9]) for r in rows
        ]

    def load_copy(
        self,
        geoms: Any,
        rows: Sequence[dict[str, Any]],
        history: Sequence[HistoryEntry],
        tiles: Sequence[tuple[str, str, str | None, str | None]],
        *,
        tasks: Sequence[Task] = (),
        reviews: Sequence[Review] = (),
    ) -> None:
        import shapely
        from psycopg.types.json import Jsonb

        if self.count() or self.tile_rows():
            raise InputError(f"{self}: a copy goes into an empty store; this one has labels")
        with self.transaction():
            self.insert_rows(geoms, rows)
            self._execute(f"DELETE FROM {self.s}.geolabel_history")
            with self._conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {self.s}.geolabel_history VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                    f"ST_GeomFromWKB(%s, {self.srid}), %s)",
                    [
                        (e.history_id, e.label_id, e.action, e.db_role, e.labeler, e.changed_at, e.old_version,
                         e.new_version, None if e.old_geom is None else shapely.to_wkb(e.old_geom, output_dimension=2),
                         None if e.old_fields is None else Jsonb(e.old_fields))
                        for e in history
                    ],
                )  # fmt: skip
                cur.executemany(f"INSERT INTO {self.s}.geolabel_tiles VALUES (%s, %s, %s, %s)", list(tiles))
            self._execute(
                f"SELECT setval(pg_get_serial_sequence('{self.s}.geolabel_history', 'history_id'), "
                f"GREATEST((SELECT max(history_id) FROM {self.s}.geolabel_history), 1))"
            )
            self.add_tasks([t.row() for t in tasks])
            for review in reviews:
                self.add_review(review.row())

    # -- tasks and review -------------------------------------------------------------

    def member_name(self) -> str | None:
        row = self._execute("SELECT session_user").fetchone()
        return str(row[0]) if row else None

    def _task_sql(self, sql: str, args: Any = None, *, many: bool = False) -> Any:
        """Run SQL on the tasks tables; a project made before they existed is said so."""
        try:
            if many:
                with self.transaction(), self._conn.cursor() as cur:
                    try:
                        cur.executemany(sql, args)
                    except psycopg_module().Error as exc:
                        raise self._explain(exc) from None
                return None
            return self._execute(sql, args)
        except NotAStoreError:
            raise NotAStoreError(
                f"{self}: project {self.s} was made before tasks existed; recreate it, or copy it with "
                "`geolabel labels copy` (the copy has them)"
            ) from None

    def add_tasks(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        names = [f for f in TASK_FIELDS if f != "task_id" or rows[0].get("task_id") is not None]
        sql = f"INSERT INTO {self.s}.geolabel_tasks ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})"
        try:
            self._task_sql(sql, [[row.get(f) for f in names] for row in rows], many=True)
        except InputError as exc:
            if "already in the store" not in str(exc):
                raise
            raise InputError(f"{self}: a tile is already assigned as that copy") from None
        except AccessDeniedError:
            raise AccessDeniedError(f"{self}: only the project's admin assigns tiles") from None
        if "task_id" in names:
            self._execute(
                f"SELECT setval(pg_get_serial_sequence('{self.s}.geolabel_tasks', 'task_id'), "
                f"GREATEST((SELECT max(task_id) FROM {self.s}.geolabel_tasks), 1))"
            )

    def tasks(
        self,
        *,
        team: str | None = None,
        tile_ids: Iterable[str] | None = None,
        status: Iterable[str] | None = None,
    ) -> list[Task]:
        where: list[str] = []
        args: list[Any] = []
        if team is not None:
            where.append("team = %s")
            args.append(team)
        for column, values in (("tile_id", tile_ids), ("status", status)):
            if values is not None:
                where.append(f"{column} = ANY(%s)")
                args.append([str(v) for v in values])
        selected = ", ".join(time_text(f) if f in TASK_TIMES else f for f in TASK_FIELDS)
        sql = f"SELECT {selected} FROM {self.s}.geolabel_tasks"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY task_id"
        return [Task.from_row(r) for r in self._task_sql(sql, args).fetchall()]

    def update_task(self, task_id: int, *, expected_status: str, **fields: Any) -> None:
        check_task_fields(fields)
        sets = ", ".join(f"{k} = %s" for k in fields)
        sql = f"UPDATE {self.s}.geolabel_tasks SET {sets} WHERE task_id = %s AND status = %s RETURNING task_id"
        denied = f"{self}: task {task_id}: your role may not make this change ({TASK_RULES})"
        with self.transaction():
            try:
                row = self._task_sql(sql, [*fields.values(), task_id, expected_status]).fetchone()
            except AccessDeniedError:
                raise AccessDeniedError(denied) from None
            if row is not None:
                return
            found = self._execute(f"SELECT status FROM {self.s}.geolabel_tasks WHERE task_id = %s", (task_id,))
            current = found.fetchone()
        if current is None:
            raise InputError(f"{self}: no task {task_id} (or not one of your team's)")
        if current[0] != expected_status:
            raise stale_task(task_id, current[0], expected_status)
        raise AccessDeniedError(denied)

    def add_review(self, row: dict[str, Any]) -> None:
        names = [f for f in REVIEW_FIELDS if f != "review_id" or row.get("review_id") is not None]
        marks = ", ".join("%s::jsonb" if f == "findings" else "%s" for f in names)
        sql = f"INSERT INTO {self.s}.geolabel_reviews ({', '.join(names)}) VALUES ({marks})"
        try:
            self._task_sql(sql, [row.get(f) for f in names])
        except AccessDeniedError:
            raise AccessDeniedError(
                f"{self}: tile {row.get('tile_id')}: your role may not record a {row.get('decision')} decision "
                f"({TASK_RULES})"
            ) from None
        if "review_id" in names:
            self._execute(
                f"SELECT setval(pg_get_serial_sequence('{self.s}.geolabel_reviews', 'review_id'), "
                f"GREATEST((SELECT max(review_id) FROM {self.s}.geolabel_reviews), 1))"
            )

    def reviews(self, *, tile_id: str | None = None, task_id: int | None = None) -> list[Review]:
        where, args = [], []
        for column, value in (("tile_id", tile_id), ("task_id", task_id)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        selected = ", ".join(time_text(f) if f == "at" else "findings::text" if f == "findings" else f
                             for f in REVIEW_FIELDS)  # fmt: skip
        sql = f"SELECT {selected} FROM {self.s}.geolabel_reviews"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY review_id"
        return [Review.from_row(r) for r in self._task_sql(sql, args).fetchall()]

    # -- gold tiles: the admin's only (see pg_sql.gold_sql) ----------------------------

    def _gold_sql(self, sql: str, args: Any = None) -> Any:
        """Run SQL on the gold tables, refused to anybody but the admin in the admin's words."""
        try:
            return self._execute(sql, args)
        except AccessDeniedError:
            raise AccessDeniedError(f"{self}: only the project's admin handles gold tiles") from None
        except NotAStoreError:
            raise NotAStoreError(
                f"{self}: project {self.s} was made before gold tiles existed; recreate it, or copy it with "
                "`geolabel labels copy` (the copy has them)"
            ) from None

    def may_read_gold(self) -> bool:
        name = f"{self.s}.geolabel_gold"
        sql = (
            "SELECT CASE WHEN to_regclass(%s) IS NULL THEN false "
            "ELSE has_table_privilege(to_regclass(%s), 'SELECT') END"
        )
        row = self._execute(sql, (name, name)).fetchone()
        return bool(row and row[0])

    def set_gold(self, tile_ids: Sequence[str], reference: Sequence[tuple[str, Any, int]], *, source: str) -> None:
        import shapely

        ids = [str(t) for t in tile_ids]
        with self.transaction():
            self._gold_sql(f"DELETE FROM {self.s}.geolabel_reference WHERE tile_id = ANY(%s)", (ids,))
            for tile_id in ids:
                self._gold_sql(
                    f"INSERT INTO {self.s}.geolabel_gold (tile_id, marked_at, source) VALUES (%s, now(), %s) "
                    "ON CONFLICT (tile_id) DO UPDATE SET marked_at = now(), source = EXCLUDED.source",
                    (tile_id, source),
                )
            for tile_id, geom, code in reference:
                self._gold_sql(
                    f"INSERT INTO {self.s}.geolabel_reference (tile_id, class_code, geom) "
                    f"VALUES (%s, %s, ST_GeomFromWKB(%s, {self.srid}))",
                    (tile_id, int(code), shapely.to_wkb(geom)),
                )

    def gold_tiles(self) -> list[str]:
        rows = self._gold_sql(f"SELECT tile_id FROM {self.s}.geolabel_gold ORDER BY marked_at, tile_id").fetchall()
        return [str(r[0]) for r in rows]

    def reference(self, tile_id: str) -> tuple[Any, list[int]]:
        import shapely

        sql = (f"SELECT ST_AsBinary(geom), class_code FROM {self.s}.geolabel_reference WHERE tile_id = %s "
               "ORDER BY reference_id")  # fmt: skip
        rows = self._gold_sql(sql, (tile_id,)).fetchall()
        return shapely.from_wkb([bytes(r[0]) for r in rows]), [int(r[1]) for r in rows]

    def add_gold_score(self, score: GoldScore) -> None:
        names = ", ".join(GOLD_SCORE_FIELDS)
        marks = ", ".join("%s::jsonb" if f == "metrics" else "%s" for f in GOLD_SCORE_FIELDS)
        self._gold_sql(
            f"INSERT INTO {self.s}.geolabel_gold_scores ({names}) VALUES ({marks}) ON CONFLICT (task_id, submitted_at) "
            "DO UPDATE SET scored_at = EXCLUDED.scored_at, metrics = EXCLUDED.metrics",
            [score.row()[f] for f in GOLD_SCORE_FIELDS],
        )

    def gold_scores(self) -> list[GoldScore]:
        selected = ", ".join(
            time_text(f) if f in ("submitted_at", "scored_at") else "metrics::text" if f == "metrics" else f
            for f in GOLD_SCORE_FIELDS
        )
        sql = f"SELECT {selected} FROM {self.s}.geolabel_gold_scores ORDER BY submitted_at, task_id"
        return [GoldScore.from_row(r) for r in self._gold_sql(sql).fetchall()]

    # -- deliveries from offline sites: the admin's only (see pg_sql.delivery_sql) -------

    def _merge_sql(self, sql: str, args: Any = None, *, many: bool = False) -> Any:
        """Run SQL on the merge tables, refused to anybody but the admin in the admin's words."""
        try:
            return self._executemany(sql, args) if many else self._execute(sql, args)
        except AccessDeniedError:
            raise AccessDeniedError(f"{self}: only the project's admin merges deliveries") from None
        except NotAStoreError:
            raise NotAStoreError(
                f"{self}: project {self.s} was made before deliveries could be merged; recreate it, or copy it "
                "with `geolabel labels copy` (the copy has the tables)"
            ) from None

    def _executemany(self, sql: str, rows: Any) -> None:
        pg = psycopg_module()
        try:
            with self._conn.cursor() as cursor:
                cursor.executemany(sql, rows)
        except pg.Error as exc:
            raise self._explain(exc) from None

    def merged_deliveries(self) -> list[dict[str, Any]]:
        names = ", ".join(time_text(f) if f == "merged_at" else f for f in MERGED_FIELDS)
        sql = f"SELECT {names} FROM {self.s}.geolabel_merged_deliveries ORDER BY merged_at, delivery_id"
        return [dict(zip(MERGED_FIELDS, r)) for r in self._merge_sql(sql).fetchall()]

    def record_merge(self, merged: dict[str, Any], provenance: Sequence[dict[str, Any]]) -> None:
        def insert(table: str, fields: Sequence[str], conflict: str) -> str:
            marks = ", ".join("%s" for _ in fields)
            return f"INSERT INTO {self.s}.{table} ({', '.join(fields)}) VALUES ({marks}) {conflict}"

        with self.transaction():
            self._merge_sql(insert("geolabel_merged_deliveries", MERGED_FIELDS, ""), [merged[f] for f in MERGED_FIELDS])
            if provenance:
                sql = insert("geolabel_provenance", PROVENANCE_FIELDS, "ON CONFLICT (label_id, delivery_id) DO NOTHING")
                self._merge_sql(sql, [[row[f] for f in PROVENANCE_FIELDS] for row in provenance], many=True)

    def provenance(self, *, label_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        names = ", ".join(time_text(f) if f == "merged_at" else f for f in PROVENANCE_FIELDS)
        sql = f"SELECT {names} FROM {self.s}.geolabel_provenance"
        args: Any = None
        if label_ids is not None:
            sql, args = sql + " WHERE label_id = ANY(%s)", ([str(i) for i in label_ids],)
        rows = self._merge_sql(sql + " ORDER BY merged_at, label_id", args).fetchall()
        return [dict(zip(PROVENANCE_FIELDS, r)) for r in rows]

    def close(self) -> None:
        if getattr(self, "_conn", None) is not None:
            if not self._borrowed:
                self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PostGISStore({self.uri!r}, crs={self.crs.to_string()!r}, labels={self.count()})"


def _column_to_db(field: str, values: list[Any]) -> list[Any]:
    """A label field's values as COPY takes them: times as datetimes (parsed once per distinct
    text: a bulk insert shares one time), everything else as it is."""
    if field not in _TIMES:
        return values
    parsed: dict[Any, Any] = {None: None}
    for value in values:
        if value not in parsed:
            parsed[value] = (
                value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            )
    return [parsed[v] for v in values]
