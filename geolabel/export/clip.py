"""Labels clipped to tiles: one STRtree query over all labels, vectorised intersections.

A label wholly inside a tile passes through uncut; only labels crossing a tile border are
intersected with the tile. The result is, per tile, the objects it shows, in the tile's
CRS, with how much of each object lies inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geolabel.tileindex import ChipInfo

# moved to geolabel.tileindex; importable from here as before


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
    inside = _inside(footprints, chips, tile_idx, label_geoms[label_idx])
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


def _inside(footprints: Any, chips: Sequence[ChipInfo], tile_idx: Any, labels: Any) -> Any:
    """Whether each label lies in the interior of its tile's footprint (``contains_properly``).

    A north-up chip's footprint is a rectangle: a polygon lies in its interior exactly when
    the polygon's bounding box lies strictly inside the rectangle's, so only rotated chips
    need the GEOS predicate."""
    import shapely

    from geolabel.geom import threaded

    rect = np.array([c.transform[1] == 0 and c.transform[3] == 0 for c in chips], dtype=bool)[tile_idx]
    inside = np.zeros(len(tile_idx), dtype=bool)
    if rect.any():
        box = shapely.bounds(footprints)[tile_idx[rect]]
        own = shapely.bounds(labels[rect])
        inside[rect] = (
            (own[:, 0] > box[:, 0]) & (own[:, 1] > box[:, 1]) & (own[:, 2] < box[:, 2]) & (own[:, 3] < box[:, 3])
        )
    if not rect.all():
        shapely.prepare(footprints)
        inside[~rect] = threaded(shapely.contains_properly, footprints[tile_idx[~rect]], labels[~rect])
    return inside
