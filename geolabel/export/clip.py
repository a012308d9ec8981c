"""Labels clipped to tiles: one STRtree query over all labels, vectorised intersections.

A label wholly inside a tile passes through uncut; only labels crossing a tile border are
intersected with the tile. The result is, per tile, the objects it shows, in the tile's
CRS, with how much of each object lies inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geolabel.errors import InputError
from geolabel.export.splits import PixelBox

#: Connected nodata regions smaller than this (pixels) are specks, not "no imagery".
NODATA_MIN_PIXELS = 64


@dataclass(frozen=True)
class ChipInfo:
    """One chip of the tile index, read from the chip's own header."""

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
    def pixel_box(self) -> PixelBox:
        """The chip's place on its scene's pixel grid (for exact adjacency tests)."""
        return PixelBox.of(self.crs, self.transform, self.row_off, self.col_off, self.width, self.height)

    @property
    def footprint(self) -> Any:
        import shapely

        from geolabel.grid import pixel_corners

        return shapely.Polygon(pixel_corners(self.transform, self.width, self.height))

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
        import rasterio
        import rasterio.features
        from affine import Affine

        with rasterio.open(self.path) as src:
            mask = (src.dataset_mask() > 0).astype(np.uint8)
        if min_pixels > 1:
            mask = rasterio.features.sieve(mask, size=min_pixels, connectivity=8)
        if mask.all():
            return shapely.Polygon()
        shapes = rasterio.features.shapes(mask, mask=mask == 0, transform=Affine(*self.transform))
        return shapely.union_all([shapely.geometry.shape(geom) for geom, _ in shapes])


def load_chips(index_path: str | Path) -> list[ChipInfo]:
    """Every chip listed in a ``tiles.gpkg`` tile index, with its georeferencing.

    The index records each chip's CRS and geotransform, so no chip has to be opened.
    """
    from geolabel.tileindex import is_complete, read_index

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


@dataclass
class TileObjects:
    """The objects of one tile: label rows, clipped geometries (tile CRS), truncation."""

    rows: Any  # index into the label arrays
    geoms: Any  # clipped shapely geometries (Polygon or MultiPolygon) in the tile CRS
    truncated: Any  # bool: cut by the tile edge
    inside_fraction: Any  # share of the object's area inside the tile


def clip_to_tiles(
    label_geoms: Any, chips: Sequence[ChipInfo], *, min_overlap: float = 0.0, tree: Any = None
) -> list[TileObjects]:
    """Clip labels (already in the chips' CRS) to every chip, keeping objects whose share
    of area inside the chip is at least ``min_overlap`` (and more than nothing).

    ``tree`` is an STRtree over ``label_geoms`` to reuse across calls (built if None)."""
    import shapely

    from geolabel.geom import polygonal_parts, threaded

    footprints = np.array([c.footprint for c in chips], dtype=object)
    empty = [TileObjects(np.zeros(0, int), np.zeros(0, object), np.zeros(0, bool), np.zeros(0)) for _ in chips]
    if not len(label_geoms):
        return empty
    if tree is None:
        tree = shapely.STRtree(label_geoms)
    tile_idx, label_idx = tree.query(footprints, predicate="intersects")
    if not len(tile_idx):
        return empty
    inside = threaded(shapely.contains_properly, footprints[tile_idx], label_geoms[label_idx])
    clipped = label_geoms[label_idx].copy()
    cut = ~inside
    if cut.any():
        raw = threaded(shapely.intersection, label_geoms[label_idx[cut]], footprints[tile_idx[cut]])
        # keep only polygonal parts (a label touching the edge gives a line)
        parts, owner = polygonal_parts(raw)
        merged = np.empty(len(raw), dtype=object)
        merged[:] = None
        if len(parts):
            bounds = np.r_[0, np.flatnonzero(np.diff(owner)) + 1, len(owner)]
            for s, e in zip(bounds[:-1], bounds[1:]):
                merged[owner[s]] = parts[s] if e - s == 1 else shapely.multipolygons(parts[s:e])
        clipped[cut] = merged
    keep = ~shapely.is_missing(clipped)
    areas = np.zeros(len(clipped))
    areas[keep] = shapely.area(clipped[keep])
    fraction = np.zeros(len(clipped))
    full = shapely.area(label_geoms[label_idx])
    fraction[keep] = np.where(full[keep] > 0, areas[keep] / full[keep], 0.0)
    fraction[inside] = 1.0
    keep &= (areas > 0) & (fraction >= min_overlap)
    tile_idx, label_idx, clipped, fraction = tile_idx[keep], label_idx[keep], clipped[keep], fraction[keep]
    order = np.lexsort((label_idx, tile_idx))
    tile_idx, label_idx, clipped, fraction = (a[order] for a in (tile_idx, label_idx, clipped, fraction))
    cut = fraction < 1.0 - 1e-9  # truncated: part of the object lies outside the tile
    out = list(empty)
    bounds = np.r_[0, np.flatnonzero(np.diff(tile_idx)) + 1, len(tile_idx)]
    for s, e in zip(bounds[:-1], bounds[1:]):
        if e > s:
            out[int(tile_idx[s])] = TileObjects(label_idx[s:e], clipped[s:e], cut[s:e], fraction[s:e])
    return out
