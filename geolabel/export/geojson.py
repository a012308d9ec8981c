"""GeoJSON per tile: RFC 7946 (WGS 84 longitude/latitude) and the same objects in chip pixels.

Format ``geojson``: ``labels/geojson/<split>/<tile_id>.geojson`` and
``labels/geojson_px/<split>/<tile_id>.geojson``, one Feature per object with its label
id, class, truncation and area.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geolabel.export import layout
from geolabel.export.jobs import TileData, TileResult
from geolabel.export.manifest import write_json

#: Decimal places of exported coordinates: lon/lat 1e-8 deg (~1 mm), pixels 1e-3 px.
LONLAT_DECIMALS = 8
PIXEL_DECIMALS = 3


def write_tile_geojson(tile: TileData, result: TileResult) -> None:
    """Write the tile's two GeoJSON files (none for a tile without objects with ``skip_empty``)."""
    job = tile.job
    if job.skip_empty and not len(tile.geoms):
        return
    world, pixel = _features(tile)
    rel = layout.geojson(job.split, job.tile_id)
    result.checksums[rel] = write_json(layout.target(tile.out, rel), world)
    result.files.append(rel)
    rel_px = layout.geojson_px(job.split, job.tile_id)
    result.checksums[rel_px] = write_json(layout.target(tile.out, rel_px), pixel)
    result.files.append(rel_px)


def _features(tile: TileData) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tile's FeatureCollections: in longitude/latitude (with a bbox), and in pixels,
    both from one pass over the objects' rings."""
    from geolabel.crs import transform_coords
    from geolabel.geom import pixel_coords

    job, geoms = tile.job, tile.geoms
    rings = Rings.of(geoms)
    lonlat = transform_coords(rings.coords, job.crs, "EPSG:4326") if len(rings.coords) else rings.coords
    world = rings.geometries(np.round(lonlat, LONLAT_DECIMALS), rfc7946=True)
    pixel = rings.geometries(np.round(pixel_coords(rings.coords, job.transform), PIXEL_DECIMALS))
    ids = job.label_ids
    props = [
        {"label_id": i, "class_code": c, "class_name": n, "truncated": t, "area_m2": round(a, 4)}
        for i, c, n, t, a in zip(ids, tile.codes.tolist(), job.class_names, job.truncated, job.area_m2)
    ]
    features = [{"type": "Feature", "id": i, "properties": p, "geometry": g} for i, p, g in zip(ids, props, world)]
    px_features = [{"type": "Feature", "id": i, "properties": p, "geometry": g} for i, p, g in zip(ids, props, pixel)]
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if len(geoms):
        b = (*lonlat.min(axis=0).tolist(), *lonlat.max(axis=0).tolist())
        collection["bbox"] = [round(float(v), LONLAT_DECIMALS) for v in b]
    px = {
        "type": "FeatureCollection",
        "geolabel:pixel_coordinates": {"image": tile.image, "width": job.width, "height": job.height},
        "features": px_features,
    }
    return collection, px


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
    rings = Rings.of(geoms)
    return rings.geometries(np.round(rings.coords, decimals), rfc7946=rfc7946)


@dataclass(frozen=True)
class Rings:
    """The parts, rings and coordinates of an array of (Multi)Polygons, pulled out once:
    the same structure serves any coordinates computed point by point from ``coords``
    (reprojected, in pixels), so each variant costs only its coordinate arithmetic."""

    coords: Any  # (n, 2) every vertex, geometry by geometry, part by part, ring by ring
    ring_of: Any  # ring of each vertex
    ring_part: Any  # part of each ring
    part_of: Any  # geometry of each part
    kinds: list[int]  # shapely type id of each geometry (3 Polygon, 6 MultiPolygon)

    @classmethod
    def of(cls, geoms: Any) -> Rings:
        import shapely

        arr = np.asarray(geoms, dtype=object)
        parts, part_of = shapely.get_parts(arr, return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        coords, ring_of = shapely.get_coordinates(rings, return_index=True)
        return cls(coords, ring_of, ring_part, part_of, shapely.get_type_id(arr).tolist())

    def geometries(self, coords: Any, *, rfc7946: bool = False) -> list[dict[str, Any]]:
        """GeoJSON geometry dicts with ``coords`` (rounded, one row per vertex of ``self.coords``)."""
        if not self.kinds:
            return []
        ring_of, ring_part = self.ring_of, self.ring_part
        n_rings = len(ring_part)
        exterior = np.r_[True, ring_part[1:] != ring_part[:-1]]
        starts = np.r_[0, np.flatnonzero(np.diff(ring_of)) + 1]
        flip = np.zeros(n_rings, dtype=bool)
        if rfc7946 and len(coords):
            counts = np.diff(np.r_[starts, len(coords)])
            xs = coords[:, 0] - np.repeat(coords[starts, 0], counts)
            ys = coords[:, 1] - np.repeat(coords[starts, 1], counts)
            same = ring_of[:-1] == ring_of[1:]
            terms = (xs[:-1] * ys[1:] - xs[1:] * ys[:-1])[same]
            area = np.bincount(ring_of[:-1][same], weights=terms, minlength=n_rings)
            flip = (exterior & (area < 0)) | (~exterior & (area > 0))
        if flip.any():  # reverse the flipped rings' vertices, all in one gather
            counts = np.diff(np.r_[starts, len(coords)])
            first = np.repeat(starts, counts)
            order = np.arange(len(coords))
            flipped = np.repeat(flip, counts)
            order[flipped] = (2 * first + np.repeat(counts, counts) - 1 - order)[flipped]
            coords = coords[order]
        ends = np.r_[starts[1:], len(coords)]
        # C-contiguous row blocks: orjson writes them directly
        ring_lists = [coords[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
        part_rings: list[list[Any]] = [[] for _ in range(len(self.part_of))]
        for k, p in enumerate(ring_part.tolist()):
            part_rings[p].append(ring_lists[k])
        geom_parts: list[list[Any]] = [[] for _ in range(len(self.kinds))]
        for p, g in enumerate(self.part_of.tolist()):
            geom_parts[g].append(part_rings[p])
        return [
            {"type": "Polygon", "coordinates": gp[0]} if kind == 3 else {"type": "MultiPolygon", "coordinates": gp}
            for gp, kind in zip(geom_parts, self.kinds)
        ]


def geometry_dict(geom: Any, decimals: int, *, rfc7946: bool = False) -> dict[str, Any]:
    """GeoJSON geometry of one (Multi)Polygon as plain lists (see :func:`geojson_geometries`)."""
    out = geojson_geometries(np.array([geom], dtype=object), decimals, rfc7946=rfc7946)[0]

    def plain(x: Any) -> Any:
        return x.tolist() if isinstance(x, np.ndarray) else [plain(v) for v in x]

    return {"type": out["type"], "coordinates": plain(out["coordinates"])}
