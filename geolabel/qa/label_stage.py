"""The checks of one label at a time, run on some of a delivery's labels
(:mod:`geolabel.qa.incremental`): each finding tagged with its place in a full check's
order, so findings checked at different times are listed as one check lists them.

A full check lists findings of one type in the order its check families emit them:
class, then each required attribute in turn, geometry, size and shape, outside, each in
label order. A tag is (family, pass, label position, sequence); the label position is
filled in when the findings are assembled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geolabel.labels.delivery import Delivery
from geolabel.qa.findings import Features, Finding

Key = tuple[int, int, int, int]
#: Check families in a full check's order.
CLASSES, GEOMETRY, SHAPE, OUTSIDE = 0, 1, 2, 3


@dataclass
class LabelOutcome:
    """Per checked label: tagged findings, polygon in metres (None: unusable), its area and
    its bounds in the delivery's CRS; plus the file's own findings and the metric CRS."""

    findings: list[list[tuple[Key, Finding]]]
    geoms: list[Any]
    areas: list[float]
    bounds: list[Any]
    file_findings: list[tuple[Key, Finding]]
    crs_findings: list[Finding]
    metric: Any
    metric_wkt: str | None
    measured: Any  # the checked labels' Measured
    features: Features

    def tag(self, family: int, step: int, found: list[Finding], position: dict[str, int]) -> None:
        """Add ``found`` under ``family`` and pass ``step``."""
        for f in found:
            if not f.feature_ids:
                self.file_findings.append(((family, step, -1, len(self.file_findings)), f))
                continue
            mine = self.findings[position[f.feature_ids[0]]]
            mine.append(((family, step, 0, len(mine)), f))


def subset(delivery: Delivery, index: list[int]) -> Delivery:
    """The labels ``index`` of ``delivery`` as a delivery of their own."""
    idx = np.asarray(index, dtype=np.int64)
    geoms = np.asarray(delivery.geoms, dtype=object)[idx]
    return Delivery(
        source=delivery.source,
        geoms=geoms,
        ids=[delivery.ids[i] for i in index],
        codes=np.asarray(delivery.codes)[idx],
        class_values=[delivery.class_values[i] for i in index],
        labelers=[delivery.labelers[i] for i in index],
        teams=[delivery.teams[i] for i in index],
        crs=delivery.crs,
        schema=delivery.schema,
        extra={k: [v[i] for i in index] for k, v in delivery.extra.items()},
        done_tiles=delivery.done_tiles,
        crs_problem=delivery.crs_problem,
    )


def check_each_label(some: Delivery, opts: dict[str, Any], *, kept_bounds: Any) -> LabelOutcome:
    """Class, attribute, geometry, size and shape findings of the labels of ``some``,
    measured in the metric CRS of all labels: these and the others, whose repaired
    polygons' bounds (delivery CRS) are ``kept_bounds``."""
    import shapely

    from geolabel.qa.attributes import check_classes, check_crs, check_required
    from geolabel.qa.shape import check_size_and_shape
    from geolabel.qa.validity import check_geometry, measure

    features = Features.of(some)
    position = {label: k for k, label in enumerate(some.ids)}
    data_crs, crs_findings = check_crs(some, opts["expected_crs"])
    geometry_findings, index, repaired = check_geometry(some, features)
    bounds = shapely.bounds(repaired)
    metric = _metric(data_crs, np.concatenate([np.asarray(kept_bounds).reshape(-1, 4), bounds]))
    labels = measure(index, repaired, data_crs, geometry_findings, metric=metric)
    n = len(some.ids)
    out = LabelOutcome(
        [[] for _ in range(n)], [None] * n, [0.0] * n, [None] * n, [], crs_findings, metric,
        metric.to_wkt() if metric is not None else None, labels, features,
    )  # fmt: skip
    for k, i in enumerate(index.tolist()):
        out.geoms[i], out.areas[i], out.bounds[i] = labels.geoms[k], float(labels.areas[k]), bounds[k]
    out.tag(CLASSES, 0, check_classes(some, features), position)
    for step, name in enumerate(opts["require"], start=1):
        out.tag(CLASSES, step, check_required(some, features, name), position)
    out.tag(GEOMETRY, 0, geometry_findings, position)
    limits = {k: opts[k] for k in ("min_area", "min_width", "spike_angle")}
    if len(labels.geoms):
        out.tag(SHAPE, 0, check_size_and_shape(labels, features, **limits), position)
    return out


def check_outside_each(outcome: LabelOutcome, some: Delivery, regions: tuple[Any, Any], opts: dict[str, Any]) -> None:
    """Add the checked labels' outside findings (they need the region, known later)."""
    from geolabel.qa.coverage import check_outside

    if not len(outcome.measured.geoms):
        return
    found = check_outside(
        outcome.measured, outcome.features, regions=regions, aoi=opts["aoi"] is not None,
        tolerance=opts["overlap_tolerance"],
    )  # fmt: skip
    outcome.tag(OUTSIDE, 0, found, {label: k for k, label in enumerate(some.ids)})


def _metric(data_crs: Any, bounds: Any) -> Any:
    """The CRS a full check measures in: from the bounds of every usable label."""
    from geolabel.crs import metric_crs_for

    if data_crs is None or not len(bounds):
        return data_crs
    total = (float(bounds[:, 0].min()), float(bounds[:, 1].min()), float(bounds[:, 2].max()), float(bounds[:, 3].max()))
    return metric_crs_for(data_crs, total)
