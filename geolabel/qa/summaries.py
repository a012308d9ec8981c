"""Summaries per class, team and labeler: features, area and findings.

Counted with NumPy (one pass over the findings, then per-group sums), as a check of tens
of thousands of labels and findings would otherwise spend most of an incremental check's
time here."""

from __future__ import annotations

from collections import Counter
from itertools import chain
from typing import Any

import numpy as np

from geolabel.labels.delivery import Delivery
from geolabel.qa.findings import ERROR, Features, Finding
from geolabel.qa.validity import Measured

Summary = dict[str, dict[str, float]]


def summarize(
    delivery: Delivery, features: Features, labels: Measured, findings: list[Finding]
) -> tuple[Summary, Summary, Summary]:
    """(by class, by team, by labeler); features of an unknown class under their value."""
    errors, warnings = _feature_counts(findings)
    n = len(delivery.geoms)
    ids = features.ids[:n]
    area = np.zeros(n, dtype=float)
    area[labels.index] = labels.areas
    counts = (
        area,
        np.array([errors.get(i, 0) for i in ids], dtype=np.int64),
        np.array([warnings.get(i, 0) for i in ids], dtype=np.int64),
    )
    classes = [nm if nm is not None else delivery.class_values[i] for i, nm in enumerate(features.names)]
    return (
        _summary(classes[:n], *counts),
        _summary(delivery.teams[:n], *counts),
        _summary(delivery.labelers[:n], *counts),
    )


def _feature_counts(findings: list[Finding]) -> tuple[Counter[str], Counter[str]]:
    """(errors, warnings) per feature id: the findings split in one pass, their ids
    counted by ``Counter`` from a chain (two generator passes took 0.12 s for 105,969
    findings, this 0.05 s)."""
    by_severity: dict[bool, list[list[str]]] = {True: [], False: []}
    for f in findings:
        by_severity[f.severity == ERROR].append(f.feature_ids)
    return Counter(chain.from_iterable(by_severity[True])), Counter(chain.from_iterable(by_severity[False]))


def _summary(keys: list[Any], area: Any, errors: Any, warnings: Any) -> Summary:
    """Features, area and findings of the features grouped by ``keys`` (sorted by key)."""
    names = np.array([str(k) if k is not None else "(none)" for k in keys], dtype=str)
    groups, inverse = np.unique(names, return_inverse=True)
    inverse = inverse.reshape(-1)
    size = len(groups)
    columns = zip(
        np.bincount(inverse, minlength=size).tolist(),
        # sums feature by feature, in order, as adding them one by one would
        np.bincount(inverse, weights=area, minlength=size).tolist(),
        np.bincount(inverse, weights=errors, minlength=size).astype(np.int64).tolist(),
        np.bincount(inverse, weights=warnings, minlength=size).astype(np.int64).tolist(),
    )
    return {
        str(g): {"features": f, "area_m2": a, "errors": e, "warnings": w}
        for g, (f, a, e, w) in zip(groups.tolist(), columns)
    }
