"""Label editing rules, by their former single address.

The rules live in topic modules: :mod:`geolabel.geom` (generic geometry helpers),
:mod:`geolabel.labels.repair` (make label geometries valid) and
:mod:`geolabel.labels.resolve` (resolve overlaps by class priority, slivers, spikes).
This module re-exports their names for the code and scripts that import them from here.
"""

from __future__ import annotations

from geolabel.geom import groups, polygonal_parts, threaded
from geolabel.labels.repair import FAR, MAX_COORDINATE, NONFINITE, has_far_coords, has_nonfinite_coords, repair
from geolabel.labels.resolve import (
    MERGE_FRACTION,
    OVERLAP_TOLERANCE,
    SAME_CLASS_POLICIES,
    Resolved,
    ResolveReport,
    check_resolve_options,
    resolve_overlaps,
    resolve_store,
)

__all__ = [
    "FAR",
    "MAX_COORDINATE",
    "MERGE_FRACTION",
    "NONFINITE",
    "OVERLAP_TOLERANCE",
    "SAME_CLASS_POLICIES",
    "ResolveReport",
    "Resolved",
    "check_resolve_options",
    "groups",
    "has_far_coords",
    "has_nonfinite_coords",
    "polygonal_parts",
    "repair",
    "resolve_overlaps",
    "resolve_store",
    "threaded",
]
