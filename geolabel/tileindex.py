"""The tile index: ``tiles.gpkg`` next to the chips, one row per chip.

Layer ``tiles`` lists written chips; layer ``skipped_tiles`` lists grid cells that were
left out (too much nodata) so a rerun does not read them again. The tiling parameters
are stored as layer metadata (``GEOLABEL_TILING``) so a rerun can check it continues the
same job. The file is written to a temporary name and renamed into place; while a job
runs, :class:`IndexWriter` rewrites it every few seconds (status ``incomplete``), so a
killed run leaves an index of the chips finished a few seconds before.

Indexes travel between sites, so their rows are untrusted: :func:`read_index` refuses an
index with any row geolabel would not have written (:func:`record_problem`) or a chip
that lies outside the index's folder through a symbolic link, before any command uses it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.crs import stored_crs_problem
from geolabel.errors import InputError, OutputError, first_line
from geolabel.files import UNSYNCED_GPKG, atomic_file, leads_outside, temp_pattern, writing
from geolabel.grid import safe_name, tile_id
from geolabel.stop import deferred

if TYPE_CHECKING:
    from geolabel.export.splits import PixelBox
    from geolabel.geo import GeoGrid

INDEX_NAME = "tiles.gpkg"
TILES_LAYER = "tiles"
SKIPPED_LAYER = "skipped_tiles"
META_KEY = "GEOLABEL_TILING"
#: ``complete`` once a run finished; ``incomplete`` while running or after a failure.
STATUS_KEY = "GEOLABEL_STATUS"
#: What a ``keep_going`` run could not do: a JSON list of :class:`Failure` (absent when none).
FAILED_KEY = "GEOLABEL_FAILED"


@dataclass(frozen=True)
class Failure:
    """A scene (``tile_id`` empty) or chip a ``keep_going`` run could not make, and why."""

    scene: str
    tile_id: str
    reason: str


#: What a run says when another holds the chips folder (:func:`geolabel.files.folder_lock`).
CHIPS_BUSY = "another geolabel run is writing these chips (tile) or reading them (export, check); wait for it to end"
#: GeoPackage 1.2 opens in QGIS 3.22 without a version warning.
GPKG_OPTIONS = {"VERSION": "1.2"}
#: Longest tile id (UTF-8 bytes): a file name holds 255 and geolabel adds up to 30 to an
#: id (a chip's temporary ``.<id>.tif.<pid>-<host>.tmp.tif``, ``<id>.geojson`` in a dataset).
MAX_TILE_ID_BYTES = 200
#: Temporary index files (and their SQLite journals) of :func:`write_index`.
INDEX_TEMP = temp_pattern(re.escape(INDEX_NAME), r"\.gpkg(?:-journal|-wal|-shm)?")
#: A running job's index is rewritten at most every this many seconds, ...
CHECKPOINT_SECONDS = 5.0
#: ... and at most 1/20 of the time (a large index, slower to write, is written less often).
CHECKPOINT_COST_RATIO = 20.0
#: Connected nodata regions smaller than this (pixels) are specks, not "no imagery".
NODATA_MIN_PIXELS = 64


@dataclass(frozen=True)
class TileRecord:
    """One grid cell of one scene, as listed in the index."""

    tile_id: str
    scene: str
    scene_path: str
    path: str  # chip path relative to the index's folder ('' for skipped cells)
    row: int
    col: int
    row_off: int
    col_off: int
    width: int
    height: int
    nodata_fraction: float
    crs: str  # the chip's CRS: EPSG:xxxx when exact, else WKT ('' when the scene has none)
    transform: tuple[float, ...]  # the chip's geotransform (a, b, c, d, e, f) in its own CRS
    # what the scene's STAC item says (:class:`SceneProperties`); None for a scene from a file
    datetime: str | None = None
    platform: str | None = None
    cloud_cover: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def grid(self) -> GeoGrid:
        """The chip's georeferenced pixel grid (CRS None when the scene has none)."""
        from geolabel.geo import GeoGrid

        return GeoGrid(self.crs or None, self.transform, self.width, self.height)

    @property
    def corners(self) -> tuple[float, ...]:
        """Footprint corners (x0, y0, ... x3, y3) in the chip's CRS, clockwise from top-left."""
        return tuple(v for xy in self.grid.corners() for v in xy)


@dataclass(frozen=True)
class SceneProperties:
    """What a scene's STAC item says about it, copied into every index row of the scene
    (columns ``datetime``, ``platform``, ``cloud_cover``; NULL for a scene from a file).

    >>> SceneProperties("2023-05-01T10:20:00Z", "sentinel-2a", 12.5).problem() is None
    True
    >>> SceneProperties(cloud_cover=140.0).problem()
    'cloud_cover 140.0 must be a percentage between 0 and 100'
    """

    datetime: str | None = None  # ISO 8601 text, as STAC writes it
    platform: str | None = None
    cloud_cover: float | None = None  # percent (STAC's eo:cloud_cover)

    def problem(self) -> str | None:
        """Why these values cannot stand in an index (None when they can): indexes travel
        between sites, so a reader checks them as a writer does."""
        import math
        from datetime import datetime

        if self.datetime is not None:
            try:
                if not isinstance(self.datetime, str) or len(self.datetime) > 40:
                    raise ValueError
                datetime.fromisoformat(self.datetime)
            except ValueError:
                return f"datetime {_shown(str(self.datetime))} is not an ISO 8601 date and time"
        if self.platform is not None and (
            not isinstance(self.platform, str) or not 0 < len(self.platform) <= 100 or not self.platform.isprintable()
        ):
            return f"platform {_shown(str(self.platform))} is not a name of 1 to 100 printable characters"
        cover = self.cloud_cover
        if cover is not None and (
            not isinstance(cover, (int, float)) or isinstance(cover, bool) or not math.isfinite(cover)
            or not 0 <= cover <= 100
        ):  # fmt: skip
            shown = repr(cover) if isinstance(cover, (int, float)) else _shown(str(cover))
            return f"cloud_cover {shown} must be a percentage between 0 and 100"
        return None


_FIELDS = [f.name for f in fields(TileRecord)]
#: Columns every index has; the :class:`SceneProperties` ones came later (NULL when absent).
_REQUIRED = [name for name in _FIELDS if name not in {f.name for f in fields(SceneProperties)}]
_INT_FIELDS = ("row", "col", "row_off", "col_off", "width", "height")
_FLOAT_FIELDS = ("nodata_fraction", "cloud_cover")


def _format_transform(t: Sequence[float]) -> str:
    return ",".join(repr(float(v)) for v in t)


def _parse_transform(text: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 6:
        raise ValueError(f"transform needs 6 numbers, got {text!r}")
    return values


def _footprints(records: Sequence[TileRecord], index_crs: str, *, densify: int = 8) -> list[dict[str, Any]]:
    """GeoJSON-like polygons, reprojected into ``index_crs`` where a chip's CRS differs."""
    from geolabel.grid import pixel_corners

    rings = [pixel_corners(r.transform, r.width, r.height) for r in records]
    out: list[dict[str, Any]] = [{"type": "Polygon", "coordinates": [[*ring, ring[0]]]} for ring in rings]
    others = {r.crs for r in records if r.crs and index_crs and r.crs != index_crs}
    if others:
        import shapely

        from geolabel.crs import reproject_geometries, same_crs

        for crs in others:
            if same_crs(crs, index_crs):
                continue
            members = [k for k, r in enumerate(records) if r.crs == crs]
            polys = shapely.polygons([rings[k] for k in members])
            step = float(shapely.length(polys).min()) / (4 * densify)  # ``densify`` points per edge
            for k, poly in zip(members, reproject_geometries(polys, crs, index_crs, densify=step)):
                out[k] = shapely.geometry.mapping(poly)
    return out


_SCHEMA = {
    "geometry": "Polygon",
    "properties": {
        name: ("float" if name in _FLOAT_FIELDS else "int" if name in _INT_FIELDS else "str") for name in _FIELDS
    },
}


def write_index(
    path: Path,
    chips: Sequence[TileRecord],
    skipped: Sequence[TileRecord],
    *,
    crs: str,
    params: dict[str, Any],
    complete: bool = True,
    failed: Sequence[Failure] = (),
) -> None:
    """Write ``tiles.gpkg`` atomically: both layers, the parameters, whether the run ended
    and what it could not do (``failed``, a rerun tries those again)."""
    import fiona

    tags = {META_KEY: json.dumps(params, sort_keys=True), STATUS_KEY: "complete" if complete else "incomplete"}
    if failed:
        tags[FAILED_KEY] = json.dumps([asdict(f) for f in failed])
    # a Ctrl-C waits for the end of the write and the rename: cut inside fiona, the
    # half-closed file fails again (printed) when Python collects it. The full disk is said
    # while the temporary file still fills it.
    with deferred(), writing(path, "tile index"), atomic_file(path, ".gpkg") as tmp, fiona.Env(**UNSYNCED_GPKG):
        for layer, records in ((TILES_LAYER, chips), (SKIPPED_LAYER, skipped)):
            with fiona.open(
                tmp, "w", driver="GPKG", layer=layer, schema=_SCHEMA, crs=crs or None, **GPKG_OPTIONS
            ) as dst:
                dst.update_tags(tags)
                dst.writerecords(
                    {
                        "geometry": geom,
                        "properties": {
                            name: _format_transform(r.transform) if name == "transform" else getattr(r, name)
                            for name in _FIELDS
                        },
                    }
                    for r, geom in zip(records, _footprints(records, crs))
                )


def index_crs(path: Path) -> str:
    """The CRS of an existing index's layers ('' when it has none)."""
    import fiona

    from geolabel.crs import compact_crs

    with fiona.open(path, layer=TILES_LAYER) as src:
        return compact_crs(src.crs_wkt) if src.crs_wkt else ""


def read_index(path: Path) -> tuple[list[TileRecord], list[TileRecord], dict[str, Any]]:
    """Records of both layers and the stored parameters of an existing index, refused
    (:class:`InputError`) unless every row is one geolabel would write (:func:`check_index`)."""
    import fiona

    from geolabel.files import check_input_file

    check_input_file(path, "tile index")
    try:
        layers = fiona.listlayers(path)
        with fiona.open(path, layer=TILES_LAYER) as src:
            raw_meta = src.tags().get(META_KEY)
            names = set(src.schema["properties"])
    except Exception as exc:
        raise InputError(f"{path}: not a geolabel tile index ({first_line(exc)})") from None
    if raw_meta is not None and not set(_REQUIRED) <= names:
        raise InputError(f"{path}: made by an older geolabel (no chip transforms); tile again into a new folder")
    if raw_meta is None:
        raise InputError(f"{path}: not a geolabel tile index (no {TILES_LAYER!r} layer with parameters)")
    params = _parse_params(path, raw_meta)
    chips, skipped = (_read_layer(path, layer) if layer in layers else [] for layer in (TILES_LAYER, SKIPPED_LAYER))
    check_index(path, chips, skipped)
    return chips, skipped, params


def _parse_params(path: Path, raw: str) -> dict[str, Any]:
    """The tiling options stored in an index (a JSON object), refused when damaged."""
    try:
        params = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"{path}: not a geolabel tile index ({META_KEY} is not JSON: {first_line(exc)})") from None
    if not isinstance(params, dict):
        raise InputError(f"{path}: not a geolabel tile index ({META_KEY} is not a JSON object)")
    return params


def is_complete(path: Path) -> bool:
    """Whether the run that wrote the index ended (indexes from before the status was kept
    count as complete)."""
    import fiona

    with fiona.open(path, layer=TILES_LAYER) as src:
        return bool(src.tags().get(STATUS_KEY, "complete") == "complete")


def failures(path: Path) -> list[Failure]:
    """What the ``keep_going`` run that wrote the index could not do (untrusted text: only
    well-formed entries are returned)."""
    import fiona

    with fiona.open(path, layer=TILES_LAYER) as src:
        raw = src.tags().get(FAILED_KEY)
    try:
        items = json.loads(raw) if raw else []
    except ValueError:
        return []
    keys = ("scene", "tile_id", "reason")
    return [
        Failure(*(str(item[k]) for k in keys))
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and all(isinstance(item.get(k), str) for k in keys)
    ]


def _read_layer(path: Path, layer: str) -> list[TileRecord]:
    import fiona

    records = []
    with fiona.open(path, layer=layer) as src:
        for n, feat in enumerate(src, start=1):
            values = {name: feat.properties.get(name) for name in _FIELDS}
            values["crs"] = values["crs"] or ""
            missing = [name for name in _REQUIRED if values[name] is None]
            try:
                if missing:
                    raise ValueError(f"no {', '.join(missing)}")
                values["transform"] = _parse_transform(values["transform"])
            except ValueError as exc:
                raise InputError(f"{path}: {layer} feature {n}: {first_line(exc)}") from None
            records.append(TileRecord(**values))
    return records


def _shown(text: str) -> str:
    """``text`` quoted for a one-line message (escapes visible, cut after 60 characters)."""
    return repr(text if len(text) <= 60 else text[:60] + "...")


def record_problem(rec: TileRecord, *, chip: bool) -> str | None:
    """Why ``rec`` is not a row geolabel would write (None when it is one).

    The rule: the scene is a name geolabel makes from a file name (``safe_name`` keeps it
    as it is: letters of any script, digits, ``_``, ``-``, ``.``, not first or last), the
    tile id is exactly ``<scene>_r<row>_c<col>`` for the row's scene, row and column (3 or
    more digits, at most :data:`MAX_TILE_ID_BYTES`), and a chip's path (``chip``) is
    ``<scene>/<tile_id>.tif`` while a skipped cell has none; STAC properties, when there
    are any, pass :meth:`SceneProperties.problem`.

    >>> t = (0.5, 0.0, 500000.0, 0.0, -0.5, 3000000.0)
    >>> rec = TileRecord("a_r000_c001", "a", "", "a/a_r000_c001.tif", 0, 1, 0, 256, 256, 256, 0.0, "", t)
    >>> record_problem(rec, chip=True) is None
    True
    >>> record_problem(rec, chip=False)
    "a skipped cell has a path ('a/a_r000_c001.tif')"
    """
    if not all(isinstance(v, str) for v in (rec.scene, rec.tile_id, rec.path)):
        return "scene, tile_id and path must be text"
    numbers = _numbers_problem(rec)
    if numbers is not None:
        return numbers
    if safe_name(rec.scene) != rec.scene:
        return f"scene {_shown(rec.scene)} is not a name geolabel makes (it would be {_shown(safe_name(rec.scene))})"
    if len(rec.tile_id.encode()) > MAX_TILE_ID_BYTES:
        return f"tile id {_shown(rec.tile_id)} is longer than {MAX_TILE_ID_BYTES} bytes"
    digits, odd = divmod(len(rec.tile_id) - len(rec.scene) - 4, 2)  # '<scene>_r<digits>_c<digits>'
    if odd or rec.tile_id != tile_id(rec.scene, rec.row, rec.col, digits=max(3, digits)):
        return (
            f"tile id {_shown(rec.tile_id)} is not <scene>_r<row>_c<col> for scene {_shown(rec.scene)}, "
            f"row {rec.row}, col {rec.col}"
        )
    if chip and rec.path != f"{rec.scene}/{rec.tile_id}.tif":
        return f"chip path {_shown(rec.path)} is not {_shown(f'{rec.scene}/{rec.tile_id}.tif')}"
    if not chip and rec.path:
        return f"a skipped cell has a path ({_shown(rec.path)})"
    if rec.crs and (problem := stored_crs_problem(rec.crs)) is not None:
        return f"crs {problem}"
    return SceneProperties(rec.datetime, rec.platform, rec.cloud_cover).problem()


def _numbers_problem(rec: TileRecord) -> str | None:
    """Why the grid position, size, nodata fraction or transform of ``rec`` is impossible."""
    import math

    counts = {"row": rec.row, "col": rec.col, "row_off": rec.row_off, "col_off": rec.col_off}
    for name, value in {**counts, "width": rec.width, "height": rec.height}.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 31:
            return f"{name} {value!r} must be a whole number >= 0"
    if not 0 < rec.width <= 1 << 20 or not 0 < rec.height <= 1 << 20:
        return f"a chip of {rec.width}x{rec.height} px is impossible"
    if not isinstance(rec.nodata_fraction, (int, float)) or not 0.0 <= rec.nodata_fraction <= 1.0:
        return f"nodata_fraction {rec.nodata_fraction!r} must be between 0 and 1"
    a, b, _, d, e, _ = rec.transform
    if not all(math.isfinite(v) for v in rec.transform) or a * e - b * d == 0:
        return f"transform {rec.transform!r} is not a usable geotransform"
    return None


def check_index(path: Path, chips: Sequence[TileRecord], skipped: Sequence[TileRecord]) -> None:
    """Refuse an index with a row geolabel would not write (:func:`record_problem`), a tile
    id listed twice, or a chip (or scene folder) that is a link to outside its folder."""
    for layer, records in ((TILES_LAYER, chips), (SKIPPED_LAYER, skipped)):
        seen: set[str] = set()
        for n, rec in enumerate(records, start=1):
            problem = record_problem(rec, chip=layer == TILES_LAYER)
            if problem is None and rec.tile_id in seen:
                problem = f"tile id {_shown(rec.tile_id)} is listed twice"
            if problem is not None:
                raise InputError(f"{path}: {layer} feature {n}: {problem}; not an index geolabel wrote")
            seen.add(rec.tile_id)
    folder = path.parent
    for rel in sorted({r.scene for r in chips}) + [r.path for r in chips]:
        if leads_outside(folder / rel, folder):
            raise InputError(
                f"{path}: {_shown(rel)} is a link to outside {folder}; chips must lie in the index's folder"
            )


def read_tiles(path: str | os.PathLike[str]) -> Any:
    """The ``tiles`` layer as a GeoDataFrame (chip paths made absolute)."""
    import geopandas as gpd

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such tile index")
    read_index(p)  # refuses an index geolabel would not write
    df = gpd.read_file(p, layer=TILES_LAYER)
    df["path"] = [str((p.parent / rel).resolve()) for rel in df["path"]]
    return df


@dataclass(frozen=True)
class ChipInfo:
    """One chip of the tile index, as consumers of the chips see it (:func:`load_chips`)."""

    tile_id: str
    scene: str
    path: str  # absolute path of the chip
    crs: str  # EPSG:xxxx when GDAL identifies it exactly (keeps datum shifts right), else WKT
    transform: tuple[float, ...]
    width: int
    height: int
    nodata_fraction: float
    row_off: int = 0  # offset of the chip in its scene's pixel grid
    col_off: int = 0

    @property
    def grid(self) -> GeoGrid:
        """The chip's georeferenced pixel grid."""
        from geolabel.geo import GeoGrid

        return GeoGrid(self.crs, self.transform, self.width, self.height)

    @property
    def pixel_box(self) -> PixelBox:
        """The chip's place on its scene's pixel grid (for exact adjacency tests)."""
        from geolabel.export.splits import PixelBox  # export's type, until it moves next to GeoGrid

        return PixelBox.of(self.crs, self.transform, self.row_off, self.col_off, self.width, self.height)

    @property
    def footprint(self) -> Any:
        return self.grid.footprint()

    @property
    def edge_step(self) -> float:
        """Densification step (CRS units) for reprojecting the footprint: 16 pixels."""
        a, b, _, d, e, _ = self.transform
        return 16 * max(abs(a), abs(b), abs(d), abs(e))

    def nodata_area(self, *, min_pixels: int = NODATA_MIN_PIXELS) -> Any:
        """The chip's nodata and padding pixels as a polygon (empty when it has none), read
        from the chip's mask. Specks of fewer than ``min_pixels`` connected nodata pixels
        (a dropped pixel, a sensor defect) count as image: nobody labels around them."""
        import shapely

        if self.nodata_fraction <= 0:
            return shapely.Polygon()
        import numpy as np
        import rasterio
        from affine import Affine

        from geolabel import rasterfeatures

        with rasterio.open(self.path) as src:
            mask = (src.dataset_mask() > 0).astype(np.uint8)
        if min_pixels > 1:
            mask = rasterfeatures.sieve(mask, size=min_pixels, connectivity=8)
        if mask.all():
            return shapely.Polygon()
        shapes = rasterfeatures.shapes(mask, mask=mask == 0, transform=Affine(*self.transform))
        return shapely.union_all([shapely.geometry.shape(geom) for geom, _ in shapes])


def load_chips(index_path: str | Path) -> list[ChipInfo]:
    """Every chip listed in a ``tiles.gpkg`` tile index, with its georeferencing.

    The index records each chip's CRS and geotransform, so no chip has to be opened.
    """
    p = Path(index_path)
    if not p.exists():
        raise InputError(f"{p}: no such tile index (make one with `tile_raster()`)", params=("tile_raster()",))
    records, _skipped, _params = read_index(p)
    if not is_complete(p):
        raise InputError(
            f"{p}: is incomplete (the `tile_raster()` run that writes it was interrupted or is still running); "
            "run it again to finish the index",
            params=("tile_raster()",),
        )
    if not records:
        raise InputError(f"{p}: the tile index lists no chips")
    chips = []
    for rec in records:
        chip_path = (p.parent / rec.path).resolve()
        if not chip_path.exists():
            raise InputError(
                f"{chip_path}: chip listed in {p} is missing; rerun `tile_raster()` to restore it",
                params=("tile_raster()",),
            )
        if not rec.crs:
            raise InputError(f"{chip_path}: chip has no CRS; labels cannot be placed on it")
        chips.append(
            ChipInfo(
                tile_id=rec.tile_id,
                scene=rec.scene,
                path=str(chip_path),
                crs=rec.crs,
                transform=rec.transform,
                width=rec.width,
                height=rec.height,
                nodata_fraction=rec.nodata_fraction,
                row_off=rec.row_off,
                col_off=rec.col_off,
            )
        )
    return chips


class IndexWriter:
    """The index of a running job: records as they arrive, written atomically now and then.

    ``properties`` (scene name -> :class:`SceneProperties`) are copied into every row of
    those scenes. :meth:`write` writes it now (the job writes it, ``incomplete``, as soon as its first
    tasks are queued, and ``complete`` at the end); :meth:`checkpoint` rewrites it when new
    records arrived, at most every :data:`CHECKPOINT_SECONDS` (and at most
    1/:data:`CHECKPOINT_COST_RATIO` of the time), or at once if it was never written.
    """

    def __init__(
        self,
        path: Path,
        *,
        crs: str,
        params: dict[str, Any],
        chips: Iterable[TileRecord] = (),
        skipped: Iterable[TileRecord] = (),
        properties: Mapping[str, SceneProperties] | None = None,
    ) -> None:
        self.path = path
        self.crs = crs
        self.params = params
        self.properties = dict(properties or {})  # scene name -> its STAC item's properties
        self._chips = {r.tile_id: self._stamped(r) for r in chips}
        self._skipped = {r.tile_id: self._stamped(r) for r in skipped}
        self.failed: list[Failure] = []  # what this (keep_going) job could not do
        self._new = 0  # records since the last write
        self._last: float | None = None  # when this job last wrote the file
        self._cost = 0.0  # how long that took

    @property
    def written(self) -> bool:
        """Whether this job has written the file."""
        return self._last is not None

    @property
    def chips(self) -> list[TileRecord]:
        return sorted(self._chips.values(), key=_grid_order)

    @property
    def skipped(self) -> list[TileRecord]:
        return sorted(self._skipped.values(), key=_grid_order)

    def add(self, record: TileRecord, *, skipped: bool = False) -> None:
        (self._skipped if skipped else self._chips)[record.tile_id] = self._stamped(record)
        self._new += 1

    def _stamped(self, record: TileRecord) -> TileRecord:
        """``record`` with its scene's :attr:`properties` (as the scene's item says now)."""
        props = self.properties.get(record.scene)
        return record if props is None else replace(record, **asdict(props))

    def checkpoint(self) -> None:
        """Write the index (incomplete) if new records arrived and it is time to."""
        if not self._new:
            return
        if self._last is None or time.monotonic() - self._last >= max(
            CHECKPOINT_SECONDS, CHECKPOINT_COST_RATIO * self._cost
        ):
            self.write(complete=False)

    def write(self, *, complete: bool) -> None:
        start = time.monotonic()
        try:
            write_index(
                self.path,
                self.chips,
                self.skipped,
                crs=self.crs,
                params=self.params,
                complete=complete,
                failed=self.failed,
            )
        except OutputError:
            raise
        except Exception as exc:
            raise OutputError(f"{self.path}: cannot write the tile index ({first_line(exc)})") from None
        self._last = time.monotonic()
        self._cost = self._last - start
        self._new = 0


def _grid_order(record: TileRecord) -> tuple[str, int, int]:
    return (record.scene, record.row, record.col)
