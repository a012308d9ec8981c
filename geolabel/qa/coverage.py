"""Coverage checks: labels outside the area (AOI or imagery), and gaps inside it (the
gaps themselves are found per partition, :mod:`geolabel.qa.partition`).

Labels must lie inside the *region* (the AOI, else the chips' imagery); the *gap region*
must be covered wall to wall (the AOI, else the done tiles when given, else all chips).
Without either, gaps are the areas enclosed by labels but not labelled themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geolabel.crs import OVERLAY_GRID_M
from geolabel.labels.delivery import read_region
from geolabel.qa.findings import ERROR, WARNING, Features, Finding
from geolabel.qa.validity import Measured


@dataclass
class Coverage:
    """Outside and gap findings, and the areas completeness is computed from."""

    findings: list[Finding]
    region_area_m2: float | None = None
    gap_area_m2: float | None = None


def coverage_regions(
    labels: Measured, *, aoi: Any, tiles: str | Path | None, done_tiles: list[str] | None
) -> tuple[Any, Any]:
    """(where labels may lie, what must be labelled), or (None, None) when neither an AOI
    nor a tile index says so."""
    if aoi is not None and labels.crs is not None:
        region = read_region(aoi, labels.crs)
        return region, region
    if tiles is not None and labels.crs is not None:
        done = set(done_tiles) if done_tiles is not None else None
        return _tiles_regions(tiles, labels.crs, done)
    return None, None


def gap_scope(regions: tuple[Any, Any]) -> Any:
    """What gaps are measured in: the gap region when there is a region, else None (the
    areas labels enclose)."""
    region, gap_region = regions
    return None if region is None or region.is_empty else gap_region


def check_coverage(
    labels: Measured,
    features: Features,
    *,
    regions: tuple[Any, Any],
    gaps: Any,
    aoi: bool,
    done_only: bool,
    min_area: float,
    tolerance: float,
) -> Coverage:
    """Outside findings, then the ``gaps`` (polygons; errors from ``min_area`` m², none up
    to ``tolerance`` m²)."""
    outside = check_outside(labels, features, regions=regions, aoi=aoi, tolerance=tolerance)
    gaps_found = check_gaps(gaps, regions=regions, aoi=aoi, done_only=done_only, min_area=min_area, tolerance=tolerance)
    return Coverage(outside + gaps_found.findings, gaps_found.region_area_m2, gaps_found.gap_area_m2)


def check_outside(
    labels: Measured, features: Features, *, regions: tuple[Any, Any], aoi: bool, tolerance: float
) -> list[Finding]:
    """Labels outside the region (none without a region): one label at a time."""
    region, _ = regions
    if region is None or region.is_empty:
        return []
    return _outside(labels, features, region, what="AOI" if aoi else "imagery", tolerance=tolerance)


def check_gaps(
    gaps: Any, *, regions: tuple[Any, Any], aoi: bool, done_only: bool, min_area: float, tolerance: float
) -> Coverage:
    """The gap findings and the areas completeness is computed from."""
    region, gap_region = regions
    region_area = None
    if region is not None and not region.is_empty:
        region_area = float(gap_region.area)
        scope = "the AOI" if aoi else "the done tiles" if done_only else "the tiles"
    else:
        scope = "enclosed by labels"
    where = f"{'inside ' if region is not None else ''}{scope}"
    gap_findings, gap_area = _gaps(gaps, where, min_area=min_area, tolerance=tolerance)
    return Coverage(gap_findings, region_area, gap_area if region is not None else None)


def _outside(labels: Measured, features: Features, region: Any, *, what: str, tolerance: float) -> list[Finding]:
    """Polygons entirely outside ``region`` (errors), then those extending beyond it by
    more than ``tolerance`` m² (warnings)."""
    import shapely

    ids, fixed, areas = features.ids, labels.geoms, labels.areas
    prepared = region
    shapely.prepare(prepared)
    inside = shapely.intersects(prepared, fixed)
    within = shapely.within(fixed, prepared)
    findings = []
    for a in np.flatnonzero(~inside).tolist():
        i = labels.index[a]
        message = f"feature {ids[i]} lies entirely outside the {what}"
        findings.append(features.finding("outside", ERROR, i, message, geometry=fixed[a], area_m2=float(areas[a])))
    partly = np.flatnonzero(inside & ~within)
    if not len(partly):
        return findings
    outside_parts = shapely.difference(fixed[partly], prepared, grid_size=OVERLAY_GRID_M)
    for a, g, oa in zip(partly.tolist(), outside_parts, shapely.area(outside_parts).tolist()):
        if oa <= tolerance:
            continue
        i = labels.index[a]
        message = f"feature {ids[i]} extends {oa:.2f} m² beyond the {what}"
        findings.append(features.finding("outside", WARNING, i, message, geometry=g, area_m2=float(oa)))
    return findings


def _gaps(gaps: Any, where: str, *, min_area: float, tolerance: float) -> tuple[list[Finding], float]:
    """(one finding per polygon of ``gaps`` larger than ``tolerance`` m², their total area)."""
    import shapely

    gap_parts = gaps
    gap_areas = shapely.area(gap_parts) if len(gap_parts) else np.zeros(0)
    findings = []
    for g, ga in zip(gap_parts, gap_areas.tolist()):
        if ga <= tolerance:
            continue
        severity = ERROR if ga >= min_area else WARNING
        findings.append(
            Finding("gap", severity, [], f"unlabelled area of {ga:.2f} m² {where}", geometry=g, area_m2=float(ga))
        )
    return findings, float(gap_areas.sum())


def _tiles_regions(index: str | Path, crs: Any, done: set[str] | None) -> tuple[Any, Any]:
    """(where labels may lie, what must be labelled), in ``crs``, from a tile index.

    The imagery is the union of the chips' image data: nodata collars and padding are not
    imagery, nobody labels them. Its outline is a pixel staircase (and, for reprojected
    chips, an approximation), so labels drawn along the true edge get one pixel of
    tolerance both ways: they may reach one pixel beyond it and need not come closer than
    one pixel to it. What must be labelled is that, within all chips or only the ``done``
    ones; tile borders inside the imagery are not edges.
    """
    import shapely

    from geolabel.crs import reproject_geometries, same_crs
    from geolabel.files import folder_lock
    from geolabel.tileindex import CHIPS_BUSY, load_chips

    data, cover, pixel = [], [], 0.0
    with folder_lock(Path(index).parent, shared=True, busy=CHIPS_BUSY):
        chips = load_chips(index)
        nodata_areas = [c.nodata_area() for c in chips]
    for c, nodata in zip(chips, nodata_areas):
        fp = c.footprint
        px = max(abs(c.transform[0]), abs(c.transform[1]), abs(c.transform[3]), abs(c.transform[4]))
        part = fp.difference(nodata) if not nodata.is_empty else fp
        if not same_crs(c.crs, crs):
            part, fp = reproject_geometries(np.array([part, fp]), c.crs, crs, densify=c.edge_step)
            px = max(px, abs(float(np.sqrt(fp.area / (c.width * c.height)))))  # pixel size in ``crs`` units
        pixel = max(pixel, px)
        data.append(part)
        if done is None or c.tile_id in done:
            cover.append(fp)
    imagery = shapely.union_all(data)
    may = imagery.buffer(pixel, join_style="mitre")
    must = imagery.buffer(-pixel, join_style="mitre")
    if done is not None:
        must = must.intersection(shapely.union_all(cover)) if cover else shapely.Polygon()
    return may, must
