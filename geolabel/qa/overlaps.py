"""Duplicates and overlaps: the findings of the pairs the partitions found
(:mod:`geolabel.qa.partition`), each pair once, in index order."""

from __future__ import annotations

from typing import Any

from geolabel.qa.findings import ERROR, Features, Finding
from geolabel.qa.partition import Partitioned
from geolabel.qa.validity import Measured


def check_duplicates_and_overlaps(
    labels: Measured, features: Features, pairs: Partitioned, *, tolerance: float
) -> list[Finding]:
    """Polygons with the same geometry, then interiors overlapping by more than
    ``tolerance`` m² (within a class or across classes)."""
    return pair_findings(labels, features, pairs, tolerance=tolerance)[1]


def pair_findings(
    labels: Measured, features: Features, pairs: Partitioned, *, tolerance: float
) -> tuple[list[tuple[int, int]], list[Finding]]:
    """(the pair (left, right) of each finding, the findings of
    :func:`check_duplicates_and_overlaps`), so an incremental check can keep each pair's."""
    import shapely

    same = pairs.same
    left, right = pairs.left[same], pairs.right[same]
    keys = list(zip(left.tolist(), right.tolist()))
    findings = _duplicates(labels, features, left, right)
    inter = pairs.overlap[~same]
    areas = shapely.area(inter) if len(inter) else inter
    big = areas > tolerance
    left, right = pairs.left[~same][big], pairs.right[~same][big]
    keys += zip(left.tolist(), right.tolist())
    return keys, findings + _overlaps(labels, features, left, right, inter[big], areas[big])


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


def _overlaps(
    labels: Measured, features: Features, left: Any, right: Any, inter: Any, inter_area: Any
) -> list[Finding]:
    """One finding per overlapping pair: ``inter[k]`` (``inter_area[k]`` m²) shared by
    ``left[k]`` and ``right[k]``."""
    ids, names = features.ids, features.names
    findings = []
    for a, b, g, area in zip(left.tolist(), right.tolist(), inter, inter_area.tolist()):
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
