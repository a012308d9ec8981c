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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from geolabel import vocabulary
from geolabel.errors import (
    GeolabelError,
    InputError,
)
from geolabel.labels.schema import ClassSchema, default_schema

if TYPE_CHECKING:
    import geopandas as gpd
    import pyproj

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
    def replace_geometries(self, changes: Sequence[tuple[str, Any]]) -> None:
        """Set new geometries for many labels at once, bumping their versions (resolve)."""

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


def create_store(
    path: str | os.PathLike[str],
    *,
    crs: Any,
    schema: ClassSchema | None = None,
    overwrite: bool = False,
) -> LabelStore:
    """Create an empty GeoPackage label store in ``crs`` and open it.

    The file is built under a temporary name and renamed when complete. An existing
    file is only replaced with ``overwrite=True``, and only if it is a label store: a
    tile index or a project GeoPackage given by mistake is left alone.
    """
    from geolabel.crs import parse_crs
    from geolabel.files import atomic_file, check_output_folder, writing
    from geolabel.labels.gpkg_file import build_store_file, check_replaceable_store
    from geolabel.labels.gpkg_store import GeoPackageStore

    p = Path(path)
    if p.suffix.lower() != ".gpkg":
        raise InputError(f"{p}: a GeoPackage label store needs the .gpkg extension")
    check_replaceable_store(p, overwrite=overwrite)
    check_output_folder(p)
    store_crs = parse_crs(crs, what="store CRS")
    if store_crs.is_geographic is False and store_crs.axis_info and store_crs.axis_info[0].unit_name in ("", None):
        raise InputError(f"{p}: store CRS {store_crs.name} has no linear unit")
    schema = schema or default_schema()
    with atomic_file(p, ".gpkg") as tmp, writing(p, "label store"):
        build_store_file(tmp, store_crs, schema or default_schema())
    return GeoPackageStore(p)


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
    from geolabel.labels.gpkg_store import GeoPackageStore

    return GeoPackageStore(Path(text), timeout=timeout)
