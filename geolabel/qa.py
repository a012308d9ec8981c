"""Quality control of label deliveries: every check a service center runs, the same way.

:func:`load_delivery` reads a label store or any delivered vector file as it is (invalid
geometries included); :func:`check_labels` runs the checks and returns :class:`Finding`
records, never raising for a finding. Measurements are made in metres: in the data's CRS
when it is projected in metres, else in the UTM zone of the data.

Finding types (severity):

=====================  ========  =====================================================
``empty``              error     feature without geometry
``non_polygon``        error     point or line where a polygon is expected
``invalid``            error     invalid polygon, with GEOS's reason and location
``unknown_class``      error     class value not in the schema
``missing_attribute``  error     a required attribute (labeler, team, ...) is empty
``missing_crs``        error     the file declares no CRS
``unexpected_crs``     error     the CRS differs from the expected one
``duplicate``          error     two features with the same geometry
``overlap``            error     overlap within a class or across classes (area in m²)
``gap``                error     unlabelled area inside the AOI / done tiles (warning if
                                 smaller than the minimum mapping unit)
``outside``            error     feature entirely outside the AOI / imagery (warning if
                                 partly outside)
``no_features``        warning   the delivery holds no features at all
``below_mmu``          warning   polygon smaller than the minimum mapping unit
``sliver``             warning   thin polygon: mean width below ``min_width``
``small_hole``         warning   hole smaller than the minimum mapping unit
``spike``              warning   vertex with an angle below ``spike_angle`` degrees
=====================  ========  =====================================================
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from geolabel.crs import OVERLAY_GRID_M
from geolabel.errors import InputError
from geolabel.labels.delivery import Delivery, load_delivery, read_region

__all__ = [
    "ERROR",
    "FINDING_TYPES",
    "WARNING",
    "Delivery",
    "Finding",
    "QAResult",
    "check_labels",
    "load_delivery",
]

ERROR = "error"
WARNING = "warning"
FINDING_TYPES = (
    "empty",
    "non_polygon",
    "invalid",
    "unknown_class",
    "missing_attribute",
    "missing_crs",
    "unexpected_crs",
    "duplicate",
    "overlap",
    "gap",
    "outside",
    "no_features",
    "below_mmu",
    "sliver",
    "small_hole",
    "spike",
)
_POINT_IN_REASON = re.compile(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)")


@dataclass
class Finding:
    """One QA finding: what, how bad, which features, where (in the metric CRS), in words."""

    type: str
    severity: str
    feature_ids: list[str]
    message: str
    geometry: Any = None  # shapely geometry in QAResult.crs, or None for file-level findings
    area_m2: float | None = None
    class_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        loc = None
        if self.geometry is not None and not self.geometry.is_empty:
            p = self.geometry.representative_point()
            loc = [round(p.x, 3), round(p.y, 3)]
        return {
            "type": self.type,
            "severity": self.severity,
            "feature_ids": self.feature_ids,
            "class": self.class_name,
            "area_m2": None if self.area_m2 is None else round(self.area_m2, 4),
            "location": loc,
            "message": self.message,
        }


@dataclass
class QAResult:
    """Findings plus the summaries the report shows."""

    source: str
    crs: Any  # the CRS findings are in (metres)
    n_features: int
    findings: list[Finding]
    by_class: dict[str, dict[str, float]]
    by_team: dict[str, dict[str, float]]
    by_labeler: dict[str, dict[str, float]]
    region_area_m2: float | None = None
    gap_area_m2: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    labels: Any = None  # valid label geometries in ``crs`` (for thumbnails)
    label_codes: Any = None

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == WARNING)

    @property
    def completeness(self) -> float | None:
        if not self.region_area_m2:
            return None
        return 1.0 - (self.gap_area_m2 or 0.0) / self.region_area_m2

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for f in self.findings:
            out.setdefault(f.type, {ERROR: 0, WARNING: 0})[f.severity] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        from geolabel.crs import crs_label

        return {
            "source": self.source,
            "crs": crs_label(self.crs) if self.crs is not None else None,
            "features": self.n_features,
            "errors": self.errors,
            "warnings": self.warnings,
            "counts": self.counts(),
            "completeness": self.completeness,
            "region_area_m2": self.region_area_m2,
            "gap_area_m2": self.gap_area_m2,
            "settings": self.settings,
            "by_class": self.by_class,
            "by_team": self.by_team,
            "by_labeler": self.by_labeler,
            "findings": [f.to_dict() for f in self.findings],
        }


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
    from geolabel.export.clip import load_chips
    from geolabel.files import folder_lock
    from geolabel.tileindex import CHIPS_BUSY

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


def _spikes(geoms: Any, max_angle: float) -> tuple[Any, Any]:
    """(polygon index, vertex point) of every vertex whose angle is below ``max_angle`` degrees."""
    import shapely

    from geolabel.labels.edit import groups

    rings, ring_of = shapely.get_rings(geoms, return_index=True)
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    if not len(coords):
        return np.zeros(0, int), np.zeros((0, 2))
    # drop the closing vertex of each ring and repeated vertices
    last = np.r_[idx[1:] != idx[:-1], True]
    keep = ~last
    coords, idx = coords[keep], idx[keep]
    dup = np.r_[False, (np.diff(coords, axis=0) == 0).all(axis=1) & (idx[1:] == idx[:-1])]
    coords, idx = coords[~dup], idx[~dup]
    starts, n, pos = groups(idx)
    size = np.repeat(n, n)
    base = np.repeat(starts, n)
    prev = coords[base + (pos - 1) % size]
    nxt = coords[base + (pos + 1) % size]
    a = prev - coords
    b = nxt - coords
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    dot = (a * b).sum(axis=1)
    angle = np.degrees(np.abs(np.arctan2(cross, dot)))
    spike = (angle < max_angle) & (size >= 4)
    return ring_of[idx[spike]], coords[spike]


def _invalid_polygons(work: Any, polygonal: Any) -> list[tuple[int, str, Any]]:
    """(index, GEOS's reason, where) of every polygon of ``work`` that is invalid or has
    coordinates no CRS can hold (:data:`~geolabel.labels.edit.MAX_COORDINATE`; those get
    no location: no map shows it)."""
    import shapely

    from geolabel.labels.edit import FAR, has_far_coords

    far = np.zeros(len(work), dtype=bool)
    far[polygonal] = has_far_coords(work[polygonal])
    valid = np.zeros(len(work), dtype=bool)
    valid[polygonal] = shapely.is_valid(work[polygonal])
    out: list[tuple[int, str, Any]] = [(int(i), FAR, None) for i in np.flatnonzero(far)]
    invalid_idx = np.flatnonzero(polygonal & ~valid & ~far)
    reasons = shapely.is_valid_reason(work[invalid_idx]) if len(invalid_idx) else []
    for i, reason in zip(invalid_idx.tolist(), list(reasons)):
        m = _POINT_IN_REASON.search(str(reason))
        where = shapely.Point(float(m.group(1)), float(m.group(2))) if m else shapely.point_on_surface(work[i])
        out.append((i, str(reason), where))
    return sorted(out, key=lambda t: t[0])


def _check_limits(*, min_area: float, min_width: float, spike_angle: float) -> None:
    """Refuse limits no delivery could be measured against."""
    for name, value, unit in (("min_area", min_area, "m²"), ("min_width", min_width, "m")):
        if not 0 <= value < float("inf"):
            raise InputError(f"`{name}` must be 0 {unit} or more; got {value}", params=(name,))
    if not 0 <= spike_angle < 180:
        raise InputError(f"`spike_angle` must be from 0 to 180 degrees; got {spike_angle}", params=("spike_angle",))


def _empty_delivery(delivery: Delivery) -> list[Finding]:
    """A delivery without features passes, with a warning saying so."""
    if len(delivery.geoms):
        return []
    return [Finding("no_features", WARNING, [], f"{delivery.source} holds no features (an empty delivery)")]


def check_labels(
    delivery: Delivery,
    *,
    aoi: Any = None,
    tiles: str | Path | None = None,
    done_only: bool = False,
    min_area: float = 1.0,
    min_width: float = 0.5,
    spike_angle: float = 5.0,
    overlap_tolerance: float = 0.01,
    require: str | Sequence[str] = (),
    expected_crs: Any = None,
) -> QAResult:
    """Run every check on a delivery. Areas and widths are in metres (m², m).

    ``tiles``: a tile index; labels must lie on the chips' imagery and cover it, or with
    ``done_only`` only the tiles the store marks done. ``require``: attributes that must be
    filled ("labeler,team" or a list).
    """
    import shapely

    from geolabel.crs import crs_label, metric_crs_for, parse_crs, reproject_geometries, same_crs
    from geolabel.labels.edit import polygonal_parts, repair, threaded
    from geolabel.labels.importer import TYPE_NAMES, source_label

    if isinstance(require, str):
        require = [r.strip() for r in require.split(",") if r.strip()]
    _check_limits(min_area=min_area, min_width=min_width, spike_angle=spike_angle)
    if expected_crs is not None:
        expected_crs = parse_crs(expected_crs, param="expected_crs")
    done_tiles = None
    if done_only:
        if tiles is None:
            raise InputError(
                "checking only the done tiles (`done_only`) needs a tile index (`tiles`)", params=("done_only", "tiles")
            )
        if delivery.done_tiles is None:
            raise InputError(f"{delivery.source}: is not a label store; only a store records which tiles are done")
        done_tiles = delivery.done_tiles
    findings: list[Finding] = _empty_delivery(delivery)
    geoms = np.asarray(delivery.geoms, dtype=object)
    n = len(geoms)
    ids = delivery.ids
    schema = delivery.schema
    names = [schema.get(int(c)).name if c >= 0 else None for c in delivery.codes]

    def flag(kind: str, severity: str, i: int, message: str, **where: Any) -> None:
        """A finding about feature ``i`` of the delivery (``where``: geometry, area_m2)."""
        findings.append(Finding(kind, severity, [ids[i]], message, class_name=names[i], **where))

    settings = {
        "min_area_m2": min_area,
        "min_width_m": min_width,
        "spike_angle_deg": spike_angle,
        "overlap_tolerance_m2": overlap_tolerance,
        "require": list(require),
        "aoi": source_label(aoi) if aoi else None,
        "tiles": str(tiles) if tiles else None,
    }

    # CRS
    data_crs = delivery.crs
    if data_crs is None:
        if expected_crs is None:
            findings.append(
                Finding(
                    "missing_crs", ERROR, [], f"{delivery.source} {delivery.crs_problem}; coordinates taken as they are"
                )
            )
        else:
            findings.append(
                Finding(
                    "missing_crs",
                    ERROR,
                    [],
                    f"{delivery.source} {delivery.crs_problem}; assumed the expected {crs_label(expected_crs)}",
                )
            )
            data_crs = parse_crs(expected_crs)
    elif expected_crs is not None and not same_crs(data_crs, expected_crs):
        findings.append(
            Finding(
                "unexpected_crs",
                ERROR,
                [],
                f"CRS is {crs_label(data_crs)} but the delivery rules expect {crs_label(expected_crs)}",
            )
        )

    # attributes
    for i in np.flatnonzero(delivery.codes < 0):
        value = delivery.class_values[i]
        flag("unknown_class", ERROR, i, f"feature {ids[i]}: class {value!r} is not in the schema")
    for name in require:
        values = {"labeler": delivery.labelers, "team": delivery.teams}.get(name) or delivery.extra.get(name)
        if values is None:
            findings.append(Finding("missing_attribute", ERROR, [], f"the delivery has no {name!r} attribute"))
            continue
        for i, v in enumerate(values):
            if v is None:
                flag("missing_attribute", ERROR, i, f"feature {ids[i]}: {name} is empty")

    # geometry types and validity
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        flag("empty", ERROR, i, f"feature {ids[i]} has no geometry")
    types = shapely.get_type_id(geoms)
    polygonal = np.isin(types, (3, 6)) & ~missing
    for i in np.flatnonzero(~polygonal & ~missing):
        flag(
            "non_polygon",
            ERROR,
            i,
            f"feature {ids[i]} is a {TYPE_NAMES.get(int(types[i]), 'geometry')}, not a polygon",
            geometry=shapely.force_2d(geoms[i]),
        )
    work = shapely.force_2d(geoms.copy())
    for i, reason, where in _invalid_polygons(work, polygonal):
        flag("invalid", ERROR, i, f"feature {ids[i]}: invalid polygon: {reason}", geometry=where)
    # repaired copies take part in the remaining checks
    use = np.flatnonzero(polygonal)
    fixed, _, _ = repair(work[use])
    usable = ~shapely.is_missing(fixed)
    use, fixed = use[usable], fixed[usable]

    # everything below is measured in metres
    if data_crs is not None and len(fixed):
        metric = metric_crs_for(data_crs, tuple(shapely.total_bounds(fixed)))
        if not same_crs(metric, data_crs):
            fixed = reproject_geometries(fixed, data_crs, metric)
            invalid_points = [f for f in findings if f.type in ("invalid", "non_polygon") and f.geometry is not None]
            for f in invalid_points:
                f.geometry = reproject_geometries(np.array([f.geometry], dtype=object), data_crs, metric)[0]
    else:
        metric = data_crs
    areas = shapely.area(fixed)

    # duplicates and overlaps (one spatial index, pairs once)
    tree = shapely.STRtree(fixed)
    left, right = tree.query(fixed, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left):
        same = threaded(shapely.equals, fixed[left], fixed[right])
        for a, b in zip(left[same].tolist(), right[same].tolist()):
            i, j = use[a], use[b]
            findings.append(
                Finding(
                    "duplicate",
                    ERROR,
                    [ids[i], ids[j]],
                    f"features {ids[i]} and {ids[j]} have the same geometry ({areas[a]:.2f} m²)",
                    geometry=fixed[a],
                    area_m2=float(areas[a]),
                    class_name=names[i],
                )
            )
        left, right = left[~same], right[~same]
        inner = threaded(lambda x, y: shapely.relate_pattern(x, y, "T********"), fixed[left], fixed[right])
        left, right = left[inner], right[inner]
        inter = threaded(partial(shapely.intersection, grid_size=OVERLAY_GRID_M), fixed[left], fixed[right])
        inter_area = shapely.area(inter)
        big = inter_area > overlap_tolerance
        for a, b, g, area in zip(left[big].tolist(), right[big].tolist(), inter[big], inter_area[big].tolist()):
            i, j = use[a], use[b]
            ci, cj = names[i], names[j]
            within = ci == cj
            what = f"within class {ci!r}" if within else f"across classes {ci!r} and {cj!r}"
            findings.append(
                Finding(
                    "overlap",
                    ERROR,
                    [ids[i], ids[j]],
                    f"overlap {what} of {area:.2f} m² between {ids[i]} and {ids[j]}",
                    geometry=g,
                    area_m2=float(area),
                    class_name=ci if within else f"{ci}/{cj}",
                )
            )

    # size and shape
    perimeter = shapely.length(fixed)
    for a in np.flatnonzero(areas < min_area).tolist():
        i = use[a]
        flag(
            "below_mmu",
            WARNING,
            i,
            f"feature {ids[i]} covers {areas[a]:.2f} m², below the minimum mapping unit of {min_area:g} m²",
            geometry=fixed[a],
            area_m2=float(areas[a]),
        )
    width = np.where(perimeter > 0, 2 * areas / np.maximum(perimeter, 1e-12), 0.0)
    for a in np.flatnonzero((width < min_width) & (areas >= min_area)).tolist():
        i = use[a]
        flag(
            "sliver",
            WARNING,
            i,
            f"feature {ids[i]} is a sliver: mean width {width[a]:.2f} m over {areas[a]:.1f} m²",
            geometry=fixed[a],
            area_m2=float(areas[a]),
        )
    parts, part_of = polygonal_parts(fixed)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    is_hole = np.r_[False, ring_part[1:] == ring_part[:-1]] if len(rings) else np.zeros(0, bool)
    hole_polys = shapely.polygons(rings[is_hole])
    hole_area = shapely.area(hole_polys)
    for k in np.flatnonzero(hole_area < min_area).tolist():
        a = int(part_of[ring_part[is_hole][k]])
        i = use[a]
        flag(
            "small_hole",
            WARNING,
            i,
            f"feature {ids[i]} has a hole of {hole_area[k]:.2f} m², below the minimum mapping unit",
            geometry=hole_polys[k],
            area_m2=float(hole_area[k]),
        )
    spike_of, spike_xy = _spikes(parts, spike_angle)
    for p, (x, y) in zip(spike_of.tolist(), spike_xy.tolist()):
        a = int(part_of[p])
        i = use[a]
        flag(
            "spike",
            WARNING,
            i,
            f"feature {ids[i]} has a spike (vertex angle below {spike_angle:g}°) at ({x:.2f}, {y:.2f})",
            geometry=shapely.Point(x, y),
        )

    # coverage: outside the region, and gaps inside it
    # labels must lie inside ``region`` (AOI, else all chips); ``gap_region`` must be covered
    # wall to wall (AOI, else the done tiles when given, else all chips)
    region: Any = None
    gap_region: Any = None
    if aoi is not None and metric is not None:
        region = gap_region = read_region(aoi, metric)
    elif tiles is not None and metric is not None:
        region, gap_region = _tiles_regions(tiles, metric, set(done_tiles) if done_tiles is not None else None)
    region_area = gap_area = None
    coverage = shapely.union_all(fixed, grid_size=OVERLAY_GRID_M) if len(fixed) else shapely.Polygon()
    if region is not None and not region.is_empty:
        prepared = region
        shapely.prepare(prepared)
        inside = shapely.intersects(prepared, fixed)
        within = shapely.within(fixed, prepared)
        for a in np.flatnonzero(~inside).tolist():
            i = use[a]
            flag(
                "outside",
                ERROR,
                i,
                f"feature {ids[i]} lies entirely outside the {'AOI' if aoi else 'imagery'}",
                geometry=fixed[a],
                area_m2=float(areas[a]),
            )
        partly = np.flatnonzero(inside & ~within)
        if len(partly):
            outside_parts = shapely.difference(fixed[partly], prepared, grid_size=OVERLAY_GRID_M)
            out_area = shapely.area(outside_parts)
            for a, g, oa in zip(partly.tolist(), outside_parts, out_area.tolist()):
                if oa <= overlap_tolerance:
                    continue
                i = use[a]
                flag(
                    "outside",
                    WARNING,
                    i,
                    f"feature {ids[i]} extends {oa:.2f} m² beyond the {'AOI' if aoi else 'imagery'}",
                    geometry=g,
                    area_m2=float(oa),
                )
        gaps = shapely.difference(gap_region, coverage, grid_size=OVERLAY_GRID_M)
        region_area = float(gap_region.area)
        scope = "the AOI" if aoi else "the done tiles" if done_tiles is not None else "the tiles"
    else:
        # without an AOI: areas enclosed by labels but not labelled themselves
        filled = shapely.polygons(shapely.get_exterior_ring(polygonal_parts(np.array([coverage]))[0]))
        gaps = (
            shapely.difference(shapely.union_all(filled), coverage, grid_size=OVERLAY_GRID_M)
            if len(filled)
            else shapely.Polygon()
        )
        scope = "enclosed by labels"
    gap_parts, _ = polygonal_parts(np.array([gaps], dtype=object))
    gap_areas = shapely.area(gap_parts)
    gap_area = float(gap_areas.sum())
    for g, ga in zip(gap_parts, gap_areas.tolist()):
        if ga <= overlap_tolerance:
            continue
        findings.append(
            Finding(
                "gap",
                ERROR if ga >= min_area else WARNING,
                [],
                f"unlabelled area of {ga:.2f} m² {'inside ' if region is not None else ''}{scope}",
                geometry=g,
                area_m2=float(ga),
            )
        )

    # summaries per class, team and labeler
    feature_findings: dict[str, list[str]] = {}
    for f in findings:
        for fid in f.feature_ids:
            feature_findings.setdefault(fid, []).append(f.severity)

    def summarize(keys: list[Any]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        area_of = dict(zip(use.tolist(), areas.tolist()))
        for i in range(n):
            key = str(keys[i]) if keys[i] is not None else "(none)"
            row = out.setdefault(key, {"features": 0, "area_m2": 0.0, "errors": 0, "warnings": 0})
            row["features"] += 1
            row["area_m2"] += area_of.get(i, 0.0)
            for sev in feature_findings.get(ids[i], []):
                row["errors" if sev == ERROR else "warnings"] += 1
        return dict(sorted(out.items()))

    order = {ERROR: 0, WARNING: 1}
    findings.sort(key=lambda f: (order[f.severity], FINDING_TYPES.index(f.type), -(f.area_m2 or 0.0)))
    return QAResult(
        source=delivery.source,
        crs=metric,
        n_features=n,
        findings=findings,
        by_class=summarize([nm if nm is not None else delivery.class_values[i] for i, nm in enumerate(names)]),
        by_team=summarize(delivery.teams),
        by_labeler=summarize(delivery.labelers),
        region_area_m2=region_area,
        gap_area_m2=gap_area if region is not None else None,
        settings=settings,
        labels=fixed,
        label_codes=delivery.codes[use],
    )
