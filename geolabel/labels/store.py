"""The label store: land-cover polygons with their class, author, review status and history.

:class:`LabelStore` is the interface; :class:`GeoPackageStore` is the embedded backend
(a GeoPackage that QGIS edits natively). A PostGIS backend for teams plugs in behind
the same interface; :func:`open_store` picks the backend from the location.

Every label is one polygon (imports explode MultiPolygons into one label per part) with
the fields in :data:`LABEL_FIELDS`. ``version`` starts at 1 and grows with every change
made through the store; :meth:`LabelStore.update` takes the version the caller last saw
and refuses the change if somebody else changed the label meanwhile (optimistic locking).

>>> import tempfile, shapely
>>> tmp = tempfile.mkdtemp()
>>> store = create_store(f"{tmp}/labels.gpkg", crs="EPSG:32649")
>>> ids = store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2], labeler="li")
>>> store.query(classes=[2])[["class_name", "labeler", "status", "version"]].values.tolist()
[['farmland', 'li', 'draft', 1]]
>>> store.close()
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel import vocabulary
from geolabel.errors import (
    CRSError,
    GeolabelError,
    InputError,
    OutputError,
    OutputExistsError,
    StoreBusyError,
    check_choice,
    first_line,
)
from geolabel.labels.schema import ClassSchema, default_schema

if TYPE_CHECKING:
    import geopandas as gpd
    import pyproj

#: Attribute fields of every label, in store order (the geometry is separate).
LABEL_FIELDS = (
    "label_id",
    "class_code",
    "class_name",
    "labeler",
    "team",
    "status",
    "source",
    "tile_id",
    "created",
    "modified",
    "comment",
    "version",
)
STATUSES = vocabulary.STATUSES
TILE_STATUSES = vocabulary.TILE_STATUSES
TILES_TABLE = "geolabel_tiles"
SOURCES = ("manual", "imported", "suggested")
LABELS_TABLE = "labels"
META_TABLE = "geolabel_meta"
CLASSES_TABLE = "geolabel_classes"
STORE_FORMAT = 1
#: Environment variable: seconds to wait for another program's write lock (QGIS saving
#: edits, a second import) before saying the store is busy.
BUSY_TIMEOUT_VARIABLE = "GEOLABEL_BUSY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT = 10.0


class ConflictError(GeolabelError):
    """A label was changed by somebody else since the caller read it."""

    exit_code = 3


class NotAStoreError(InputError):
    """The file exists but is not a geolabel label store."""


class DamagedStoreError(InputError):
    """The file is a label store, but damaged (truncated file, unreadable metadata)."""


@dataclass(frozen=True)
class LabelArrays:
    """Labels as a shapely geometry array plus one list per field in LABEL_FIELDS."""

    geoms: Any
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.geoms)

    def take(self, selector: Any) -> LabelArrays:
        """The labels picked by a boolean mask or an index array."""
        import numpy as np

        idx = np.flatnonzero(selector) if np.asarray(selector).dtype == bool else np.asarray(selector)
        return LabelArrays(
            geoms=self.geoms[idx], columns={k: [v[i] for i in idx.tolist()] for k, v in self.columns.items()}
        )


def now_iso() -> str:
    """UTC time as GeoPackage stores DATETIME values."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class LabelStore(ABC):
    """Where land-cover labels live. Backends: GeoPackage (embedded), PostGIS (teams)."""

    uri: str
    crs: pyproj.CRS
    schema: ClassSchema

    @abstractmethod
    def transaction(self) -> Any:
        """Context manager: everything inside commits together or not at all."""

    @abstractmethod
    def add(self, frame: gpd.GeoDataFrame) -> list[str]:
        """Add labels from a GeoDataFrame (geometry + ``class_code`` and any of LABEL_FIELDS).

        Geometries in another CRS are reprojected to the store's. Returns the label ids.
        """

    @abstractmethod
    def update(self, label_id: str, *, expected_version: int | None = None, geometry: Any = None, **fields: Any) -> int:
        """Change one label; returns its new version. Raises :class:`ConflictError` when
        ``expected_version`` is given and the label has moved on since."""

    @abstractmethod
    def delete(self, label_ids: Iterable[str]) -> int:
        """Delete labels by id; returns how many were deleted."""

    @abstractmethod
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
        """Labels matching every given filter, as plain arrays (no pandas: fast to load).

        ``fields`` limits the attribute columns read (default: all of LABEL_FIELDS)."""

    def query(self, **filters: Any) -> gpd.GeoDataFrame:
        """Labels matching every given filter (see :meth:`read`), as a GeoDataFrame."""
        import geopandas as gpd
        import pandas as pd

        arrays = self.read(**filters)
        data = pd.DataFrame({name: arrays.columns[name] for name in LABEL_FIELDS})
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(arrays.geoms, crs=self.crs), crs=self.crs)

    @abstractmethod
    def count(self) -> int:
        """Number of labels."""

    @abstractmethod
    def set_tile_status(self, tile_id: str, status: str, *, labeler: str | None = None) -> None:
        """Record a tile's labeling progress (``todo``, ``in_progress``, ``done``)."""

    @abstractmethod
    def tile_statuses(self) -> dict[str, str]:
        """Labeling progress per tile id (tiles never touched are absent)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    # -- conveniences shared by all backends ---------------------------------------

    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """All labels."""
        return self.query()

    def done_tiles(self) -> list[str]:
        """Ids of the tiles marked ``done``, sorted."""
        return sorted(t for t, status in self.tile_statuses().items() if status == "done")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Labels as dicts (attributes plus ``geometry``)."""
        yield from self.query().to_dict("records")

    def __len__(self) -> int:
        return self.count()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def add_geometries(
        self,
        geoms: Sequence[Any],
        *,
        class_codes: Sequence[int],
        crs: Any = None,
        **fields: Any,
    ) -> list[str]:
        """Add shapely polygons with one class code each (fields apply to all)."""
        import geopandas as gpd

        data = {"class_code": list(class_codes)}
        data.update({k: [v] * len(geoms) for k, v in fields.items()})
        return self.add(gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs or self.crs))


# ---------------------------------------------------------------------------------
# GeoPackage backend

_UUID_SQL = (
    "lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))"
)
_NOW_SQL = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

#: Triggers keep rows complete whoever inserts them (QGIS, ogr2ogr, geolabel), by name.
#: ``geolabel_labels_touch``: edits by other tools bump the version and the modification
#: time, so optimistic locking sees them; the store's own writes set both themselves (not
#: on class_name: the class-name trigger's own update must not count twice). A store that
#: lacks one (made before it existed, or dropped by another tool) gets it back with its
#: next write, never while it is only read.
_TRIGGERS = {
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
}

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


def _register_attributes_table(conn: sqlite3.Connection, table: str, description: str) -> None:
    conn.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description) VALUES (?, 'attributes', ?, ?)",
        (table, table, description),
    )


def create_store(
    path: str | os.PathLike[str],
    *,
    crs: Any,
    schema: ClassSchema | None = None,
    overwrite: bool = False,
) -> GeoPackageStore:
    """Create an empty GeoPackage label store in ``crs`` and open it.

    The file is built under a temporary name and renamed when complete. An existing
    file is only replaced with ``overwrite=True``, and only if it is a label store: a
    tile index or a project GeoPackage given by mistake is left alone.
    """
    from geolabel.crs import parse_crs
    from geolabel.files import check_output_folder, temp_path, writing

    p = Path(path)
    if p.suffix.lower() != ".gpkg":
        raise InputError(f"{p}: a GeoPackage label store needs the .gpkg extension")
    _check_replaceable_store(p, overwrite=overwrite)
    check_output_folder(p)
    store_crs = parse_crs(crs, what="store CRS")
    if store_crs.is_geographic is False and store_crs.axis_info and store_crs.axis_info[0].unit_name in ("", None):
        raise InputError(f"{p}: store CRS {store_crs.name} has no linear unit")
    schema = schema or default_schema()
    tmp = temp_path(p, ".gpkg")
    tmp.unlink(missing_ok=True)
    try:
        with writing(p, "label store"):
            _build_store_file(tmp, store_crs, schema or default_schema())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return GeoPackageStore(p)


def _check_replaceable_store(p: Path, *, overwrite: bool) -> None:
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
                tables = _table_names(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            pass
    if not {META_TABLE, LABELS_TABLE} <= tables:
        raise OutputExistsError(f"{p}: is not a geolabel label store; it is left alone, choose a new file")


def _build_store_file(tmp: Path, store_crs: pyproj.CRS, schema: ClassSchema) -> None:
    """An empty label store at ``tmp``: the labels layer (GDAL), metadata, classes, triggers."""
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
            _register_attributes_table(conn, META_TABLE, "geolabel store metadata: schema, CRS, format")
            conn.execute(
                f"CREATE TABLE {CLASSES_TABLE} (code INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, "
                "color TEXT NOT NULL, priority INTEGER NOT NULL, names TEXT)"
            )
            _register_attributes_table(conn, CLASSES_TABLE, "land-cover classes of this store")
            meta = {
                "store_format": str(STORE_FORMAT),
                "crs": store_crs.to_wkt(),
                "schema": schema.to_json(),
                "created": now_iso(),
            }
            conn.executemany(f"INSERT INTO {META_TABLE} VALUES (?, ?)", sorted(meta.items()))
            _write_classes(conn, schema)
            conn.execute(f"CREATE UNIQUE INDEX geolabel_labels_label_id ON {LABELS_TABLE} (label_id)")
            conn.execute(f"CREATE INDEX geolabel_labels_class_code ON {LABELS_TABLE} (class_code)")
            conn.execute(f"CREATE INDEX geolabel_labels_tile_id ON {LABELS_TABLE} (tile_id)")
            for sql in _TRIGGERS.values():
                conn.execute(sql)
    finally:
        conn.close()


def _write_classes(conn: sqlite3.Connection, schema: ClassSchema) -> None:
    conn.execute(f"DELETE FROM {CLASSES_TABLE}")
    conn.executemany(
        f"INSERT INTO {CLASSES_TABLE} VALUES (?, ?, ?, ?, ?)",
        [(c.code, c.name, c.color, c.priority, json.dumps(dict(c.names), ensure_ascii=False)) for c in schema],
    )


def busy_timeout() -> float:
    """Seconds to wait for another program's write lock: ``GEOLABEL_BUSY_TIMEOUT``, default 10."""
    text = os.environ.get(BUSY_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_BUSY_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise InputError(f"{BUSY_TIMEOUT_VARIABLE}={text!r}: must be a number of seconds (0 or more)")
    return value


def open_store(location: str | os.PathLike[str], *, timeout: float | None = None) -> LabelStore:
    """Open an existing label store: a ``.gpkg`` path (PostGIS URLs come with that backend).

    ``timeout``: seconds to wait for another writer (QGIS saving edits) before raising
    :class:`~geolabel.errors.StoreBusyError` (default: :func:`busy_timeout`)."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://", "PG:")):
        raise InputError(f"{text}: PostGIS label stores are not supported by this version of geolabel")
    return GeoPackageStore(Path(text), timeout=timeout)


class _StoreConnection(sqlite3.Connection):
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


def _connect(path: Path, timeout: float) -> _StoreConnection:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, factory=_StoreConnection)
    conn.path, conn.timeout = path, timeout
    return conn


def _connect_read_only(path: Path, timeout: float) -> _StoreConnection:
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
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, factory=_StoreConnection)
    conn.path, conn.timeout = path, timeout
    return conn


def _read_meta(conn: sqlite3.Connection, p: Path) -> tuple[pyproj.CRS, ClassSchema, int]:
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
    return crs, schema, _layer_srs_id(conn, p, crs)


def _layer_srs_id(conn: sqlite3.Connection, p: Path, crs: pyproj.CRS) -> int:
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


def _table_names(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


class GeoPackageStore(LabelStore):
    """A label store in one GeoPackage file, written through SQLite transactions."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float | None = None) -> None:
        from geolabel.files import check_input_file

        p = Path(path)
        if not p.exists():
            raise InputError(f"{p}: no such label store; create one with `create_store()`", params=("create_store()",))
        check_input_file(p, "label store")
        self.path = p
        self.uri = str(p)
        self._conn = self._open(p, busy_timeout() if timeout is None else timeout)
        try:
            self.crs, self.schema, self.srs_id = _read_meta(self._conn, p)
        except BaseException:
            self.close()
            raise
        self._depth = 0
        self._labels_changed = False  # the labels table was written in this transaction
        self._triggers_checked = False  # missing triggers are added by the first write

    @staticmethod
    def _open(p: Path, timeout: float) -> _StoreConnection:
        """A connection to a file that holds a label store."""
        from geolabel.labels.gpkg import register_functions

        conn = _connect(p, timeout)
        try:
            tables = _table_names(conn)
        except InputError as exc:  # "unable to open": a WAL store in a read-only folder?
            conn.close()
            if "unable to open" not in str(exc):
                raise
            conn = _connect_read_only(p, timeout)
            try:
                tables = _table_names(conn)
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
        for name, sql in _TRIGGERS.items():
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

    def _prepare(self, frame: gpd.GeoDataFrame) -> tuple[Any, list[dict[str, Any]]]:
        """Validate a frame for insertion: geometries in store CRS and complete attribute rows."""
        import shapely

        from geolabel.crs import reproject_geometries, same_crs

        if frame.crs is not None and not same_crs(frame.crs, self.crs):
            geoms = reproject_geometries(frame.geometry.values.to_numpy(), frame.crs, self.crs)
        else:
            geoms = frame.geometry.values.to_numpy()
        types = shapely.get_type_id(geoms)
        if (types != 3).any():
            i = int((types != 3).argmax())
            raise InputError(f"label {i}: geometry must be a Polygon, got {shapely.get_type_id(geoms[i])!r}")
        bad = shapely.is_empty(geoms) | ~shapely.is_valid(geoms)
        if bad.any():
            i = int(bad.argmax())
            reason = "empty" if shapely.is_empty(geoms[i]) else shapely.is_valid_reason(geoms[i])
            raise InputError(f"label {i}: invalid polygon ({reason}); repair it first (geolabel.labels.repair)")
        now = now_iso()
        rows = []
        records = frame.drop(columns=frame.geometry.name).to_dict("records")
        for i, rec in enumerate(records):
            code = rec.get("class_code")
            if code is None or (isinstance(code, float) and code != code):
                if rec.get("class_name") is None:
                    raise InputError(f"label {i}: needs class_code or class_name")
                code = self.schema.resolve(rec["class_name"]).code
            cls = self.schema.get(int(code))
            status = check_choice(rec.get("status") or "draft", STATUSES, f"label {i}: status")
            source = check_choice(rec.get("source") or "manual", SOURCES, f"label {i}: source")
            rows.append(
                {
                    "label_id": _clean(rec.get("label_id")) or str(uuid.uuid4()),
                    "class_code": cls.code,
                    "class_name": cls.name,
                    "labeler": _clean(rec.get("labeler")),
                    "team": _clean(rec.get("team")),
                    "status": status,
                    "source": source,
                    "tile_id": _clean(rec.get("tile_id")),
                    "created": _clean(rec.get("created")) or now,
                    "modified": now,
                    "comment": _clean(rec.get("comment")),
                    "version": 1,
                }
            )
        return geoms, rows

    def add(self, frame: gpd.GeoDataFrame) -> list[str]:
        from geolabel.labels.gpkg import to_blobs

        if len(frame) == 0:
            return []
        geoms, rows = self._prepare(frame)
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
        return [row["label_id"] for row in rows]

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
        from geolabel.labels.gpkg import to_blobs

        if not changes:
            return
        import numpy as np

        blobs = to_blobs(np.array([g for _, g in changes], dtype=object), self.srs_id)
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

        names = list(fields) if fields is not None else list(LABEL_FIELDS)
        unknown = set(names) - set(LABEL_FIELDS)
        if unknown:
            raise InputError(f"unknown label field(s) {sorted(unknown)}; fields: {', '.join(LABEL_FIELDS)}")
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
            columns["class_code"] = [_class_code(v) for v in columns["class_code"]]
        arrays = LabelArrays(geoms=geoms, columns=columns)
        if bbox is not None and len(rows):
            import shapely

            arrays = arrays.take(shapely.intersects(geoms, shapely.box(*bbox)))
        return arrays

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """All rows of a query; SQLite failures while stepping through them (a text value
        that is not UTF-8) are said as for :meth:`_StoreConnection.execute`."""
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
                _register_attributes_table(self._conn, TILES_TABLE, "labeling progress per tile")

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

    def close(self) -> None:
        if getattr(self, "_conn", None) is not None:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"GeoPackageStore({str(self.path)!r}, crs={self.crs.to_string()!r}, labels={self.count()})"


def _class_code(value: Any) -> int | None:
    """A label's class code as read: an integer, or None when the row holds none (NULL) or
    something no class code can be (text, a fraction: SQLite keeps whatever a tool wrote)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _clean(value: Any) -> Any:
    """None for missing values (None, NaN, empty strings); strings stripped."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
