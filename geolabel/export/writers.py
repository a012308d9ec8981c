"""Per-tile outputs: RFC 7946 GeoJSON, pixel GeoJSON, class masks and COCO annotations.

:func:`write_tile` runs in worker processes; it gets one tile's clipped objects as plain
values and writes every requested file for that tile, returning small summaries (pixel
and object counts, COCO annotations) for the caller to assemble.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Decimal places of exported coordinates: lon/lat 1e-8 deg (~1 mm), pixels 1e-3 px.
LONLAT_DECIMALS = 8
PIXEL_DECIMALS = 3
#: Mask value of pixels that are unlabelled or nodata in the image.
MASK_NODATA = 255


@dataclass(frozen=True)
class TileJob:
    """Everything a worker needs to write one tile's files (plain, picklable values)."""

    tile_id: str
    split: str
    chip_path: str
    crs: str  # the chip's CRS: EPSG:xxxx when GDAL identifies it exactly, else WKT
    transform: tuple[float, ...]
    width: int
    height: int
    nodata_fraction: float
    out_dir: str
    formats: tuple[str, ...]
    wkb: tuple[bytes, ...]  # clipped objects in the tile CRS
    codes: tuple[int, ...]
    priorities: tuple[int, ...]
    label_ids: tuple[str, ...]
    class_names: tuple[str, ...]
    truncated: tuple[bool, ...]
    area_m2: tuple[float, ...]
    image_id: int
    link_images: bool = True
    skip_empty: bool = False


@dataclass
class TileResult:
    tile_id: str
    split: str
    files: list[str]  # relative to the dataset folder
    pixel_counts: dict[int, int]  # class code -> mask pixels (255 = unlabelled/nodata); masks only
    area_px: dict[int, float]  # class code -> area of the objects in pixels
    object_counts: dict[int, int]
    coco_image: dict[str, Any] | None
    coco_annotations: list[dict[str, Any]]
    checksums: dict[str, tuple[str, int]]


def signed_area(coords: Any) -> float:
    """Shoelace signed area of a closed ring (positive = counterclockwise, x right, y up)."""
    xy = np.asarray(coords, dtype=float)[:, :2]
    x = xy[:, 0] - xy[0, 0]
    y = xy[:, 1] - xy[0, 1]
    return float(0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def geojson_geometries(geoms: Any, decimals: int, *, rfc7946: bool = False) -> list[dict[str, Any]]:
    """GeoJSON geometry dicts of an array of (Multi)Polygons, with rounded coordinates.

    Vectorised: parts, rings and coordinates are pulled out of all geometries at once.
    With ``rfc7946`` the right-hand rule holds (RFC 7946, 3.1.6): exterior rings
    counterclockwise, holes clockwise, decided by signed area on the rounded coordinates
    (GEOS's local orientation test can be fooled by nearly flat ring tops after
    reprojection to longitude/latitude).
    """
    import shapely

    arr = np.asarray(geoms, dtype=object)
    if not len(arr):
        return []
    parts, part_of = shapely.get_parts(arr, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    exterior = np.r_[True, ring_part[1:] != ring_part[:-1]]
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    coords = np.round(coords, decimals)
    starts = np.r_[0, np.flatnonzero(np.diff(ring_of)) + 1]
    flip = np.zeros(len(rings), dtype=bool)
    if rfc7946 and len(coords):
        counts = np.diff(np.r_[starts, len(coords)])
        xs = coords[:, 0] - np.repeat(coords[starts, 0], counts)
        ys = coords[:, 1] - np.repeat(coords[starts, 1], counts)
        same = ring_of[:-1] == ring_of[1:]
        terms = (xs[:-1] * ys[1:] - xs[1:] * ys[:-1])[same]
        area = np.bincount(ring_of[:-1][same], weights=terms, minlength=len(rings))
        flip = (exterior & (area < 0)) | (~exterior & (area > 0))
    ends = np.r_[starts[1:], len(coords)]
    # C-contiguous row blocks: orjson writes them directly
    ring_lists = [coords[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
    for k in np.flatnonzero(flip):
        ring_lists[k] = np.ascontiguousarray(ring_lists[k][::-1])
    part_rings: list[list[Any]] = [[] for _ in range(len(parts))]
    for k, p in enumerate(ring_part.tolist()):
        part_rings[p].append(ring_lists[k])
    geom_parts: list[list[Any]] = [[] for _ in range(len(arr))]
    for p, g in enumerate(part_of.tolist()):
        geom_parts[g].append(part_rings[p])
    kinds = shapely.get_type_id(arr)
    return [
        {"type": "Polygon", "coordinates": gp[0]} if kind == 3 else {"type": "MultiPolygon", "coordinates": gp}
        for gp, kind in zip(geom_parts, kinds.tolist())
    ]


def geometry_dict(geom: Any, decimals: int, *, rfc7946: bool = False) -> dict[str, Any]:
    """GeoJSON geometry of one (Multi)Polygon as plain lists (see :func:`geojson_geometries`)."""
    out = geojson_geometries(np.array([geom], dtype=object), decimals, rfc7946=rfc7946)[0]

    def plain(x: Any) -> Any:
        return x.tolist() if isinstance(x, np.ndarray) else [plain(v) for v in x]

    return {"type": out["type"], "coordinates": plain(out["coordinates"])}


def to_pixels(geoms: Any, transform: tuple[float, ...]) -> Any:
    """Geometries in chip pixel coordinates (column, row; y grows downwards)."""
    import shapely
    from affine import Affine

    inv = ~Affine(*transform[:6])
    a, b, c, d, e, f = inv.a, inv.b, inv.c, inv.d, inv.e, inv.f

    def apply(xy: Any) -> Any:
        return np.column_stack([a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f])

    return shapely.transform(geoms, apply)


def _write_json(path: Path, doc: Any) -> tuple[str, int]:
    """Write ``doc`` as compact UTF-8 JSON (numpy coordinate arrays included); return its
    sha256 and size. The whole dataset folder is renamed into place at the end, so single
    files need no temporary names of their own."""
    import hashlib

    import orjson

    data = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    with open(path, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest(), len(data)


def _target(out: Path, rel: str) -> Path:
    """``out / rel`` with its folder created; refused if ``rel`` could lead outside ``out``
    (tile ids are checked where the index is read; this is the second line of defence)."""
    from geolabel.files import child_path

    path = child_path(out, rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path: Path) -> tuple[str, int]:
    import hashlib

    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def rasterize_classes(
    geoms: Any, codes: Any, priorities: Any, *, width: int, height: int, transform: tuple[float, ...]
) -> Any:
    """uint8 class mask: pixel = class code of the highest-priority label covering its
    centre, :data:`MASK_NODATA` where no label does."""
    from affine import Affine
    from rasterio.features import rasterize

    mask = np.full((height, width), MASK_NODATA, dtype=np.uint8)
    if len(geoms):
        order = np.argsort(np.asarray(priorities), kind="stable")  # low priority painted first
        shapes = ((geoms[i], int(codes[i])) for i in order)
        rasterize(shapes, out=mask, transform=Affine(*transform[:6]), all_touched=False)
    return mask


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
    import warnings

    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.features import rasterize

    with warnings.catch_warnings():  # pixel coordinates: the identity transform is meant
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        raster = rasterize([(pixel_geom, 1)], out_shape=(height, width), dtype=np.uint8)
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


def write_tile(job: TileJob) -> TileResult:
    """Write one tile's files into ``job.out_dir`` (a dataset folder being built)."""
    import shapely

    out = Path(job.out_dir)
    files: list[str] = []
    checksums: dict[str, tuple[str, int]] = {}
    geoms = shapely.from_wkb(np.array(job.wkb, dtype=object)) if job.wkb else np.zeros(0, dtype=object)
    codes = np.asarray(job.codes, dtype=np.int64)
    object_counts: dict[int, int] = {}
    for c in codes.tolist():
        object_counts[c] = object_counts.get(c, 0) + 1
    empty = len(geoms) == 0
    write_objects = not (empty and job.skip_empty)

    # image: link (or copy) the chip into the dataset
    image_rel = f"images/{job.split}/{job.tile_id}.tif"
    if job.link_images:
        target = _target(out, image_rel)
        try:
            os.link(job.chip_path, target)
        except OSError:
            import shutil

            shutil.copyfile(job.chip_path, target)
        files.append(image_rel)

    pixel_geoms = to_pixels(geoms, job.transform) if len(geoms) else geoms
    if "geojson" in job.formats and write_objects:
        from geolabel.crs import reproject_geometries

        lonlat = reproject_geometries(geoms, job.crs, "EPSG:4326") if len(geoms) else geoms
        world = geojson_geometries(lonlat, LONLAT_DECIMALS, rfc7946=True)
        pixel = geojson_geometries(pixel_geoms, PIXEL_DECIMALS)
        features = []
        px_features = []
        for k in range(len(geoms)):
            props = {
                "label_id": job.label_ids[k],
                "class_code": int(codes[k]),
                "class_name": job.class_names[k],
                "truncated": bool(job.truncated[k]),
                "area_m2": round(float(job.area_m2[k]), 4),
            }
            features.append({"type": "Feature", "id": job.label_ids[k], "properties": props, "geometry": world[k]})
            px_features.append({"type": "Feature", "id": job.label_ids[k], "properties": props, "geometry": pixel[k]})
        rel = f"labels/geojson/{job.split}/{job.tile_id}.geojson"
        collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
        if len(lonlat):
            b = shapely.total_bounds(lonlat)
            collection["bbox"] = [round(float(v), LONLAT_DECIMALS) for v in b]
        checksums[rel] = _write_json(_target(out, rel), collection)
        files.append(rel)
        rel_px = f"labels/geojson_px/{job.split}/{job.tile_id}.geojson"
        px = {
            "type": "FeatureCollection",
            "geolabel:pixel_coordinates": {"image": image_rel, "width": job.width, "height": job.height},
            "features": px_features,
        }
        checksums[rel_px] = _write_json(_target(out, rel_px), px)
        files.append(rel_px)

    area_px: dict[int, float] = {}
    if len(pixel_geoms):
        import shapely

        for c, a in zip(codes.tolist(), shapely.area(pixel_geoms).tolist()):
            area_px[c] = area_px.get(c, 0.0) + a
    pixel_counts: dict[int, int] = {}
    if "masks" in job.formats:
        import rasterio
        from affine import Affine

        from geolabel.raster import write_raster_file

        mask = rasterize_classes(
            geoms, codes, job.priorities, width=job.width, height=job.height, transform=job.transform
        )
        if job.nodata_fraction > 0:
            with rasterio.open(job.chip_path) as chip:
                mask[chip.dataset_mask() == 0] = MASK_NODATA
        counts = np.bincount(mask.ravel(), minlength=256)
        pixel_counts = {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
        rel = f"labels/masks/{job.split}/{job.tile_id}.tif"
        target = _target(out, rel)
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

        def fill(dst: Any) -> None:
            dst.write(mask, 1)
            dst.set_band_description(1, "class_code")

        write_raster_file(target, profile, fill)
        files.append(rel)

    coco_image = None
    annotations: list[dict[str, Any]] = []
    if "coco" in job.formats:
        coco_image = {
            "id": job.image_id,
            "file_name": image_rel,
            "width": job.width,
            "height": job.height,
            "tile_id": job.tile_id,
        }
        for k in range(len(geoms)):
            g = pixel_geoms[k]
            seg, is_rle = coco_segmentation(g, job.width, job.height)
            minx, miny, maxx, maxy = g.bounds
            minx, miny = max(minx, 0.0), max(miny, 0.0)
            maxx, maxy = min(maxx, float(job.width)), min(maxy, float(job.height))
            annotations.append(
                {
                    "image_id": job.image_id,
                    "category_id": int(codes[k]),
                    "segmentation": seg,
                    "area": round(float(g.area), PIXEL_DECIMALS),
                    "bbox": [round(v, PIXEL_DECIMALS) for v in (minx, miny, maxx - minx, maxy - miny)],
                    "iscrowd": 0,
                    "label_id": job.label_ids[k],
                    "truncated": bool(job.truncated[k]),
                }
            )
            if is_rle:
                annotations[-1]["segmentation_format"] = "rle"
    for rel in files:
        if rel not in checksums:
            checksums[rel] = _sha256(out / rel)
    return TileResult(
        tile_id=job.tile_id,
        split=job.split,
        files=files,
        pixel_counts=pixel_counts,
        area_px=area_px,
        object_counts=object_counts,
        coco_image=coco_image,
        coco_annotations=annotations,
        checksums=checksums,
    )
