"""The GeoPackage backend of the label store: the file's tables and triggers, and
:class:`GeoPackageStore` (sqlite3 on the file QGIS edits natively)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.errors import (
    InputError,
    check_choice,
)
from geolabel.labels.store import (
    CLASSES_TABLE,
    GOLD_SCORE_FIELDS,
    GOLD_SCORES_TABLE,
    GOLD_TABLE,
    HISTORY_TABLE,
    LABEL_FIELDS,
    LABELS_TABLE,
    MERGED_DELIVERIES_TABLE,
    MERGED_FIELDS,
    META_TABLE,
    PROVENANCE_FIELDS,
    PROVENANCE_TABLE,
    REFERENCE_TABLE,
    REVIEW_FIELDS,
    REVIEWS_TABLE,
    SOURCES,
    STATUSES,
    TASK_FIELDS,
    TASKS_TABLE,
    TILE_STATUSES,
    TILES_TABLE,
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
    class_code_value,
    field_names,
    now_iso,
)

if TYPE_CHECKING:
    from geolabel.labels.tagschema import TagSchema, TileTag

from geolabel.labels.gpkg_file import (
    TRIGGERS,
    StoreConnection,
    check_local_folder,
    connect,
    connect_read_only,
    ensure_delivery_tables,
    ensure_gold_tables,
    ensure_history_table,
    ensure_task_tables,
    read_meta,
    register_attributes_table,
    table_names,
)


class GeoPackageStore(LabelStore):
    """A label store in one GeoPackage file, written through SQLite transactions."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float | None = None) -> None:
        from geolabel.files import check_input_file

        p = Path(path)
        if not p.exists():
            raise InputError(f"{p}: no such label store; create one with `create_store()`", params=("create_store()",))
        check_input_file(p, "label store")
        check_local_folder(p)
        self.path = p
        self.uri = str(p)
        self._conn = self._open(p, busy_timeout() if timeout is None else timeout)
        try:
            self.crs, self.schema, self.srs_id = read_meta(self._conn, p)
        except BaseException:
            self.close()
            raise
        self._depth = 0
        self._labels_changed = False  # the labels table was written in this transaction
        self._triggers_checked = False  # missing triggers are added by the first write

    @staticmethod
    def _open(p: Path, timeout: float) -> StoreConnection:
        """A connection to a file that holds a label store."""
        from geolabel.labels.gpkg import register_functions

        conn = connect(p, timeout)
        try:
            tables = table_names(conn)
        except InputError as exc:  # "unable to open": a WAL store in a read-only folder?
            conn.close()
            if "unable to open" not in str(exc):
                raise
            conn = connect_read_only(p, timeout)
            try:
                tables = table_names(conn)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        if META_TABLE not in tables or LABELS_TABLE not in tables:
            conn.close()
            raise NotAStoreError(
                f"{p}: not a geolabel label store; create one with `create_store()` and import this file "
                "with `import_labels()`",
                params=("create_store()", "import_labels()"),
            )
        if CLASSES_TABLE not in tables:
            conn.close()
            raise DamagedStoreError(f"{p}: the store's metadata is damaged (no {CLASSES_TABLE} table)")
        register_functions(conn)
        return conn

    def restore_triggers(self) -> None:
        """Add the triggers the store lacks now rather than with its next write: a front end
        that lets QGIS edit the store calls it, so those edits are versioned too."""
        with self.transaction():
            pass  # the outermost transaction restores them

    def _restore_triggers(self) -> None:
        """Add the triggers a store lacks (made before one existed, or dropped by another
        tool), inside the first write transaction: reading a store never changes it."""
        if self._triggers_checked:
            return
        present = {name for (name,) in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        ensure_history_table(self._conn)
        ensure_task_tables(self._conn)
        for name, sql in TRIGGERS.items():
            if name not in present:
                self._conn.execute(sql)
        self._triggers_checked = True

    # -- transactions -------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Nested calls join the outer transaction; the outermost commits or rolls back."""
        if self._depth == 0:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._restore_triggers()
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._labels_changed = False
                self._conn.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            if self._labels_changed:  # tile progress alone leaves the layer's extent as it is
                self._touch_contents()
                self._labels_changed = False
            self._conn.execute("COMMIT")

    def _touch_contents(self) -> None:
        """Keep gpkg_contents' extent and change time current, as GDAL does (one scan of the
        spatial index, so only after the labels changed)."""
        ext = self._conn.execute(
            f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM rtree_{LABELS_TABLE}_geom"
        ).fetchone()
        self._conn.execute(
            "UPDATE gpkg_contents SET last_change = ?, min_x = ?, min_y = ?, max_x = ?, max_y = ? WHERE table_name = ?",
            (now_iso(), *ext, LABELS_TABLE),
        )

    # -- writes -------------------------------------------------------------------

    def insert_rows(self, geoms: Any, rows: Sequence[dict[str, Any]]) -> None:
        from geolabel.labels.gpkg import to_blobs

        if not len(rows):
            return
        blobs = to_blobs(geoms, self.srs_id)
        cols = ", ".join(("geom", *LABEL_FIELDS))
        marks = ", ".join("?" * (len(LABEL_FIELDS) + 1))
        with self.transaction():
            self._labels_changed = True
            try:
                self._conn.executemany(
                    f"INSERT INTO {LABELS_TABLE} ({cols}) VALUES ({marks})",
                    ([blob, *(row[f] for f in LABEL_FIELDS)] for blob, row in zip(blobs, rows)),
                )
            except sqlite3.IntegrityError as exc:
                raise InputError(f"{self.path}: a label id is already in the store ({exc})") from None

    def update(self, label_id: str, *, expected_version: int | None = None, geometry: Any = None, **fields: Any) -> int:
        import shapely

        from geolabel.labels.gpkg import to_blobs

        allowed = {"class_code", "labeler", "team", "status", "tile_id", "comment", "source"}
        unknown = set(fields) - allowed
        if unknown:
            raise InputError(f"cannot update field(s) {sorted(unknown)}; updatable: {sorted(allowed)}")
        sets: dict[str, Any] = {}
        if "class_code" in fields:
            cls = self.schema.get(int(fields["class_code"]))
            sets.update(class_code=cls.code, class_name=cls.name)
        if "status" in fields:
            check_choice(fields["status"], STATUSES, "status")
        if "source" in fields:
            check_choice(fields["source"], SOURCES, "source")
        sets.update({k: v for k, v in fields.items() if k != "class_code"})
        if geometry is not None:
            if geometry.geom_type != "Polygon" or not shapely.is_valid(geometry) or geometry.is_empty:
                raise InputError(f"label {label_id}: new geometry must be a valid, non-empty Polygon")
            sets["geom"] = to_blobs([geometry], self.srs_id)[0]
        sets["modified"] = now_iso()
        assignments = ", ".join(f"{k} = ?" for k in sets)
        with self.transaction():
            self._labels_changed = True
            row = self._conn.execute(f"SELECT version FROM {LABELS_TABLE} WHERE label_id = ?", (label_id,)).fetchone()
            if row is None:
                raise InputError(f"{self.path}: no label with id {label_id}")
            current = int(row[0] or 0)
            if expected_version is not None and current != expected_version:
                raise ConflictError(
                    f"label {label_id} was changed by someone else (now version {current}, "
                    f"you edited version {expected_version}); reload it and apply your change again"
                )
            self._conn.execute(
                f"UPDATE {LABELS_TABLE} SET {assignments}, version = ? WHERE label_id = ? AND version IS ?",
                (*sets.values(), current + 1, label_id, row[0]),
            )
        return current + 1

    def delete(self, label_ids: Iterable[str]) -> int:
        ids = list(label_ids)
        with self.transaction():
            self._labels_changed = True
            cur = self._conn.executemany(f"DELETE FROM {LABELS_TABLE} WHERE label_id = ?", ((i,) for i in ids))
            return max(cur.rowcount, 0)

    def replace_geometries(self, changes: Sequence[tuple[str, Any]]) -> None:
        """Set new geometries for many labels at once (bumping versions); used by resolve."""
        from geolabel.geom import geometry_array
        from geolabel.labels.gpkg import to_blobs

        if not changes:
            return
        blobs = to_blobs(geometry_array((g for _, g in changes), len(changes)), self.srs_id)
        now = now_iso()
        with self.transaction():
            self._labels_changed = True
            self._conn.executemany(
                f"UPDATE {LABELS_TABLE} SET geom = ?, modified = ?, version = COALESCE(version, 0) + 1 "
                "WHERE label_id = ?",
                ((blob, now, label_id) for blob, (label_id, _) in zip(blobs, changes)),
            )

    # -- reads --------------------------------------------------------------------

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
        from geolabel.labels.gpkg import BadBlobError, from_blobs

        names = field_names(fields)
        where: list[str] = []
        args: list[Any] = []
        if bbox is not None:
            minx, miny, maxx, maxy = bbox
            where.append(
                f"fid IN (SELECT id FROM rtree_{LABELS_TABLE}_geom WHERE minx <= ? AND maxx >= ? "
                "AND miny <= ? AND maxy >= ?)"
            )
            args += [maxx, minx, maxy, miny]
        for column, values in (("class_code", classes), ("status", status), ("label_id", label_ids)):
            if values is not None:
                vals = list(values)
                where.append(f"{column} IN ({', '.join('?' * len(vals))})" if vals else "0")
                args += vals
        for column, value in (("tile_id", tile_id), ("labeler", labeler), ("team", team)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        # CAST: a geometry another tool stored as text or a number reaches the blob check
        sql = f"SELECT {', '.join(['CAST(geom AS BLOB)', *names])} FROM {LABELS_TABLE}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._fetch(sql + " ORDER BY fid", args)
        try:
            geoms = from_blobs([r[0] for r in rows])
        except BadBlobError as exc:
            which = f"label {rows[exc.index][1 + names.index('label_id')]}" if "label_id" in names else "a label"
            raise DamagedStoreError(
                f"{self.path}: the geometry of {which} is damaged ({exc.reason}); delete or redraw it in QGIS"
            ) from None
        columns = {name: [r[k + 1] for r in rows] for k, name in enumerate(names)}
        if "class_code" in columns:
            columns["class_code"] = [class_code_value(v) for v in columns["class_code"]]
        arrays = LabelArrays(geoms=geoms, columns=columns)
        if bbox is not None and len(rows):
            import shapely

            arrays = arrays.take(shapely.intersects(geoms, shapely.box(*bbox)))
        return arrays

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """All rows of a query; SQLite failures while stepping through them (a text value
        that is not UTF-8) are said as for :meth:`StoreConnection.execute`."""
        cursor = self._conn.execute(sql, args)
        try:
            return cursor.fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._conn.explain(exc) from None

    def count(self) -> int:
        return int(self._conn.execute(f"SELECT count(*) FROM {LABELS_TABLE}").fetchone()[0])

    def _has_tiles_table(self) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return self._conn.execute(query, (TILES_TABLE,)).fetchone() is not None

    def _ensure_tiles_table(self) -> None:
        if not self._has_tiles_table():
            with self.transaction():
                self._conn.execute(
                    f"CREATE TABLE {TILES_TABLE} (tile_id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL, "
                    "labeler TEXT, modified DATETIME)"
                )
                register_attributes_table(self._conn, TILES_TABLE, "labeling progress per tile")

    def set_tile_status(self, tile_id: str, status: str, *, labeler: str | None = None) -> None:
        check_choice(status, TILE_STATUSES, "tile status")
        self._ensure_tiles_table()
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO {TILES_TABLE} VALUES (?, ?, ?, ?) ON CONFLICT(tile_id) DO UPDATE SET "
                "status = excluded.status, labeler = excluded.labeler, modified = excluded.modified",
                (tile_id, status, labeler, now_iso()),
            )

    def tile_statuses(self) -> dict[str, str]:
        if not self._has_tiles_table():
            return {}
        return dict(self._conn.execute(f"SELECT tile_id, status FROM {TILES_TABLE}").fetchall())

    def tile_rows(self) -> list[tuple[str, str, str | None, str | None]]:
        if not self._has_tiles_table():
            return []
        return [tuple(r) for r in self._conn.execute(f"SELECT tile_id, status, labeler, modified FROM {TILES_TABLE}")]

    # -- tasks and review -----------------------------------------------------------

    def add_tasks(self, rows: Sequence[dict[str, Any]]) -> None:
        marks = ", ".join("?" * len(TASK_FIELDS))
        with self.transaction():
            try:
                self._conn.executemany(
                    f"INSERT INTO {TASKS_TABLE} ({', '.join(TASK_FIELDS)}) VALUES ({marks})",
                    ([row.get(f) for f in TASK_FIELDS] for row in rows),
                )
            except sqlite3.IntegrityError as exc:
                raise InputError(f"{self.path}: a tile is already assigned as that copy ({exc})") from None

    def tasks(
        self,
        *,
        team: str | None = None,
        tile_ids: Iterable[str] | None = None,
        status: Iterable[str] | None = None,
    ) -> list[Task]:
        if TASKS_TABLE not in table_names(self._conn):
            return []
        where: list[str] = []
        args: list[Any] = []
        if team is not None:
            where.append("team = ?")
            args.append(team)
        for column, values in (("tile_id", tile_ids), ("status", status)):
            if values is not None:
                vals = list(values)
                where.append(f"{column} IN ({', '.join('?' * len(vals))})" if vals else "0")
                args += vals
        sql = f"SELECT {', '.join(TASK_FIELDS)} FROM {TASKS_TABLE}"
        rows = self._fetch(sql + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY task_id", args)
        return [Task.from_row(r) for r in rows]

    def update_task(self, task_id: int, *, expected_status: str, **fields: Any) -> None:
        from geolabel.labels.store import stale_task

        check_task_fields(fields)
        with self.transaction():
            row = self._conn.execute(f"SELECT status FROM {TASKS_TABLE} WHERE task_id = ?", (task_id,)).fetchone()
            if row is None:
                raise InputError(f"{self.path}: no task {task_id}")
            if row[0] != expected_status:
                raise stale_task(task_id, row[0], expected_status)
            sets = ", ".join(f"{k} = ?" for k in fields)
            self._conn.execute(f"UPDATE {TASKS_TABLE} SET {sets} WHERE task_id = ?", (*fields.values(), task_id))

    def add_review(self, row: dict[str, Any]) -> None:
        marks = ", ".join("?" * len(REVIEW_FIELDS))
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO {REVIEWS_TABLE} ({', '.join(REVIEW_FIELDS)}) VALUES ({marks})",
                [row.get(f) for f in REVIEW_FIELDS],
            )

    def reviews(self, *, tile_id: str | None = None, task_id: int | None = None) -> list[Review]:
        if REVIEWS_TABLE not in table_names(self._conn):
            return []
        where, args = [], []
        for column, value in (("tile_id", tile_id), ("task_id", task_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {', '.join(REVIEW_FIELDS)} FROM {REVIEWS_TABLE}"
        rows = self._fetch(sql + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY review_id", args)
        return [Review.from_row(r) for r in rows]

    # -- gold tiles -----------------------------------------------------------------

    def set_gold(self, tile_ids: Sequence[str], reference: Sequence[tuple[str, Any, int]], *, source: str) -> None:
        import shapely

        ids = list(tile_ids)
        marks = ", ".join("?" * len(ids))
        with self.transaction():
            ensure_gold_tables(self._conn)
            self._conn.execute(f"DELETE FROM {REFERENCE_TABLE} WHERE tile_id IN ({marks})", ids)
            self._conn.executemany(
                f"INSERT OR REPLACE INTO {GOLD_TABLE} (tile_id, marked_at, source) VALUES (?, ?, ?)",
                [(t, now_iso(), source) for t in ids],
            )
            self._conn.executemany(
                f"INSERT INTO {REFERENCE_TABLE} (tile_id, class_code, geom_wkb) VALUES (?, ?, ?)",
                [(t, int(code), shapely.to_wkb(geom)) for t, geom, code in reference],
            )

    def gold_tiles(self) -> list[str]:
        if GOLD_TABLE not in table_names(self._conn):
            return []
        return [r[0] for r in self._fetch(f"SELECT tile_id FROM {GOLD_TABLE} ORDER BY marked_at, tile_id", [])]

    def reference(self, tile_id: str) -> tuple[Any, list[int]]:
        import shapely

        if REFERENCE_TABLE not in table_names(self._conn):
            return shapely.from_wkb([]), []
        sql = f"SELECT geom_wkb, class_code FROM {REFERENCE_TABLE} WHERE tile_id = ? ORDER BY reference_id"
        rows = self._fetch(sql, [tile_id])
        return shapely.from_wkb([r[0] for r in rows]), [int(r[1]) for r in rows]

    def add_gold_score(self, score: GoldScore) -> None:
        marks = ", ".join("?" * len(GOLD_SCORE_FIELDS))
        with self.transaction():
            ensure_gold_tables(self._conn)
            self._conn.execute(
                f"INSERT OR REPLACE INTO {GOLD_SCORES_TABLE} ({', '.join(GOLD_SCORE_FIELDS)}) VALUES ({marks})",
                [score.row()[f] for f in GOLD_SCORE_FIELDS],
            )

    def gold_scores(self) -> list[GoldScore]:
        if GOLD_SCORES_TABLE not in table_names(self._conn):
            return []
        sql = f"SELECT {', '.join(GOLD_SCORE_FIELDS)} FROM {GOLD_SCORES_TABLE} ORDER BY submitted_at, task_id"
        return [GoldScore.from_row(r) for r in self._fetch(sql, [])]

    # -- deliveries from offline sites -----------------------------------------------

    def merged_deliveries(self) -> list[dict[str, Any]]:
        if MERGED_DELIVERIES_TABLE not in table_names(self._conn):
            return []
        sql = f"SELECT {', '.join(MERGED_FIELDS)} FROM {MERGED_DELIVERIES_TABLE} ORDER BY merged_at, delivery_id"
        return [dict(zip(MERGED_FIELDS, r)) for r in self._fetch(sql, [])]

    def record_merge(self, merged: dict[str, Any], provenance: Sequence[dict[str, Any]]) -> None:
        with self.transaction():
            ensure_delivery_tables(self._conn)
            self._conn.execute(
                f"INSERT INTO {MERGED_DELIVERIES_TABLE} ({', '.join(MERGED_FIELDS)}) "
                f"VALUES ({', '.join('?' * len(MERGED_FIELDS))})",
                [merged[f] for f in MERGED_FIELDS],
            )
            self._conn.executemany(
                f"INSERT OR REPLACE INTO {PROVENANCE_TABLE} ({', '.join(PROVENANCE_FIELDS)}) "
                f"VALUES ({', '.join('?' * len(PROVENANCE_FIELDS))})",
                [[row[f] for f in PROVENANCE_FIELDS] for row in provenance],
            )

    def provenance(self, *, label_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        if PROVENANCE_TABLE not in table_names(self._conn):
            return []
        sql = f"SELECT {', '.join(PROVENANCE_FIELDS)} FROM {PROVENANCE_TABLE}"
        rows = self._fetch(sql + " ORDER BY merged_at, label_id", [])
        wanted = None if label_ids is None else set(label_ids)
        return [dict(zip(PROVENANCE_FIELDS, r)) for r in rows if wanted is None or r[0] in wanted]

    # -- tile tags (tables in geolabel.labels.gpkg_tags) -------------------------------

    def read_tag_schema(self) -> TagSchema | None:
        from geolabel.labels.gpkg_tags import read_tag_schema

        try:
            return read_tag_schema(self._conn)
        except (ValueError, InputError) as exc:
            raise DamagedStoreError(f"{self.path}: the store's tag schema is damaged ({exc})") from None

    def write_tag_schema(self, schema: TagSchema) -> None:
        from geolabel.labels.gpkg_tags import write_tag_schema

        with self.transaction():
            write_tag_schema(self._conn, schema)

    def tile_tags(
        self, *, tile_id: str | None = None, tag_code: int | None = None, labeler: str | None = None
    ) -> list[TileTag]:
        from geolabel.labels.gpkg_tags import tile_tags

        return tile_tags(self._conn, {"tile_id": tile_id, "tag_code": tag_code, "labeler": labeler})

    def replace_tile_tags(
        self, scope: Sequence[tuple[str, str]], rows: Sequence[TileTag], *, codes: Sequence[int] | None = None
    ) -> None:
        from geolabel.labels.gpkg_tags import replace_tile_tags

        with self.transaction():
            replace_tile_tags(self._conn, scope, rows, codes)

    def set_tile_tag_status(self, tile_id: str, labeler: str, status: str) -> int:
        from geolabel.labels.gpkg_tags import set_tile_tag_status

        with self.transaction():
            return set_tile_tag_status(self._conn, tile_id, labeler, status)

    # -- history ------------------------------------------------------------------

    def history(
        self, *, label_id: str | None = None, labeler: str | None = None, since: str | None = None
    ) -> list[HistoryEntry]:
        import json

        from geolabel.labels.gpkg import from_blobs

        if HISTORY_TABLE not in table_names(self._conn):
            return []
        where, args = [], []
        for column, value in (("label_id", label_id), ("labeler", labeler)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("julianday(changed_at) >= julianday(?)")
            args.append(since)
        sql = (
            "SELECT history_id, label_id, action, db_role, labeler, changed_at, old_version, new_version, "
            f"CAST(old_geom AS BLOB), old_fields FROM {HISTORY_TABLE}"
        )
        rows = self._fetch(sql + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY history_id", args)
        geoms = from_blobs([r[8] for r in rows])
        return [HistoryEntry.from_row(r, g, json.loads(r[9]) if r[9] else None) for r, g in zip(rows, geoms)]

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
        import json

        from geolabel.labels.gpkg import to_blobs

        if self.count() or self.tile_rows():
            raise InputError(f"{self.path}: a copy goes into an empty store; this one has labels")
        old = [None if e.old_geom is None else to_blobs([e.old_geom], self.srs_id)[0] for e in history]
        with self.transaction():
            self.insert_rows(geoms, rows)
            self._conn.execute(f"DELETE FROM {HISTORY_TABLE}")
            self._conn.executemany(
                f"INSERT INTO {HISTORY_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        e.history_id,
                        e.label_id,
                        e.action,
                        e.db_role,
                        e.labeler,
                        e.changed_at,
                        e.old_version,
                        e.new_version,
                        blob,
                        json.dumps(e.old_fields, ensure_ascii=False) if e.old_fields is not None else None,
                    )
                    for e, blob in zip(history, old)
                ),
            )
            if tiles:
                self._ensure_tiles_table()
                self._conn.executemany(f"INSERT INTO {TILES_TABLE} VALUES (?, ?, ?, ?)", tiles)
            self.add_tasks([t.row() for t in tasks])
            for review in reviews:
                self.add_review(review.row())

    def close(self) -> None:
        if getattr(self, "_conn", None) is not None:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"GeoPackageStore({str(self.path)!r}, crs={self.crs.to_string()!r}, labels={self.count()})"
