"""Geometry checks (empty, non-polygon, invalid), and the repaired polygons in metres that
every later check measures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from geolabel.labels.delivery import Delivery
from geolabel.qa.findings import ERROR, Features, Finding

_POINT_IN_REASON = re.compile(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)")


@dataclass
class Measured:
    """The delivery's usable polygons, repaired: polygon ``k`` is feature ``index[k]``."""

    index: Any  # feature index of each polygon
    geoms: Any  # shapely array in ``crs``
    areas: Any  # m² (in ``crs`` units when the delivery has no CRS)
    crs: Any  # metric CRS, or None when the delivery has none


def check_geometry(delivery: Delivery, features: Features) -> tuple[list[Finding], Any, Any]:
    """(findings, feature index, repaired polygons): features without geometry, points and
    lines, invalid polygons; the repaired 2D copies of the polygons take part in the
    remaining checks."""
    import shapely

    from geolabel.labels.importer import TYPE_NAMES
    from geolabel.labels.repair import repair

    ids = features.ids
    geoms = np.asarray(delivery.geoms, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    findings = [
        features.finding("empty", ERROR, i, f"feature {ids[i]} has no geometry") for i in np.flatnonzero(missing)
    ]
    types = shapely.get_type_id(geoms)
    polygonal = np.isin(types, (3, 6)) & ~missing
    for i in np.flatnonzero(~polygonal & ~missing):
        kind = TYPE_NAMES.get(int(types[i]), "geometry")
        where = shapely.force_2d(geoms[i])
        findings.append(
            features.finding("non_polygon", ERROR, i, f"feature {ids[i]} is a {kind}, not a polygon", geometry=where)
        )
    work = shapely.force_2d(geoms.copy())
    for i, reason, where in _invalid_polygons(work, polygonal):
        findings.append(
            features.finding("invalid", ERROR, i, f"feature {ids[i]}: invalid polygon: {reason}", geometry=where)
        )
    use = np.flatnonzero(polygonal)
    fixed, _, _ = repair(work[use])
    usable = ~shapely.is_missing(fixed)
    return findings, use[usable], fixed[usable]


def _invalid_polygons(work: Any, polygonal: Any) -> list[tuple[int, str, Any]]:
    """(index, GEOS's reason, where) of every polygon of ``work`` that is invalid or has
    coordinates no CRS can hold (:data:`~geolabel.labels.repair.MAX_COORDINATE`; those get
    no location: no map shows it)."""
    import shapely

    from geolabel.labels.repair import FAR, has_far_coords

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


def measure(index: Any, geoms: Any, data_crs: Any, findings: list[Finding], *, metric: Any = None) -> Measured:
    """The polygons in metres: in ``data_crs`` when it is projected in metres, else in the
    UTM zone of the data (or in ``metric``: some labels measured as all of them are); the
    locations of the geometry ``findings`` move with them."""
    import shapely

    from geolabel.crs import reproject_geometries, same_crs

    if data_crs is not None and len(geoms):
        metric = metric if metric is not None else metric_crs(geoms, data_crs)
        if not same_crs(metric, data_crs):
            geoms = reproject_geometries(geoms, data_crs, metric)
            located = [f for f in findings if f.type in ("invalid", "non_polygon") and f.geometry is not None]
            for f in located:
                f.geometry = reproject_geometries(np.array([f.geometry], dtype=object), data_crs, metric)[0]
    else:
        metric = data_crs
    return Measured(index, geoms, shapely.area(geoms), metric)


def metric_crs(geoms: Any, data_crs: Any) -> Any:
    """The CRS :func:`measure` measures ``geoms`` in (``data_crs`` itself when it is
    projected in metres); None without a CRS or polygons."""
    import shapely

    from geolabel.crs import metric_crs_for

    if data_crs is None or not len(geoms):
        return None
    return metric_crs_for(data_crs, tuple(shapely.total_bounds(geoms)))
