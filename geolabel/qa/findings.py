"""What QA returns: :class:`Finding` records, their types and severities, and the
:class:`QAResult` that holds them with the summaries the report shows."""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geolabel.labels.delivery import Delivery

ERROR = "error"
WARNING = "warning"
_SEVERITY = operator.attrgetter("severity")
_TYPE = operator.attrgetter("type")
#: Every finding type, in the order a report lists them (within a severity).
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
    "unassigned_tile",
    "cross_site_overlap",
    "untagged_tile",
    "tag_disagreement",
    "below_mmu",
    "sliver",
    "small_hole",
    "spike",
)


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
        return finding_dicts([self])[0]


@dataclass(frozen=True)
class Features:
    """How findings name the delivery's features: id and class name, by feature index."""

    ids: list[str]
    names: list[str | None]  # class name, None when the class is unknown

    @classmethod
    def of(cls, delivery: Delivery) -> Features:
        schema = delivery.schema
        return cls(delivery.ids, [schema.get(int(c)).name if c >= 0 else None for c in delivery.codes])

    def finding(self, kind: str, severity: str, i: int, message: str, **where: Any) -> Finding:
        """A finding about feature ``i`` of the delivery (``where``: geometry, area_m2)."""
        return Finding(kind, severity, [self.ids[i]], message, class_name=self.names[i], **where)


#: Where each (severity, type) goes in a report: errors first, then by type.
_RANK = {(s, t): (k, i) for k, s in enumerate((ERROR, WARNING)) for i, t in enumerate(FINDING_TYPES)}


def sort_findings(findings: list[Finding]) -> None:
    """Errors first, then by type (:data:`FINDING_TYPES`), the largest areas first; stable.

    Grouped by (severity, type) in one pass, then each group sorted by area alone: keys
    that are all floats compare much faster than tuples (105,969 findings: 0.10 s, with
    tuple keys 0.15 s)."""
    groups: dict[tuple[int, int], list[Finding]] = {}
    for f in findings:
        groups.setdefault(_RANK[f.severity, f.type], []).append(f)
    findings.clear()
    for rank in sorted(groups):
        group = groups[rank]
        group.sort(key=_larger_first)
        findings += group


def _larger_first(f: Finding) -> float:
    return -(f.area_m2 or 0.0)


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
        return operator.countOf(map(_SEVERITY, self.findings), ERROR)

    @property
    def warnings(self) -> int:
        return operator.countOf(map(_SEVERITY, self.findings), WARNING)

    @property
    def completeness(self) -> float | None:
        if not self.region_area_m2:
            return None
        return 1.0 - (self.gap_area_m2 or 0.0) / self.region_area_m2

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        pairs = Counter(zip(map(_TYPE, self.findings), map(_SEVERITY, self.findings)))
        for (kind, severity), n in pairs.items():  # types in the order they first appear
            out.setdefault(kind, {ERROR: 0, WARNING: 0})[severity] += n
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
            "findings": finding_dicts(self.findings),
        }


def finding_locations(findings: list[Finding]) -> list[list[float] | None]:
    """Each finding's representative point ``[x, y]`` (mm), None without a location: what
    :meth:`Finding.to_dict` gives, computed for all findings in one vectorised call."""
    import numpy as np
    import shapely

    from geolabel.geom import geometry_array, threaded

    geoms = geometry_array((f.geometry for f in findings), len(findings))
    located = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) if len(geoms) else np.zeros(0, bool)
    xy = shapely.get_coordinates(threaded(shapely.point_on_surface, geoms[located])).tolist()
    points = iter([[round(x, 3), round(y, 3)] for x, y in xy])  # Python's rounding, as reports always had
    return [next(points) if ok else None for ok in located.tolist()]


def finding_dicts(findings: list[Finding]) -> list[dict[str, Any]]:
    """:meth:`Finding.to_dict` of every finding (the points computed at once)."""
    return [
        {
            "type": f.type,
            "severity": f.severity,
            "feature_ids": f.feature_ids,
            "class": f.class_name,
            "area_m2": None if f.area_m2 is None else round(f.area_m2, 4),
            "location": loc,
            "message": f.message,
        }
        for f, loc in zip(findings, finding_locations(findings))
    ]
