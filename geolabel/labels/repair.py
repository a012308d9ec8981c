"""Label geometry repair: make polygons valid, keeping only their polygonal parts, and the
coordinate checks that decide what cannot be repaired (NaN, infinite, too far away)."""

from __future__ import annotations

from typing import Any

import numpy as np

from geolabel.geom import polygonal_parts

#: Why a geometry with NaN or infinite coordinates cannot be repaired.
NONFINITE = "NaN or infinite coordinates"
#: Largest coordinate magnitude a label can have, in CRS units (1e10 m is 250 times round
#: the Earth, 1e10 degrees or feet no better): beyond it no CRS places anything, and areas
#: overflow (a square at 1e300 has an infinite area, its overlap with itself none).
MAX_COORDINATE = 1e10
FAR = f"coordinates beyond {MAX_COORDINATE:g} CRS units"


def repair(geoms: Any) -> tuple[Any, Any, list[str | None]]:
    """Make polygons valid, keeping only polygonal parts.

    Returns (repaired geometries, boolean array of which were changed, the GEOS reason
    for each invalid input or None). Geometries that have no polygonal part left, NaN or
    infinite coordinates (nothing to repair them from) or coordinates beyond
    :data:`MAX_COORDINATE` are returned as None.
    """
    import shapely

    arr = np.asarray(geoms, dtype=object)
    arr = shapely.force_2d(arr)
    valid = shapely.is_valid(arr)
    reasons: list[str | None] = [None] * len(arr)
    out = arr.copy()
    changed = np.zeros(len(arr), dtype=bool)
    far = np.flatnonzero(has_far_coords(arr))
    for i in far:
        reasons[i] = FAR
        out[i] = None
    changed[far] = True
    bad = np.setdiff1d(np.flatnonzero(~valid & ~shapely.is_missing(arr)), far)
    for i in bad:
        reasons[i] = shapely.is_valid_reason(arr[i])
    hopeless = bad[has_nonfinite_coords(arr[bad])]
    for i in hopeless:
        reasons[i] = NONFINITE + str(reasons[i])[str(reasons[i]).find("[") :]
        out[i] = None
    changed[hopeless] = True
    bad = np.setdiff1d(bad, hopeless)
    if len(bad):
        fixed = shapely.make_valid(arr[bad])
        parts, idx = polygonal_parts(fixed)
        merged: list[Any] = [None] * len(bad)
        for k in np.unique(idx):
            polys = parts[idx == k]
            merged[k] = polys[0] if len(polys) == 1 else shapely.multipolygons(polys)
        for k, i in enumerate(bad):
            out[i] = merged[k]
            changed[i] = True
    return out, changed, reasons


def has_far_coords(geoms: Any) -> Any:
    """Boolean array: which geometries have a finite x or y beyond :data:`MAX_COORDINATE`.

    >>> import shapely
    >>> has_far_coords(np.array([shapely.box(0, 0, 1, 1), shapely.box(0, 0, 1e300, 1), None])).tolist()
    [False, True, False]
    """
    import shapely

    arr = np.asarray(geoms, dtype=object)
    out = np.zeros(len(arr), dtype=bool)
    with np.errstate(invalid="ignore"):  # bounds within the limit: every coordinate is
        near = (np.abs(shapely.bounds(arr)) <= MAX_COORDINATE).all(axis=1)
    unsure = np.flatnonzero(~near)
    coords, idx = shapely.get_coordinates(arr[unsure], return_index=True)
    with np.errstate(invalid="ignore"):
        out[unsure[idx[(np.abs(coords) > MAX_COORDINATE).any(axis=1) & np.isfinite(coords).all(axis=1)]]] = True
    return out


def has_nonfinite_coords(geoms: Any) -> Any:
    """Boolean array: which geometries have a NaN or infinite x or y.

    >>> import shapely
    >>> has_nonfinite_coords(np.array([shapely.box(0, 0, 1, 1), shapely.Point(float("nan"), 0)])).tolist()
    [False, True]
    """
    import shapely

    arr = np.asarray(geoms, dtype=object)
    coords, idx = shapely.get_coordinates(arr, return_index=True)
    out = np.zeros(len(arr), dtype=bool)
    out[idx[~np.isfinite(coords).all(axis=1)]] = True
    return out
