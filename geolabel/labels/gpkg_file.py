"""The label store's GeoPackage file: its tables, indexes and triggers, how it is built,
and the SQLite connections that open it (failures said in a label store's words)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.errors import (
    CRSError,
    InputError,
    OutputError,
    OutputExistsError,
    StoreBusyError,
    first_line,
)
from geolabel.labels.schema import ClassSchema
from geolabel.labels.store import (
    CLASSES_TABLE,
    DEFAULT_BUSY_TIMEOUT,
    GOLD_SCORES_TABLE,
    GOLD_TABLE,
    HISTORY_TABLE,
    LABEL_FIELDS,
    LABELS_TABLE,
    MERGED_DELIVERIES_TABLE,
    META_TABLE,
    PROVENANCE_TABLE,
    REFERENCE_TABLE,
    REVIEWS_TABLE,
    STORE_FORMAT,
    TASKS_TABLE,
    DamagedStoreError,
    NotAStoreError,
    now_iso,
)

if TYPE_CHECKING:
    import pyproj

    from geolabel.labels.tagschema import TagSchema

_UUID_SQL = (
    "lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))"
)
_NOW_SQL = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

_COMPLETE = " AND ".join(  # every field the fill trigger fills is set (class_name may stay NULL)
    f"{{r}}.{f} IS NOT NULL" for f in ("label_id", "status", "source", "created", "modified", "version")
)
_CHANGED = " OR ".join(
    f"NEW.{f} IS NOT OLD.{f}"
    for f in ("geom", "label_id", "class_code", "labeler", "team", "status", "source", "tile_id", "comment")
)
_OLD_FIELDS = "json_object(" + ", ".join(f"'{f}', OLD.{f}" for f in LABEL_FIELDS) + ")"
_HISTORY_COLUMNS = "label_id, action, labeler, changed_at, old_version, new_version, old_geom, old_fields"

#: The change history: one row per insert, update and delete, whoever makes it.
HISTORY_TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (history_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  label_id TEXT, action TEXT NOT NULL, db_role TEXT, labeler TEXT, changed_at DATETIME NOT NULL,
  old_version INTEGER, new_version INTEGER, old_geom BLOB, old_fields TEXT)"""

TASKS_TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {TASKS_TABLE} (task_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  tile_id TEXT NOT NULL, scene TEXT, minx REAL NOT NULL, miny REAL NOT NULL, maxx REAL NOT NULL, maxy REAL NOT NULL,
  team TEXT NOT NULL, labeler TEXT, copy INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL,
  assigned_at DATETIME, started_at DATETIME, submitted_at DATETIME, reviewed_at DATETIME, reviewer TEXT,
  comment TEXT, UNIQUE (tile_id, copy))"""
REVIEWS_TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {REVIEWS_TABLE} (review_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  task_id INTEGER NOT NULL, tile_id TEXT NOT NULL, team TEXT NOT NULL, labeler TEXT, reviewer TEXT,
  decision TEXT NOT NULL, comment TEXT, at DATETIME NOT NULL, findings TEXT)"""

#: Gold tiles and their reference (polygons as WKB in the store CRS): in the file, where
#: anybody who can open it reads them (a GeoPackage has no roles; secrecy needs PostGIS).
GOLD_TABLES_SQL = {
    GOLD_TABLE: f"""CREATE TABLE IF NOT EXISTS {GOLD_TABLE} (tile_id TEXT PRIMARY KEY NOT NULL,
  marked_at DATETIME NOT NULL, source TEXT)""",
    REFERENCE_TABLE: f"""CREATE TABLE IF NOT EXISTS {REFERENCE_TABLE} (
  reference_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, tile_id TEXT NOT NULL, class_code INTEGER NOT NULL,
  geom_wkb BLOB NOT NULL)""",
    GOLD_SCORES_TABLE: f"""CREATE TABLE IF NOT EXISTS {GOLD_SCORES_TABLE} (
  task_id INTEGER NOT NULL, tile_id TEXT NOT NULL, labeler TEXT, team TEXT NOT NULL, submitted_at DATETIME,
  scored_at DATETIME NOT NULL, metrics TEXT NOT NULL, PRIMARY KEY (task_id, submitted_at))""",
}
_GOLD_ABOUT = {
    GOLD_TABLE: "gold tiles (hidden quality control)",
    REFERENCE_TABLE: "reference polygons of the gold tiles (WKB, store CRS)",
    GOLD_SCORES_TABLE: "scores of submitted gold tiles against their reference",
}

#: Deliveries merged into a central store and the provenance of their labels (one row per
#: label and delivery that wrote it); added with the first merge.
DELIVERY_TABLES_SQL = {
    MERGED_DELIVERIES_TABLE: f"""CREATE TABLE IF NOT EXISTS {MERGED_DELIVERIES_TABLE} (
  delivery_id TEXT PRIMARY KEY NOT NULL, site TEXT NOT NULL, team TEXT NOT NULL, merged_at DATETIME NOT NULL,
  labels INTEGER NOT NULL, checksum TEXT NOT NULL)""",
    PROVENANCE_TABLE: f"""CREATE TABLE IF NOT EXISTS {PROVENANCE_TABLE} (label_id TEXT NOT NULL,
  delivery_id TEXT NOT NULL, site TEXT NOT NULL, merged_at DATETIME NOT NULL, PRIMARY KEY (label_id, delivery_id))""",
}
_DELIVERY_ABOUT = {
    MERGED_DELIVERIES_TABLE: "deliveries from offline sites merged into this store",
    PROVENANCE_TABLE: "which delivery and site each merged label came from",
}

#: Triggers keep rows complete whoever inserts them (QGIS, ogr2ogr, geolabel), by name.
#: ``geolabel_labels_touch``: edits by other tools bump the version and the modification
#: time, so optimistic locking sees them; the store's own writes set both themselves (not
#: on class_name: the class-name trigger's own update must not count twice). A store that
#: lacks one (made before it existed, or dropped by another tool) gets it back with its
#: next write, never while it is only read.
TRIGGERS = {
    "geolabel_labels_fill": f"""
CREATE TRIGGER IF NOT EXISTS geolabel_labels_fill AFTER INSERT ON {LABELS_TABLE}
WHEN NEW.label_id IS NULL OR NEW.class_name IS NULL OR NEW.status IS NULL OR NEW.source IS NULL
  OR NEW.created IS NULL OR NEW.modified IS NULL OR NEW.version IS NULL
BEGIN
  UPDATE {LABELS_TABLE} SET
    label_id = COALESCE(NEW.label_id, {_UUID_SQL}),
    class_name = COALESCE((SELECT name FROM {CLASSES_TABLE} WHERE code = NEW.class_code), NEW.class_name),
    status = COALESCE(NEW.status, 'draft'),
    source = COALESCE(NEW.source, 'manual'),
    created = COALESCE(NEW.created, {_NOW_SQL}),
    modified = COALESCE(NEW.modified, {_NOW_SQL}),
    version = COALESCE(NEW.version, 1)
  WHERE fid = NEW.fid;
END""",
    "geolabel_labels_class_name": f"""
CREATE TRIGGER IF NOT EXISTS geolabel_labels_class_name AFTER UPDATE OF class_code ON {LABELS_TABLE}
WHEN EXISTS (SELECT 1 FROM {CLASSES_TABLE} WHERE code = NEW.class_code)
BEGIN
  UPDATE {LABELS_TABLE} SET class_name = (SELECT name FROM {CLASSES_TABLE} WHERE code = NEW.class_code)
  WHERE fid = NEW.fid;
END""",
    "geolabel_labels_touch": f"""
CREATE TRIGGER IF NOT EXISTS geolabel_labels_touch
AFTER UPDATE OF geom, label_id, class_code, labeler, team, status, source, tile_id, comment ON {LABELS_TABLE}
WHEN NEW.version IS OLD.version AND NEW.modified IS OLD.modified
BEGIN
  UPDATE {LABELS_TABLE} SET version = COALESCE(OLD.version, 0) + 1, modified = {_NOW_SQL}
  WHERE fid = NEW.fid;
END""",
    # history: a complete insert (geolabel's), an insert the fill trigger completes (QGIS's),
    # an update of any field but the bookkeeping ones (QGIS's edit counts once, not again
    # for the touch trigger's version bump), and a delete
    "geolabel_history_insert": f"""
CREATE TRIGGER IF NOT EXISTS geolabel_history_insert AFTER INSERT ON {LABELS_TABLE}
WHEN {_COMPLETE.format(r="NEW")}
BEGIN
  INSERT INTO {HISTORY_TABLE} ({_HISTORY_COLUMNS})
  VALUES (NEW.label_id, 'insert', NEW.labeler, {_NOW_SQL}, NULL, NEW.version, NULL, NULL);
END""",
    "geolabel_history_filled": f"""
CREATE TRIGGER IF NOT EXISTS geolabel_history_filled AFTER UPDATE ON {LABELS_TABLE}
WHEN NOT ({_COMPLETE.format(r="OLD")}) AND {_COMPLETE.format(r="NEW")}
BEGIN
  INSERT INTO {HISTORY_TABLE} ({_HISTORY_COLUMNS})
  VALUES (NEW.label_id, 'insert', NEW.labeler, {_NOW_SQL}, NULL, NEW.version, NULL, NULL);
END""",
    "geolabel_history_update": f"""
CREATE TRIGGER IF NOT EXISTS geolabel_history_update AFTER UPDATE ON {LABELS_TABLE}
WHEN {_COMPLETE.format(r="OLD")} AND ({_CHANGED})
BEGIN
  INSERT INTO {HISTORY_TABLE} ({_HISTORY_COLUMNS})
  VALUES (NEW.label_id, 'update', NEW.labeler, {_NOW_SQL}, OLD.version,
    CASE WHEN NEW.version IS OLD.version THEN OLD.version + 1 ELSE NEW.version END, OLD.geom, {_OLD_FIELDS});
END""",
    "geolabel_history_delete": f"""
CREATE TRIGGER IF NOT EXISTS geolabel_history_delete AFTER DELETE ON {LABELS_TABLE}
BEGIN
  INSERT INTO {HISTORY_TABLE} ({_HISTORY_COLUMNS})
  VALUES (OLD.label_id, 'delete', OLD.labeler, {_NOW_SQL}, OLD.version, NULL, OLD.geom, {_OLD_FIELDS});
END""",
}


def ensure_tables(conn: sqlite3.Connection, tables: dict[str, tuple[str, str]]) -> None:
    """Add the attribute tables (name -> (CREATE statement, description)) a store lacks:
    made before they existed, or first needed now (inside a write transaction)."""
    present = table_names(conn)
    for name, (sql, about) in tables.items():
        if name not in present:
            conn.execute(sql)
            register_attributes_table(conn, name, about)


def ensure_history_table(conn: sqlite3.Connection) -> None:
    ensure_tables(conn, {HISTORY_TABLE: (HISTORY_TABLE_SQL, "every change of a label: who, when, what it was")})


def ensure_task_tables(conn: sqlite3.Connection) -> None:
    ensure_tables(
        conn,
        {
            TASKS_TABLE: (TASKS_TABLE_SQL, "tiles given to teams and labelers, and their review status"),
            REVIEWS_TABLE: (REVIEWS_TABLE_SQL, "every submission and review decision: who, when, why"),
        },
    )


def ensure_gold_tables(conn: sqlite3.Connection) -> None:
    ensure_tables(conn, {name: (sql, _GOLD_ABOUT[name]) for name, sql in GOLD_TABLES_SQL.items()})


def ensure_delivery_tables(conn: sqlite3.Connection) -> None:
    ensure_tables(conn, {name: (sql, _DELIVERY_ABOUT[name]) for name, sql in DELIVERY_TABLES_SQL.items()})


_FIONA_SCHEMA = {
    "geometry": "Polygon",
    "properties": {
        "label_id": "str:36",
        "class_code": "int32",
        "class_name": "str",
        "labeler": "str",
        "team": "str",
        "status": "str",
        "source": "str",
        "tile_id": "str",
        "created": "datetime",
        "modified": "datetime",
        "comment": "str",
        "version": "int32",
    },
}


def register_attributes_table(conn: sqlite3.Connection, table: str, description: str) -> None:
    conn.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description) VALUES (?, 'attributes', ?, ?)",
        (table, table, description),
    )


#: Environment variable: ``1`` lets GeoPackage stores live on a network file system anyway.
ALLOW_NETWORK_VARIABLE = "GEOLABEL_ALLOW_NETWORK_GPKG"


def check_local_folder(p: Path) -> None:
    """Refuse a store on a network file system (NFS, SMB, sshfs, 9p): SQLite's locks do not
    hold there, so two writers (QGIS and an import) can corrupt the file. Allowed anyway
    with ``GEOLABEL_ALLOW_NETWORK_GPKG=1``."""
    from geolabel.files import NETWORK_FILESYSTEMS, filesystem_type

    if os.environ.get(ALLOW_NETWORK_VARIABLE, "").strip() == "1":
        return
    fstype = filesystem_type(p.parent)
    if fstype in NETWORK_FILESYSTEMS:
        raise InputError(
            f"{p}: is on a network file system ({fstype}), where a GeoPackage store can be corrupted by "
            "two writers; keep it on a local disk or share a PostGIS store (postgresql://host/db?schema=NAME) "
            f"(or set {ALLOW_NETWORK_VARIABLE}=1 to use it anyway)"
        )


def check_replaceable_store(p: Path, *, overwrite: bool) -> None:
    """Refuse to replace ``p`` unless asked to (``overwrite``) and it is a label store."""
    if not (p.exists() or p.is_symlink()):
        return
    if not overwrite:
        raise OutputExistsError(
            f"{p}: already exists; pass `overwrite=True` to replace it (its labels would be lost)",
            params=("overwrite",),
        )
    tables: set[str] = set()
    if p.is_file():
        try:
            conn = sqlite3.connect(f"file:{p.resolve()}?mode=ro", uri=True)
            try:
                tables = table_names(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            pass
    if not {META_TABLE, LABELS_TABLE} <= tables:
        raise OutputExistsError(f"{p}: is not a geolabel label store; it is left alone, choose a new file")


def build_store_file(
    tmp: Path, store_crs: pyproj.CRS, schema: ClassSchema, tag_schema: TagSchema | None = None
) -> None:
    """An empty label store at ``tmp``: the labels layer (GDAL), metadata, classes, triggers
    (and the tile tags' tables when there is a ``tag_schema``)."""
    import fiona

    from geolabel.stop import deferred

    with (
        deferred(),
        fiona.open(  # a Ctrl-C waits for the layer (see geolabel.stop)
            tmp,
            "w",
            driver="GPKG",
            layer=LABELS_TABLE,
            schema=_FIONA_SCHEMA,
            crs=store_crs.to_wkt(),
            VERSION="1.2",
            FID="fid",
            GEOMETRY_NAME="geom",
        ),
    ):
        pass
    conn = sqlite3.connect(tmp)
    try:
        with conn:
            conn.execute(f"CREATE TABLE {META_TABLE} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)")
            register_attributes_table(conn, META_TABLE, "geolabel store metadata: schema, CRS, format")
            conn.execute(
                f"CREATE TABLE {CLASSES_TABLE} (code INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, "
                "color TEXT NOT NULL, priority INTEGER NOT NULL, names TEXT)"
            )
            register_attributes_table(conn, CLASSES_TABLE, "land-cover classes of this store")
            meta = {
                "store_format": str(STORE_FORMAT),
                "crs": store_crs.to_wkt(),
                "schema": schema.to_json(),
                "created": now_iso(),
            }
            conn.executemany(f"INSERT INTO {META_TABLE} VALUES (?, ?)", sorted(meta.items()))
            write_classes(conn, schema)
            conn.execute(f"CREATE UNIQUE INDEX geolabel_labels_label_id ON {LABELS_TABLE} (label_id)")
            conn.execute(f"CREATE INDEX geolabel_labels_class_code ON {LABELS_TABLE} (class_code)")
            conn.execute(f"CREATE INDEX geolabel_labels_tile_id ON {LABELS_TABLE} (tile_id)")
            ensure_history_table(conn)
            ensure_task_tables(conn)
            for sql in TRIGGERS.values():
                conn.execute(sql)
            if tag_schema is not None:
                from geolabel.labels.gpkg_tags import write_tag_schema

                write_tag_schema(conn, tag_schema)
    finally:
        conn.close()


def write_classes(conn: sqlite3.Connection, schema: ClassSchema) -> None:
    conn.execute(f"DELETE FROM {CLASSES_TABLE}")
    conn.executemany(
        f"INSERT INTO {CLASSES_TABLE} VALUES (?, ?, ?, ?, ?)",
        [(c.code, c.name, c.color, c.priority, json.dumps(dict(c.names), ensure_ascii=False)) for c in schema],
    )


class StoreConnection(sqlite3.Connection):
    """An SQLite connection whose failures say what they mean for a label store: another
    program holding the write lock past the busy timeout, a read-only file, a damaged file."""

    path: Path = Path()
    timeout: float = DEFAULT_BUSY_TIMEOUT

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.DatabaseError as exc:
            raise self.explain(exc) from None

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.DatabaseError as exc:
            raise self.explain(exc) from None

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(script)
        except sqlite3.DatabaseError as exc:
            raise self.explain(exc) from None

    def explain(self, exc: sqlite3.DatabaseError) -> Exception:
        """The geolabel error for an SQLite failure (unexpected ones are returned as they are)."""
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreBusyError(
                f"{self.path}: store busy (another program is writing it; gave up after {self.timeout:g} s)"
            )
        if "readonly" in text or "read-only" in text:
            return OutputError(f"{self.path}: cannot write the store (read-only file or folder)")
        if "disk is full" in text:
            return OutputError(f"{self.path}: cannot write the store (disk full); it is unchanged")
        if "not a database" in text:
            return NotAStoreError(f"{self.path}: not a GeoPackage (not an SQLite database)")
        if "malformed" in text or "no such " in text:  # "no such table: rtree_labels_geom" (a dropped table)
            return DamagedStoreError(f"{self.path}: the store file is damaged ({text})")
        if "Could not decode to UTF-8" in text:
            return DamagedStoreError(f"{self.path}: the store file is damaged (a text value is not UTF-8: {text})")
        if "unable to open" in text:
            return InputError(f"{self.path}: cannot open the store ({text})")
        return exc


def connect(path: Path, timeout: float) -> StoreConnection:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, factory=StoreConnection)
    conn.path, conn.timeout = path, timeout
    return conn


def connect_read_only(path: Path, timeout: float) -> StoreConnection:
    """A connection that reads a store SQLite cannot open as it is: a store in WAL mode (as
    QGIS leaves them) in a folder nobody can write (read-only media), where SQLite would
    need to create ``-wal`` and ``-shm`` files. Without a ``-wal`` file left next to it, the
    file holds every committed change and is read as immutable; writes are refused."""
    from urllib.parse import quote

    if os.access(path.parent, os.W_OK) or not os.access(path, os.R_OK):
        raise InputError(f"{path}: cannot open the store (unable to open database file)")
    if Path(f"{path}-wal").exists():
        raise InputError(
            f"{path}: cannot open the store: its folder is read-only and it has a -wal file with changes "
            "SQLite must merge first; copy both into a writable folder"
        )
    uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, factory=StoreConnection)
    conn.path, conn.timeout = path, timeout
    return conn


def read_meta(conn: sqlite3.Connection, p: Path) -> tuple[pyproj.CRS, ClassSchema, int]:
    """The store's CRS, class schema and SRS id; a corrupt entry is named."""
    from geolabel.crs import parse_stored_crs

    meta = dict(conn.execute(f"SELECT key, value FROM {META_TABLE}").fetchall())
    for key in ("store_format", "crs", "schema"):
        if not meta.get(key):
            raise DamagedStoreError(f"{p}: the store's metadata is damaged ({META_TABLE} has no {key!r})")
    if not str(meta["store_format"]).isdigit():
        raise DamagedStoreError(f"{p}: the store's metadata is damaged (store_format {meta['store_format']!r})")
    if int(meta["store_format"]) > STORE_FORMAT:
        raise NotAStoreError(f"{p}: made by a newer geolabel (store format {meta['store_format']})")
    try:
        crs = parse_stored_crs(meta["crs"], what=f"{META_TABLE} 'crs'")
        schema = ClassSchema.from_json(meta["schema"])
    except (ValueError, InputError) as exc:  # JSONDecodeError is a ValueError, CRSError an InputError
        what = "" if isinstance(exc, CRSError) else f"{META_TABLE} 'schema' is unreadable: "
        raise DamagedStoreError(f"{p}: the store's metadata is damaged ({what}{first_line(exc)})") from None
    return crs, schema, layer_srs_id(conn, p, crs)


def layer_srs_id(conn: sqlite3.Connection, p: Path, crs: pyproj.CRS) -> int:
    """The SRS id of the ``labels`` layer, refused unless the GeoPackage tables agree with
    the store's CRS: QGIS places the labels by the layer's SRS, geolabel by its own
    metadata, so a store where they differ would be drawn somewhere else than measured."""
    from geolabel.crs import crs_label, parse_stored_crs, same_crs

    def damaged(problem: str) -> DamagedStoreError:
        return DamagedStoreError(f"{p}: the store's metadata is damaged ({problem})")

    row = conn.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (LABELS_TABLE,)).fetchone()
    if row is None:
        raise damaged(f"no geometry column for {LABELS_TABLE!r}")
    srs_id = row[0]
    if not isinstance(srs_id, int):
        raise damaged(f"the layer's srs_id {srs_id!r} is not a number")
    registered = conn.execute(
        "SELECT srs_id FROM gpkg_contents WHERE table_name = ? AND data_type = 'features'", (LABELS_TABLE,)
    ).fetchone()
    if registered is None or registered[0] != srs_id:
        raise damaged(f"gpkg_contents does not list {LABELS_TABLE!r} as a layer in SRS {srs_id}")
    found = conn.execute("SELECT definition FROM gpkg_spatial_ref_sys WHERE srs_id = ?", (srs_id,)).fetchone()
    if found is None:
        raise damaged(f"the layer's SRS {srs_id} is not in gpkg_spatial_ref_sys")
    try:
        layer_crs = parse_stored_crs(found[0], what=f"SRS {srs_id}")
    except CRSError as exc:
        raise damaged(first_line(exc)) from None
    if not same_crs(layer_crs, crs):
        raise damaged(f"the labels layer is in {crs_label(layer_crs)} but {META_TABLE} says {crs_label(crs)}")
    return srs_id


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
