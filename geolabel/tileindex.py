"""The tile index: ``tiles.gpkg`` next to the chips, one row per chip.

Layer ``tiles`` lists written chips; layer ``skipped_tiles`` lists grid cells that were
left out (too much nodata) so a rerun does not read them again. The tiling parameters
are stored as layer metadata (``GEOLABEL_TILING``) so a rerun can check it continues the
same job. The file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from geolabel.errors import InputError

INDEX_NAME = "tiles.gpkg"
TILES_LAYER = "tiles"
SKIPPED_LAYER = "skipped_tiles"
META_KEY = "GEOLABEL_TILING"
#: ``complete`` once a run finished; ``incomplete`` while running or after a failure.
STATUS_KEY = "GEOLABEL_STATUS"

#: GeoPackage 1.2 opens in QGIS 3.22 without a version warning.
GPKG_OPTIONS = {"VERSION": "1.2"}


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
    crs: str  # the chip's CRS as WKT ('' when the scene has none)
    # chip footprint corners (x0, y0, x1, y1, x2, y2, x3, y3) in the chip's CRS
    corners: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = [f.name for f in fields(TileRecord) if f.name != "corners"]


def footprint_wkb(records: Sequence[TileRecord], index_crs: str, *, densify: int = 8) -> list[bytes]:
    """Polygon footprints as WKB, reprojected into ``index_crs`` where a chip's CRS differs."""
    import numpy as np
    import shapely

    from geolabel.crs import reproject_geometries, same_crs

    rings = np.array([r.corners for r in records], dtype="float64").reshape(-1, 4, 2)
    polys = shapely.polygons(np.concatenate([rings, rings[:, :1]], axis=1))
    if index_crs:
        for crs in {r.crs for r in records if r.crs and r.crs != index_crs}:
            if same_crs(crs, index_crs):
                continue

            sel = np.array([r.crs == crs for r in records])
            dense = shapely.segmentize(polys[sel], max_segment_length=_segment(polys[sel], densify))
            polys[sel] = reproject_geometries(dense, crs, index_crs)
    return list(shapely.to_wkb(polys))


def _segment(polys: Any, densify: int) -> float:
    import shapely

    b = shapely.bounds(polys)
    return float(max((b[:, 2] - b[:, 0]).max(), (b[:, 3] - b[:, 1]).max()) / densify)


def write_index(
    path: Path,
    chips: Sequence[TileRecord],
    skipped: Sequence[TileRecord],
    *,
    crs: str,
    params: dict[str, Any],
    complete: bool = True,
) -> None:
    """Write ``tiles.gpkg`` atomically: both layers, the parameters and whether the run ended."""
    import numpy as np
    from pyogrio.raw import write

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.gpkg")
    tmp.unlink(missing_ok=True)
    meta = {META_KEY: json.dumps(params, sort_keys=True), STATUS_KEY: "complete" if complete else "incomplete"}

    try:
        for layer, records in ((TILES_LAYER, chips), (SKIPPED_LAYER, skipped)):
            columns = [np.array([getattr(r, name) for r in records], dtype=_dtype(name)) for name in _FIELDS]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="'crs' was not provided", category=UserWarning)
                write(
                    str(tmp),
                    np.array(footprint_wkb(records, crs), dtype=object) if records else np.array([], dtype=object),
                    columns,
                    _FIELDS,
                    layer=layer,
                    driver="GPKG",
                    geometry_type="Polygon",
                    crs=crs or None,
                    layer_metadata=meta,
                    dataset_options=GPKG_OPTIONS if layer == TILES_LAYER else None,
                )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _dtype(name: str) -> str:
    if name == "nodata_fraction":
        return "float64"
    if name in ("row", "col", "row_off", "col_off", "width", "height"):
        return "int32"
    return "object"


def read_index(path: Path) -> tuple[list[TileRecord], list[TileRecord], dict[str, Any]]:
    """Records of both layers and the stored parameters of an existing index."""
    import pyogrio
    import shapely
    from pyogrio.raw import read

    try:
        layers = {name for name, _ in pyogrio.list_layers(str(path))}
        info = pyogrio.read_info(str(path), layer=TILES_LAYER)
    except Exception as exc:
        raise InputError(f"{path}: not a geolabel tile index ({exc})") from None
    raw_meta = (info.get("layer_metadata") or {}).get(META_KEY)
    if TILES_LAYER not in layers or raw_meta is None:
        raise InputError(f"{path}: not a geolabel tile index (no {TILES_LAYER!r} layer with parameters)")
    params = json.loads(raw_meta)
    out: list[list[TileRecord]] = []
    for layer in (TILES_LAYER, SKIPPED_LAYER):
        if layer not in layers:
            out.append([])
            continue
        meta, _fids, geoms, cols = read(str(path), layer=layer)
        names = list(meta["fields"])
        records = []
        for i in range(len(geoms)):
            values = {name: cols[names.index(name)][i] for name in _FIELDS}
            ring = shapely.get_coordinates(shapely.from_wkb(geoms[i]))[:4]
            values["corners"] = tuple(float(v) for v in ring.ravel())
            for key in ("row", "col", "row_off", "col_off", "width", "height"):
                values[key] = int(values[key])
            values["nodata_fraction"] = float(values["nodata_fraction"])
            values["crs"] = values["crs"] or ""
            records.append(TileRecord(**values))
        out.append(records)
    return out[0], out[1], params


def read_tiles(path: str | os.PathLike[str]) -> Any:
    """The ``tiles`` layer as a GeoDataFrame (chip paths made absolute)."""
    import geopandas as gpd

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such tile index")
    df = gpd.read_file(p, layer=TILES_LAYER)
    df["path"] = [str((p.parent / rel).resolve()) for rel in df["path"]]
    return df


def merge_records(old: Iterable[TileRecord], new: Iterable[TileRecord]) -> list[TileRecord]:
    """Union by ``tile_id`` (new wins), sorted by scene then grid position."""
    merged = {r.tile_id: r for r in old}
    merged.update({r.tile_id: r for r in new})
    return sorted(merged.values(), key=lambda r: (r.scene, r.row, r.col))
