"""Duplicates and overlaps: pairs of polygons found once, through one spatial index."""

from __future__ import annotations

from functools import partial
from typing import Any

from geolabel.crs import OVERLAY_GRID_M
from geolabel.qa.findings import ERROR, Features, Finding
from geolabel.qa.validity import Measured


def check_duplicates_and_overlaps(labels: Measured, features: Features, *, tolerance: float) -> list[Finding]:
    """Polygons with the same geometry, then interiors overlapping by more than
    ``tolerance`` m² (within a class or across classes)."""
    import shapely

    from geolabel.geom import interiors_intersect, intersecting_pairs, threaded

    fixed = labels.geoms
    left, right = intersecting_pairs(fixed)
    if not len(left):
        return []
    same = threaded(shapely.equals, fixed[left], fixed[right])
    findings = _duplicates(labels, features, left[same], right[same])
    left, right = left[~same], right[~same]
    inner = interiors_intersect(fixed[left], fixed[right])
    return findings + _overlaps(labels, features, left[inner], right[inner], tolerance=tolerance)


def _duplicates(labels: Measured, features: Features, left: Any, right: Any) -> list[Finding]:
    """One finding per pair of equal polygons (``left[k]``, ``right[k]``)."""
    ids, names, areas = features.ids, features.names, labels.areas
    findings = []
    for a, b in zip(left.tolist(), right.tolist()):
        i, j = labels.index[a], labels.index[b]
        findings.append(
            Finding(
                "duplicate",
                ERROR,
                [ids[i], ids[j]],
                f"features {ids[i]} and {ids[j]} have the same geometry ({areas[a]:.2f} m²)",
                geometry=labels.geoms[a],
                area_m2=float(areas[a]),
                class_name=names[i],
            )
        )
    return findings


def _overlaps(labels: Measured, features: Features, left: Any, right: Any, *, tolerance: float) -> list[Finding]:
    """One finding per pair whose interiors overlap by more than ``tolerance`` m²."""
    import shapely

    from geolabel.geom import threaded

    ids, names = features.ids, features.names
    fixed = labels.geoms
    inter = threaded(partial(shapely.intersection, grid_size=OVERLAY_GRID_M), fixed[left], fixed[right])
    inter_area = shapely.area(inter)
    big = inter_area > tolerance
    findings = []
    for a, b, g, area in zip(left[big].tolist(), right[big].tolist(), inter[big], inter_area[big].tolist()):
        i, j = labels.index[a], labels.index[b]
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
    return findings
