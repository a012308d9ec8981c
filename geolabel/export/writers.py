"""Per-tile outputs: the chip linked into the dataset, then each requested format's files.

:func:`write_tile` runs in worker processes; it gets one tile's clipped objects as plain
values (:class:`~geolabel.export.jobs.TileJob`) and writes every requested file for that
tile, returning small summaries (pixel and object counts, COCO annotations) for the caller
to assemble. The formats' own code lives in their modules (:mod:`~geolabel.export.formats`).
"""

from __future__ import annotations

import os

from geolabel.export import layout
from geolabel.export.coco import coco_segmentation, rle_encode
from geolabel.export.geojson import LONLAT_DECIMALS, PIXEL_DECIMALS, geojson_geometries, geometry_dict, signed_area
from geolabel.export.jobs import TileData, TileJob, TileResult
from geolabel.export.manifest import sha256_file
from geolabel.export.masks import MASK_NODATA, rasterize_classes
from geolabel.geom import to_pixels

__all__ = [
    "LONLAT_DECIMALS",
    "MASK_NODATA",
    "PIXEL_DECIMALS",
    "TileJob",
    "TileResult",
    "coco_segmentation",
    "geojson_geometries",
    "geometry_dict",
    "rasterize_classes",
    "rle_encode",
    "signed_area",
    "to_pixels",
    "write_tile",
]


def write_tile(job: TileJob) -> TileResult:
    """Write one tile's files into ``job.out_dir`` (a dataset folder being built)."""
    from geolabel.export.formats import WRITERS

    tile = TileData.decode(job)
    result = TileResult(tile_id=job.tile_id, split=job.split)
    for c in tile.codes.tolist():
        result.object_counts[c] = result.object_counts.get(c, 0) + 1
    if job.link_images:
        _link_image(tile, result)
    _count_areas(tile, result)
    for fmt in WRITERS.values():
        if fmt.write_tile is not None and fmt.name in job.formats:
            fmt.write_tile(tile, result)
    for rel in result.files:
        if rel not in result.checksums:
            result.checksums[rel] = sha256_file(tile.out / rel)
    return result


def _link_image(tile: TileData, result: TileResult) -> None:
    """Link (or copy) the chip into the dataset."""
    target = layout.target(tile.out, tile.image)
    try:
        os.link(tile.job.chip_path, target)
    except OSError:
        import shutil

        shutil.copyfile(tile.job.chip_path, target)
    result.files.append(tile.image)


def _count_areas(tile: TileData, result: TileResult) -> None:
    """The objects' area in pixels, per class."""
    import shapely

    if len(tile.pixel_geoms):
        for c, a in zip(tile.codes.tolist(), shapely.area(tile.pixel_geoms).tolist()):
            result.area_px[c] = result.area_px.get(c, 0.0) + a
