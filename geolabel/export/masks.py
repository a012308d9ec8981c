"""Class masks per tile: uint8 GeoTIFFs aligned to the chips.

Format ``masks``: ``labels/masks/<split>/<tile_id>.tif``, pixel = class code of the
highest-priority label covering its centre, :data:`MASK_NODATA` where no label does or the
image has no data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geolabel.export import layout
from geolabel.export.jobs import TileData, TileResult

#: Mask value of pixels that are unlabelled or nodata in the image.
MASK_NODATA = 255


def write_tile_mask(tile: TileData, result: TileResult) -> None:
    """Write the tile's class mask and count its pixels per class."""
    import rasterio

    from geolabel.raster import write_raster_file

    job = tile.job
    mask = rasterize_classes(
        tile.geoms, tile.codes, job.priorities, width=job.width, height=job.height, transform=job.transform
    )
    if job.nodata_fraction > 0:
        with rasterio.open(job.chip_path) as chip:
            mask[chip.dataset_mask() == 0] = MASK_NODATA
    counts = np.bincount(mask.ravel(), minlength=256)
    result.pixel_counts = {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    rel = layout.mask(job.split, job.tile_id)

    def fill(dst: Any) -> None:
        dst.write(mask, 1)
        dst.set_band_description(1, "class_code")

    write_raster_file(layout.target(tile.out, rel), _mask_profile(tile), fill)
    result.files.append(rel)


def _mask_profile(tile: TileData) -> dict[str, Any]:
    """The mask's GeoTIFF profile: the chip's grid, DEFLATE, 256 px tiles when they fit."""
    from affine import Affine

    job = tile.job
    block = 256 if job.width % 16 == 0 and job.height % 16 == 0 else None
    profile: dict[str, Any] = dict(
        driver="GTiff",
        width=job.width,
        height=job.height,
        count=1,
        dtype="uint8",
        crs=job.crs,
        transform=Affine(*job.transform[:6]),
        nodata=MASK_NODATA,
        compress="deflate",
    )
    if block:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    return profile


def rasterize_classes(
    geoms: Any, codes: Any, priorities: Any, *, width: int, height: int, transform: tuple[float, ...]
) -> Any:
    """uint8 class mask: pixel = class code of the highest-priority label covering its
    centre, :data:`MASK_NODATA` where no label does."""
    from affine import Affine

    from geolabel.rasterfeatures import rasterize

    mask = np.full((height, width), MASK_NODATA, dtype=np.uint8)
    if len(geoms):
        order = np.argsort(np.asarray(priorities), kind="stable")  # low priority painted first
        shapes = ((geoms[i], int(codes[i])) for i in order)
        rasterize(shapes, out=mask, transform=Affine(*transform[:6]), all_touched=False)
    return mask
