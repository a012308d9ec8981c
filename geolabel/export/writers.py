"""Per-tile outputs: the chip linked into the dataset, then each requested format's files.

:func:`write_chunk` runs in worker processes; it gets a few chips and the labels that may
fall on them as plain values (:class:`~geolabel.export.jobs.ChunkJob`), clips the labels
to each chip and writes every requested file for each tile (:func:`write_tile`), returning
small summaries (pixel and object counts, COCO annotations) for the caller to assemble.
The formats' own code lives in their modules (:mod:`~geolabel.export.formats`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from geolabel.export import layout
from geolabel.export.coco import coco_segmentation, rle_encode
from geolabel.export.geojson import LONLAT_DECIMALS, PIXEL_DECIMALS, geojson_geometries, geometry_dict, signed_area
from geolabel.export.jobs import ChunkJob, LabelTable, TileData, TileJob, TileResult
from geolabel.export.manifest import sha256_file
from geolabel.export.masks import MASK_NODATA, rasterize_classes
from geolabel.geom import to_pixels

__all__ = [
    "LONLAT_DECIMALS",
    "MASK_NODATA",
    "PIXEL_DECIMALS",
    "ChunkJob",
    "TileJob",
    "TileResult",
    "coco_segmentation",
    "geojson_geometries",
    "geometry_dict",
    "rasterize_classes",
    "rle_encode",
    "signed_area",
    "to_pixels",
    "write_chunk",
    "write_tile",
]


def write_chunk(chunk: ChunkJob) -> list[TileResult]:
    """Clip the chunk's labels to its chips and write each tile's files (in chip order)."""
    from geolabel.export.clip import clip_to_tiles

    table = chunk.labels.table()
    clipped = clip_to_tiles(table.geoms, chunk.chips, min_overlap=chunk.min_overlap, tree=table.tree)
    return [write_tile(_tile_data(chunk, table, k, objs)) for k, objs in enumerate(clipped)]


def _tile_data(chunk: ChunkJob, table: LabelTable, k: int, objs: Any) -> TileData:
    """Chip ``k`` of ``chunk`` with its clipped objects (``TileObjects``, rows of ``table``)."""
    import shapely

    from geolabel.crs import area_m2

    chip = chunk.chips[k]
    rows = objs.rows
    geoms = objs.geoms
    if len(rows) and shapely.has_z(geoms).any():  # the objects are written in 2D
        geoms = shapely.force_2d(geoms)
    codes = table.codes[rows].tolist()
    job = TileJob(
        tile_id=chip.tile_id,
        split=chunk.splits[k],
        chip_path=chip.path,
        crs=chip.crs,
        transform=chip.transform,
        width=chip.width,
        height=chip.height,
        nodata_fraction=chip.nodata_fraction,
        out_dir=chunk.out_dir,
        formats=chunk.formats,
        codes=tuple(codes),
        priorities=tuple(table.priority_of[c] for c in codes),
        label_ids=tuple(table.label_ids[r] for r in rows.tolist()),
        class_names=tuple(table.name_of[c] for c in codes),
        truncated=tuple(objs.truncated.tolist()),
        area_m2=tuple(np.asarray(area_m2(geoms, chip.crs), dtype=float).tolist() if len(rows) else ()),
        image_id=chunk.image_ids[k],
        skip_empty=chunk.skip_empty,
        image_checksum=chunk.image_checksums[k] if chunk.image_checksums else None,
    )
    return TileData.of(job, geoms)


def write_tile(tile: TileData) -> TileResult:
    """Write one tile's files into ``tile.out`` (a dataset folder being built)."""
    from geolabel.export.formats import WRITERS

    job = tile.job
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
    if tile.job.image_checksum is not None:
        result.checksums[tile.image] = tile.job.image_checksum


def _count_areas(tile: TileData, result: TileResult) -> None:
    """The objects' area in pixels, per class."""
    import shapely

    if len(tile.pixel_geoms):
        for c, a in zip(tile.codes.tolist(), shapely.area(tile.pixel_geoms).tolist()):
            result.area_px[c] = result.area_px.get(c, 0.0) + a
