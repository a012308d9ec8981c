"""Where suggestions are made: an AOI file or the chips of a tile index, in the scene's CRS."""

from __future__ import annotations

import os
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
