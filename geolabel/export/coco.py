"""COCO instance segmentation: annotations per tile, one file per split.

Format ``coco``: ``coco/<split>.json``; images point at ``images/<split>/<tile_id>.tif``,
segmentations are polygons in chip pixels, or RLE for objects with holes.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import numpy as np

from geolabel.export import layout
from geolabel.export.geojson import PIXEL_DECIMALS
from geolabel.export.jobs import DatasetParts, TileData, TileResult


def add_tile_annotations(tile: TileData, result: TileResult) -> None:
    """The tile's COCO image and annotations (written per split by :func:`write_coco`)."""
    job = tile.job
    result.coco_image = {
        "id": job.image_id,
        "file_name": tile.image,
        "width": job.width,
        "height": job.height,
        "tile_id": job.tile_id,
    }
    for k in range(len(tile.geoms)):
        g = tile.pixel_geoms[k]
        seg, is_rle = coco_segmentation(g, job.width, job.height)
        minx, miny, maxx, maxy = g.bounds
        minx, miny = max(minx, 0.0), max(miny, 0.0)
        maxx, maxy = min(maxx, float(job.width)), min(maxy, float(job.height))
        annotation = {
            "image_id": job.image_id,
            "category_id": int(tile.codes[k]),
            "segmentation": seg,
            "area": round(float(g.area), PIXEL_DECIMALS),
            "bbox": [round(v, PIXEL_DECIMALS) for v in (minx, miny, maxx - minx, maxy - miny)],
            "iscrowd": 0,
            "label_id": job.label_ids[k],
            "truncated": bool(job.truncated[k]),
        }
        if is_rle:
            annotation["segmentation_format"] = "rle"
        result.coco_annotations.append(annotation)


def write_coco(parts: DatasetParts) -> list[str]:
    """Write one COCO file per split from the tiles' annotations; returns the written files."""
    categories = [
        {"id": c.code, "name": c.name, "supercategory": "land_cover", "color": c.color}
        for c in parts.schema
        if c.code != 0
    ]
    by_split: dict[str, list[TileResult]] = {}
    for r in parts.tiles:
        by_split.setdefault(r.split, []).append(r)
    written = []
    for split_name, items in sorted(by_split.items()):
        images, annotations = [], []
        next_id = 1
        for r in items:
            images.append(r.coco_image)
            for ann in r.coco_annotations:
                annotations.append({"id": next_id, **ann})
                next_id += 1
        doc = {
            "info": {
                "description": f"geolabel export, split {split_name}",
                "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        rel = layout.coco(split_name)
        layout.target(parts.folder, rel).write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        written.append(rel)
    return written


def coco_segmentation(pixel_geom: Any, width: int, height: int) -> tuple[Any, bool]:
    """COCO segmentation of a (Multi)Polygon in pixels: polygons when there are no holes,
    otherwise RLE (uncompressed, column-major) rasterized like the class masks."""
    polys = [pixel_geom] if pixel_geom.geom_type == "Polygon" else list(pixel_geom.geoms)
    if not any(len(p.interiors) for p in polys):
        segs = []
        for p in polys:
            coords = np.asarray(p.exterior.coords)[:-1, :2]
            if len(coords) >= 3:
                segs.append(np.round(coords.ravel(), PIXEL_DECIMALS).tolist())
        return segs, False
    from geolabel.rasterfeatures import rasterize_pixels

    raster = rasterize_pixels([(pixel_geom, 1)], out_shape=(height, width), dtype=np.uint8)
    return rle_encode(raster), True


def rle_encode(mask: Any) -> dict[str, Any]:
    """Uncompressed COCO RLE of a binary mask (counts of 0-runs and 1-runs, column-major)."""
    flat = np.asarray(mask, dtype=np.uint8).ravel(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.r_[0, changes, len(flat)]
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0, *counts]
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}
