"""Where suggestions are made: an AOI file or the chips of a tile index, in the scene's CRS."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geolabel.errors import InputError


def suggestion_area(
    crs: Any,
    *,
    aoi: Any = None,
    tiles: str | os.PathLike[str] | None = None,
    tile: str | None = None,
) -> Any:
    """The polygon suggestions are limited to, in ``crs``; None for the whole scene.

    ``aoi``: a vector file (reprojected). ``tiles``: a tile index written by
    :func:`~geolabel.tiling.tile_raster` (read through its validating reader), all its
    chips or only chip ``tile``.
    """
    if aoi is not None and tiles is not None:
        raise InputError("`aoi` and `tiles` exclude each other; give one", params=("aoi", "tiles"))
    if tile is not None and tiles is None:
        raise InputError("`tile` needs `tiles` (the tile index it is listed in)", params=("tile", "tiles"))
    if aoi is not None:
        from geolabel.labels.delivery import read_region

        return read_region(aoi, crs)
    if tiles is not None:
        return tiles_area(Path(tiles), crs, tile=tile)
    return None


def tiles_area(index: Path, crs: Any, *, tile: str | None) -> Any:
    """Union of the footprints of the index's chips (or of chip ``tile``), in ``crs``."""
    import numpy as np
    import shapely

    from geolabel.crs import reproject_geometries, same_crs
    from geolabel.files import folder_lock
    from geolabel.tileindex import CHIPS_BUSY, load_chips

    with folder_lock(index.parent, shared=True, busy=CHIPS_BUSY):
        chips = load_chips(index)
    if tile is not None:
        chips = [c for c in chips if c.tile_id == tile]
        if not chips:
            raise InputError(f"{index}: lists no tile {tile!r}", params=("tile",))
    parts = []
    for c in chips:
        fp = c.footprint
        if not same_crs(c.crs, crs):
            fp = reproject_geometries(np.array([fp]), c.crs, crs, densify=c.edge_step)[0]
        parts.append(fp)
    return shapely.union_all(parts)


def area_boxes(
    transform: Sequence[float], width: int, height: int, *, area: Any, size: int, scene: str
) -> list[tuple[int, int, int, int]]:
    """The windows of ``size`` pixels to work on: all, or those overlapping ``area``
    (a polygon in the scene's CRS); an area off the scene raises."""
    import numpy as np
    import shapely

    from geolabel.geom import to_pixels
    from geolabel.suggest.windows import pixel_limit, scene_windows

    if area is None:
        return scene_windows(width, height, size=size)
    bounds = shapely.bounds(to_pixels(np.array([area]), tuple(transform)))[0]
    boxes = [] if area.is_empty else scene_windows(width, height, size=size, limit=pixel_limit(tuple(bounds)))
    if not boxes:
        raise InputError(f"{scene}: the area to suggest in (`aoi` or `tiles`) does not overlap the scene",
                         params=("aoi", "tiles"))  # fmt: skip
    return boxes


def chip_footprints(index: str | os.PathLike[str], crs: Any) -> dict[str, Any]:
    """Footprint of every chip of a tile index, in ``crs``, by tile id (sorted)."""
    import numpy as np

    from geolabel.crs import reproject_geometries, same_crs
    from geolabel.files import folder_lock
    from geolabel.tileindex import CHIPS_BUSY, load_chips

    path = Path(index)
    with folder_lock(path.parent, shared=True, busy=CHIPS_BUSY):
        chips = load_chips(path)
    out = {}
    for chip in sorted(chips, key=lambda c: c.tile_id):
        fp = chip.footprint
        if not same_crs(chip.crs, crs):
            fp = reproject_geometries(np.array([fp]), chip.crs, crs, densify=chip.edge_step)[0]
        out[chip.tile_id] = fp
    return out
