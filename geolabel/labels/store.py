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

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from geolabel import vocabulary
from geolabel.errors import (
    GeolabelError,
    InputError,
    check_choice,
)
from geolabel.labels.schema import ClassSchema, default_schema

if TYPE_CHECKING:
    import geopandas as gpd
    import pyproj

    from geolabel.labels.tagschema import TagSchema, TileTag

#: A label store, or the path of one (functions that take it open and close it themselves).
StoreLike: TypeAlias = "LabelStore | str | os.PathLike[str]"

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
HISTORY_TABLE = "geolabel_history"
TASKS_TABLE = "geolabel_tasks"
REVIEWS_TABLE = "geolabel_reviews"
#: Gold tiles (hidden quality control), their reference polygons and the scores of their submissions.
GOLD_TABLE = "geolabel_gold"
REFERENCE_TABLE = "geolabel_reference"
GOLD_SCORES_TABLE = "geolabel_gold_scores"
GOLD_SCORE_FIELDS = ("task_id", "tile_id", "labeler", "team", "submitted_at", "scored_at", "metrics")
#: Deliveries from offline sites merged into this (central) store, and where each merged
#: label came from (see :mod:`geolabel.merge`).
MERGED_DELIVERIES_TABLE = "geolabel_merged_deliveries"
PROVENANCE_TABLE = "geolabel_provenance"
MERGED_FIELDS = ("delivery_id", "site", "team", "merged_at", "labels", "checksum")
PROVENANCE_FIELDS = ("label_id", "delivery_id", "site", "merged_at")
#: Tile tags (whole-image labels, see :mod:`geolabel.labels.tags`): the tag schema's tags
#: (the schema itself, with its mode, is the ``tag_schema`` entry of geolabel_meta) and
#: one row per tile, tag and labeler.
TAG_SCHEMA_TABLE = "geolabel_tag_schema"
TILE_TAGS_TABLE = "geolabel_tile_tags"
TILE_TAG_FIELDS = ("tile_id", "tag_code", "labeler", "status", "modified")
#: Columns of a task (one tile given to a team or labeler), in store order.
TASK_FIELDS = (
    "task_id",
    "tile_id",
    "scene",
    "minx",
    "miny",
    "maxx",
    "maxy",
    "team",
    "labeler",
    "copy",
    "status",
    "assigned_at",
    "started_at",
    "submitted_at",
    "reviewed_at",
    "reviewer",
    "comment",
)
#: Task fields the workflow changes after assignment.
TASK_UPDATABLE = ("status", "labeler", "started_at", "submitted_at", "reviewed_at", "reviewer", "comment")
#: Columns of a recorded decision (submission, acceptance, rejection), in store order.
REVIEW_FIELDS = ("review_id", "task_id", "tile_id", "team", "labeler", "reviewer", "decision", "comment", "at",
                 "findings")  # fmt: skip
TASK_TIMES = ("assigned_at", "started_at", "submitted_at", "reviewed_at")
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


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded change of a label. ``old_*`` hold the label as it was before an update
    or delete (None for an insert); ``db_role`` is the database role that made it (None in a
    GeoPackage, which has no roles)."""

    history_id: int
    label_id: str
    action: str  # "insert", "update", "delete"
    db_role: str | None
    labeler: str | None
    changed_at: str
    old_version: int | None
    new_version: int | None
    old_geom: Any = None
    old_fields: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any], old_geom: Any, old_fields: dict[str, Any] | None) -> HistoryEntry:
        """From the first eight history columns as stored (history_id ... new_version)."""
        hid, label_id, action, role, labeler, at, old_version, new_version = row[:8]
        return cls(int(hid), label_id, action, role, labeler, at, old_version, new_version, old_geom, old_fields)


@dataclass(frozen=True)
class Task:
    """One tile given to a team (``labeler`` None: any labeler of the team) or a labeler;
    ``copy`` 2 is the second labeling of a consensus tile. Bounds are in the store's CRS."""

    task_id: int
    tile_id: str
    scene: str | None
    minx: float
    miny: float
    maxx: float
    maxy: float
    team: str
    labeler: str | None
    copy: int
    status: str
    assigned_at: str | None
    started_at: str | None = None
    submitted_at: str | None = None
    reviewed_at: str | None = None
    reviewer: str | None = None
    comment: str | None = None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.minx, self.miny, self.maxx, self.maxy)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Task:
        """From the TASK_FIELDS columns as stored."""
        values = dict(zip(TASK_FIELDS, row))
        values["task_id"], values["copy"] = int(values["task_id"]), int(values["copy"])
        return cls(**values)

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in TASK_FIELDS}


@dataclass(frozen=True)
class Review:
    """One recorded decision on a task: ``submitted`` by its labeler, ``accepted`` or
    ``rejected`` by a reviewer (with the tile's findings as JSON text on a rejection)."""

    review_id: int
    task_id: int
    tile_id: str
    team: str
    labeler: str | None
    reviewer: str | None
    decision: str
    comment: str | None
    at: str
    findings: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Review:
        values = dict(zip(REVIEW_FIELDS, row))
        values["review_id"], values["task_id"] = int(values["review_id"]), int(values["task_id"])
        return cls(**values)

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in REVIEW_FIELDS}


@dataclass(frozen=True)
class GoldScore:
    """A gold tile's submission scored against its reference: ``metrics`` is JSON text
    (see :mod:`geolabel.gold`); one score per task and submission time."""

    task_id: int
    tile_id: str
    labeler: str | None
    team: str
    submitted_at: str | None
    scored_at: str
    metrics: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> GoldScore:
        values = dict(zip(GOLD_SCORE_FIELDS, row))
        values["task_id"] = int(values["task_id"])
        return cls(**values)

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in GOLD_SCORE_FIELDS}


def check_task_fields(fields: dict[str, Any]) -> None:
    """Refuse task fields the workflow may not change, and unknown statuses."""
    unknown = set(fields) - set(TASK_UPDATABLE)
    if unknown:
        raise InputError(f"cannot update task field(s) {sorted(unknown)}; updatable: {', '.join(TASK_UPDATABLE)}")
    if "status" in fields:
        check_choice(fields["status"], vocabulary.TASK_STATUSES, "task status")


def stale_task(task_id: int, status: str, expected: str) -> ConflictError:
    """The error for a task that moved on since it was read (optimistic locking)."""
    return ConflictError(
        f"task {task_id} is {status} now, not {expected} (someone else changed it); look at `geolabel tasks status`"
    )


def field_names(fields: Sequence[str] | None) -> list[str]:
    """The attribute fields a read asks for (default: all of LABEL_FIELDS); unknown ones are refused."""
    names = list(fields) if fields is not None else list(LABEL_FIELDS)
    unknown = set(names) - set(LABEL_FIELDS)
    if unknown:
        raise InputError(f"unknown label field(s) {sorted(unknown)}; fields: {', '.join(LABEL_FIELDS)}")
    return names


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

    def add(self, frame: gpd.GeoDataFrame) -> list[str]:
        """Add labels from a GeoDataFrame (geometry + ``class_code`` and any of LABEL_FIELDS).

        Geometries in another CRS are reprojected to the store's. Returns the label ids.
        """
        if len(frame) == 0:
            return []
        geoms, rows = prepare_labels(frame, self.crs, self.schema)
        self.insert_rows(geoms, rows)
        return [row["label_id"] for row in rows]

    @abstractmethod
    def insert_rows(self, geoms: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Insert complete label rows as they are (every field of LABEL_FIELDS, versions and
        times kept): :meth:`add` after validation, and copies between stores."""

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
    def replace_geometries(self, changes: Sequence[tuple[str, Any]]) -> None:
        """Set new geometries for many labels at once, bumping their versions (resolve)."""

    @abstractmethod
    def history(
        self, *, label_id: str | None = None, labeler: str | None = None, since: str | None = None
    ) -> list[HistoryEntry]:
        """Recorded changes, oldest first: every insert, update and delete, whoever made it
        (geolabel, QGIS, SQL). ``since``: an ISO time (UTC unless it says otherwise)."""

    @abstractmethod
    def tile_rows(self) -> list[tuple[str, str, str | None, str | None]]:
        """Tile progress as rows: ``(tile_id, status, labeler, modified)``."""

    @abstractmethod
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
        """Fill an empty store with another store's labels, history, tile progress, tasks and
        reviews, as they are (ids, versions, times), in one transaction
        (:func:`geolabel.labels.copy.copy_store`)."""

    # -- tasks and review (see geolabel.tasks for the workflow) ---------------------

    @abstractmethod
    def add_tasks(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert tasks (dicts with TASK_FIELDS; ``task_id`` None: a new id) in one
        transaction; a tile already given out as the same copy is refused as a whole."""

    @abstractmethod
    def tasks(
        self,
        *,
        team: str | None = None,
        tile_ids: Iterable[str] | None = None,
        status: Iterable[str] | None = None,
    ) -> list[Task]:
        """Tasks matching every given filter, in task id order (what the reader may see)."""

    @abstractmethod
    def update_task(self, task_id: int, *, expected_status: str, **fields: Any) -> None:
        """Change a task's TASK_UPDATABLE fields if its status is still ``expected_status``;
        raises :class:`ConflictError` if it moved on (optimistic locking)."""

    @abstractmethod
    def add_review(self, row: dict[str, Any]) -> None:
        """Record a decision (a dict with REVIEW_FIELDS; ``review_id`` None: a new id)."""

    @abstractmethod
    def reviews(self, *, tile_id: str | None = None, task_id: int | None = None) -> list[Review]:
        """Recorded decisions, oldest first."""

    # -- gold tiles (see geolabel.gold) ------------------------------------------------

    @abstractmethod
    def set_gold(self, tile_ids: Sequence[str], reference: Sequence[tuple[str, Any, int]], *, source: str) -> None:
        """Mark ``tile_ids`` gold and replace their reference polygons with ``reference``
        ((tile_id, polygon in the store CRS, class code) rows), in one transaction."""

    @abstractmethod
    def gold_tiles(self) -> list[str]:
        """The gold tiles, in the order they were marked (refused to labelers and reviewers
        on PostGIS)."""

    @abstractmethod
    def reference(self, tile_id: str) -> tuple[Any, list[int]]:
        """A gold tile's reference: (shapely polygons in the store CRS, class codes)."""

    @abstractmethod
    def add_gold_score(self, score: GoldScore) -> None:
        """Record a gold submission's score."""

    @abstractmethod
    def gold_scores(self) -> list[GoldScore]:
        """Every recorded gold score, oldest submission first."""

    # -- deliveries from offline sites (see geolabel.merge) ------------------------------

    @abstractmethod
    def merged_deliveries(self) -> list[dict[str, Any]]:
        """The deliveries merged into this store (dicts with MERGED_FIELDS), oldest first."""

    @abstractmethod
    def record_merge(self, merged: dict[str, Any], provenance: Sequence[dict[str, Any]]) -> None:
        """Record a merged delivery (MERGED_FIELDS) and the provenance of the labels it wrote
        (PROVENANCE_FIELDS rows); joins the caller's transaction."""

    @abstractmethod
    def provenance(self, *, label_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Where merged labels came from (dicts with PROVENANCE_FIELDS), oldest merge first."""

    # -- tile tags (see geolabel.labels.tags) ---------------------------------------------

    @abstractmethod
    def read_tag_schema(self) -> TagSchema | None:
        """The project's tag schema, None when none was set (and in stores made before tags)."""

    @abstractmethod
    def write_tag_schema(self, schema: TagSchema) -> None:
        """Store ``schema`` as it is (:func:`geolabel.labels.tags.set_tag_schema` checks it
        against the tags in use first); joins the caller's transaction."""

    @abstractmethod
    def tile_tags(
        self, *, tile_id: str | None = None, tag_code: int | None = None, labeler: str | None = None
    ) -> list[TileTag]:
        """Tags given to tiles matching every given filter, by tile, tag code and labeler."""

    @abstractmethod
    def replace_tile_tags(
        self, scope: Sequence[tuple[str, str]], rows: Sequence[TileTag], *, codes: Sequence[int] | None = None
    ) -> None:
        """In one transaction: remove the tags of each (tile_id, labeler) in ``scope`` (only
        those with a code in ``codes`` when given), then add ``rows``."""

    @abstractmethod
    def set_tile_tag_status(self, tile_id: str, labeler: str, status: str) -> int:
        """Give ``labeler``'s tags of ``tile_id`` ``status`` (their tile was submitted or
        reviewed); returns how many. Joins the caller's transaction."""

    def may_read_gold(self) -> bool:
        """Whether this connection may read gold tiles, references and scores (always in a
        GeoPackage, which has no roles; on PostGIS only the owner and the admin group)."""
        return True

    def member_name(self) -> str | None:
        """Who is working, as the store knows them: the database role on PostGIS, None in a
        GeoPackage (which has no logins: labeler and reviewer names are given)."""
        return None

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


def prepare_labels(frame: gpd.GeoDataFrame, crs: pyproj.CRS, schema: ClassSchema) -> tuple[Any, list[dict[str, Any]]]:
    """Validate a frame for insertion: geometries in the store's ``crs`` and complete attribute rows.

    Column by column (no per-row dicts from pandas): 50,000 labels take about 0.1 s."""
    geoms = _store_geometries(frame, crs)
    n = len(frame)
    now = now_iso()
    names = {cls.code: cls.name for cls in schema}
    codes = _class_codes(frame, schema)
    ids = _column(frame, "label_id")
    missing = [i for i, v in enumerate(ids) if v is None]
    for i, new_id in zip(missing, new_label_ids(len(missing))):
        ids[i] = new_id
    columns = {
        "label_id": ids,
        "class_code": codes,
        "class_name": [names[c] for c in codes],
        "labeler": _column(frame, "labeler"),
        "team": _column(frame, "team"),
        "status": _choices(frame, "status", "draft", STATUSES),
        "source": _choices(frame, "source", "manual", SOURCES),
        "tile_id": _column(frame, "tile_id"),
        "created": [v or now for v in _column(frame, "created")],
        "modified": [now] * n,
        "comment": _column(frame, "comment"),
        "version": [1] * n,
    }
    rows = [dict(zip(LABEL_FIELDS, values)) for values in zip(*(columns[f] for f in LABEL_FIELDS))]
    return geoms, rows


def _store_geometries(frame: gpd.GeoDataFrame, crs: pyproj.CRS) -> Any:
    """The frame's geometries in ``crs``; raises for anything but valid, non-empty Polygons."""
    import shapely

    from geolabel.crs import reproject_geometries, same_crs

    if frame.crs is not None and not same_crs(frame.crs, crs):
        geoms = reproject_geometries(frame.geometry.values.to_numpy(), frame.crs, crs)
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
    return geoms


def _column(frame: gpd.GeoDataFrame, name: str) -> list[Any]:
    """A column's values cleaned (:func:`clean_value`), or Nones when the frame has no such column."""
    if name not in frame.columns:
        return [None] * len(frame)
    return [clean_value(v) for v in frame[name].tolist()]


def _class_codes(frame: gpd.GeoDataFrame, schema: ClassSchema) -> list[int]:
    """Each label's class code, from ``class_code`` or else ``class_name``; unknown classes raise."""
    raw = frame["class_code"].tolist() if "class_code" in frame.columns else [None] * len(frame)
    names = frame["class_name"].tolist() if "class_name" in frame.columns else [None] * len(frame)
    known: dict[Any, int] = {}
    codes = []
    for i, (code, name) in enumerate(zip(raw, names)):
        if code is None or (isinstance(code, float) and code != code):
            if name is None:
                raise InputError(f"label {i}: needs class_code or class_name")
            codes.append(schema.resolve(name).code)
        elif code in known:
            codes.append(known[code])
        else:
            known[code] = schema.get(int(code)).code
            codes.append(known[code])
    return codes


def _choices(frame: gpd.GeoDataFrame, name: str, default: str, allowed: tuple[str, ...]) -> list[str]:
    """A column of choices (``default`` where empty); the first value not in ``allowed`` raises."""
    values = [v or default for v in _column(frame, name)]
    ok = set(allowed)
    for i, value in enumerate(values):
        if value not in ok:
            check_choice(value, allowed, f"label {i}: {name}")
    return values


def new_label_ids(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as text, made in one go (``uuid.uuid4`` costs 3 us each)."""
    import numpy as np

    raw = np.frombuffer(bytearray(os.urandom(16 * n)), dtype=np.uint8).reshape(n, 16)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.tobytes().hex()
    return [f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
            for i in range(0, 32 * n, 32)]  # fmt: skip


def class_code_value(value: Any) -> int | None:
    """A label's class code as read: an integer, or None when the row holds none (NULL) or
    something no class code can be (text, a fraction: SQLite keeps whatever a tool wrote)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def clean_value(value: Any) -> Any:
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


def create_store(
    location: str | os.PathLike[str],
    *,
    crs: Any,
    schema: ClassSchema | None = None,
    tag_schema: TagSchema | None = None,
    overwrite: bool = False,
) -> LabelStore:
    """Create an empty label store in ``crs`` and open it: a ``.gpkg`` file, or a project
    schema in PostgreSQL/PostGIS (``postgresql://user@host/db?schema=project_a``).

    A GeoPackage is built under a temporary name and renamed when complete; a PostGIS
    project is created in one transaction. An existing store is only replaced with
    ``overwrite=True``, and only if it is a label store: a tile index, a project GeoPackage
    or a schema given by mistake is left alone. ``tag_schema``: the project's tile tags
    (:mod:`geolabel.labels.tagschema`), written with the rest.
    """
    from geolabel.crs import parse_crs
    from geolabel.labels.pg_location import is_postgres_location

    text = os.fspath(location)
    if not is_postgres_location(text) and Path(text).suffix.lower() != ".gpkg":
        raise InputError(
            f"{text}: a GeoPackage label store needs the .gpkg extension "
            "(a team store is a PostgreSQL location: postgresql://host/db?schema=NAME)"
        )
    store_crs = parse_crs(crs, what="store CRS")
    if store_crs.is_geographic is False and store_crs.axis_info and store_crs.axis_info[0].unit_name in ("", None):
        raise InputError(f"{text}: store CRS {store_crs.name} has no linear unit")
    if is_postgres_location(text):
        from geolabel.labels.pg_create import create_postgis_store

        return create_postgis_store(
            text, crs=store_crs, schema=schema or default_schema(), tag_schema=tag_schema, overwrite=overwrite
        )
    return _create_geopackage(Path(text), store_crs, schema or default_schema(), tag_schema, overwrite)


def _create_geopackage(
    p: Path, store_crs: pyproj.CRS, schema: ClassSchema, tag_schema: TagSchema | None, overwrite: bool
) -> LabelStore:
    from geolabel.files import atomic_file, check_output_folder, writing
    from geolabel.labels.gpkg_file import build_store_file, check_local_folder, check_replaceable_store
    from geolabel.labels.gpkg_store import GeoPackageStore

    check_replaceable_store(p, overwrite=overwrite)
    check_output_folder(p)
    check_local_folder(p)
    with atomic_file(p, ".gpkg") as tmp, writing(p, "label store"):
        build_store_file(tmp, store_crs, schema, tag_schema)
    return GeoPackageStore(p)


@contextmanager
def opened_store(store: StoreLike) -> Iterator[LabelStore]:
    """``store`` itself if it is open (left open), else the store at that location, opened
    for the block and closed after it: how functions taking :data:`StoreLike` get a store."""
    if isinstance(store, LabelStore):
        yield store
        return
    with open_store(store) as opened:
        yield opened


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
    """Open an existing label store: a ``.gpkg`` path or a PostgreSQL location.

    ``timeout``: seconds to wait for another writer (QGIS saving edits) before raising
    :class:`~geolabel.errors.StoreBusyError` (default: :func:`busy_timeout`)."""
    from geolabel.labels.pg_location import is_postgres_location

    text = os.fspath(location)
    if is_postgres_location(text):
        from geolabel.labels.pg_store import PostGISStore

        return PostGISStore(text, timeout=timeout)
    from geolabel.labels.gpkg_store import GeoPackageStore

    return GeoPackageStore(Path(text), timeout=timeout)
