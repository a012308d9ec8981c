"""Size and shape checks: polygons below the minimum mapping unit, slivers, small holes
and spikes."""

from __future__ import annotations

from typing import Any

import numpy as np

from geolabel.qa.findings import WARNING, Features, Finding
from geolabel.qa.validity import Measured


def check_size_and_shape(
    labels: Measured, features: Features, *, min_area: float, min_width: float, spike_angle: float
) -> list[Finding]:
    """Every size and shape finding, in this order: below_mmu, sliver, small_hole, spike."""
    from geolabel.geom import polygonal_parts

    parts, part_of = polygonal_parts(labels.geoms)
    return [
        *_below_mmu(labels, features, min_area=min_area),
        *_slivers(labels, features, min_area=min_area, min_width=min_width),
        *_small_holes(labels, features, parts, part_of, min_area=min_area),
        *_spikes(labels, features, parts, part_of, spike_angle=spike_angle),
    ]


def _below_mmu(labels: Measured, features: Features, *, min_area: float) -> list[Finding]:
    ids, areas = features.ids, labels.areas
    findings = []
    for a in np.flatnonzero(areas < min_area).tolist():
        i = labels.index[a]
        findings.append(
            features.finding(
                "below_mmu",
                WARNING,
                i,
                f"feature {ids[i]} covers {areas[a]:.2f} m², below the minimum mapping unit of {min_area:g} m²",
                geometry=labels.geoms[a],
                area_m2=float(areas[a]),
            )
        )
    return findings


def _slivers(labels: Measured, features: Features, *, min_area: float, min_width: float) -> list[Finding]:
    """Polygons of at least ``min_area`` whose mean width (2 area / perimeter) is below ``min_width``."""
    import shapely

    ids, areas = features.ids, labels.areas
    perimeter = shapely.length(labels.geoms)
    width = np.where(perimeter > 0, 2 * areas / np.maximum(perimeter, 1e-12), 0.0)
    findings = []
    for a in np.flatnonzero((width < min_width) & (areas >= min_area)).tolist():
        i = labels.index[a]
        findings.append(
            features.finding(
                "sliver",
                WARNING,
                i,
                f"feature {ids[i]} is a sliver: mean width {width[a]:.2f} m over {areas[a]:.1f} m²",
                geometry=labels.geoms[a],
                area_m2=float(areas[a]),
            )
        )
    return findings


def _small_holes(labels: Measured, features: Features, parts: Any, part_of: Any, *, min_area: float) -> list[Finding]:
    """Holes of the polygon ``parts`` (of polygon ``part_of``) smaller than ``min_area``."""
    import shapely

    rings, ring_part = shapely.get_rings(parts, return_index=True)
    is_hole = np.r_[False, ring_part[1:] == ring_part[:-1]] if len(rings) else np.zeros(0, bool)
    hole_polys = shapely.polygons(rings[is_hole])
    hole_area = shapely.area(hole_polys)
    findings = []
    for k in np.flatnonzero(hole_area < min_area).tolist():
        i = labels.index[int(part_of[ring_part[is_hole][k]])]
        findings.append(
            features.finding(
                "small_hole",
                WARNING,
                i,
                f"feature {features.ids[i]} has a hole of {hole_area[k]:.2f} m², below the minimum mapping unit",
                geometry=hole_polys[k],
                area_m2=float(hole_area[k]),
            )
        )
    return findings


def _spikes(labels: Measured, features: Features, parts: Any, part_of: Any, *, spike_angle: float) -> list[Finding]:
    """Vertices of the polygon ``parts`` with an angle below ``spike_angle`` degrees."""
    import shapely

    spike_of, spike_xy = spike_vertices(parts, spike_angle)
    findings = []
    for p, (x, y) in zip(spike_of.tolist(), spike_xy.tolist()):
        i = labels.index[int(part_of[p])]
        findings.append(
            features.finding(
                "spike",
                WARNING,
                i,
                f"feature {features.ids[i]} has a spike (vertex angle below {spike_angle:g}°) at ({x:.2f}, {y:.2f})",
                geometry=shapely.Point(x, y),
            )
        )
    return findings


def spike_vertices(geoms: Any, max_angle: float) -> tuple[Any, Any]:
    """(polygon index, vertex point) of every vertex whose angle is below ``max_angle`` degrees."""
    import shapely

    from geolabel.geom import groups

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
