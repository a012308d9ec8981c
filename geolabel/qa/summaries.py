"""Summaries per class, team and labeler: features, area and findings."""

from __future__ import annotations

from typing import Any

from geolabel.labels.delivery import Delivery
from geolabel.qa.findings import ERROR, Features, Finding
from geolabel.qa.validity import Measured

Summary = dict[str, dict[str, float]]


def summarize(
    delivery: Delivery, features: Features, labels: Measured, findings: list[Finding]
) -> tuple[Summary, Summary, Summary]:
    """(by class, by team, by labeler); features of an unknown class under their value."""
    severities: dict[str, list[str]] = {}
    for f in findings:
        for fid in f.feature_ids:
            severities.setdefault(fid, []).append(f.severity)
    area_of = dict(zip(labels.index.tolist(), labels.areas.tolist()))
    classes = [nm if nm is not None else delivery.class_values[i] for i, nm in enumerate(features.names)]
    n = len(delivery.geoms)
    return (
        _summary(classes, n, features.ids, area_of, severities),
        _summary(delivery.teams, n, features.ids, area_of, severities),
        _summary(delivery.labelers, n, features.ids, area_of, severities),
    )


def _summary(
    keys: list[Any], n: int, ids: list[str], area_of: dict[int, float], severities: dict[str, list[str]]
) -> Summary:
    """Features, area and findings of the first ``n`` features, grouped by ``keys``."""
    out: Summary = {}
    for i in range(n):
        key = str(keys[i]) if keys[i] is not None else "(none)"
        row = out.setdefault(key, {"features": 0, "area_m2": 0.0, "errors": 0, "warnings": 0})
        row["features"] += 1
        row["area_m2"] += area_of.get(i, 0.0)
        for sev in severities.get(ids[i], []):
            row["errors" if sev == ERROR else "warnings"] += 1
    return dict(sorted(out.items()))
