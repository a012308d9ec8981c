"""File and attribute checks: no features, the CRS, classes and required attributes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geolabel.labels.delivery import Delivery
from geolabel.qa.findings import ERROR, WARNING, Features, Finding


def check_empty(delivery: Delivery) -> list[Finding]:
    """A delivery without features passes, with a warning saying so."""
    if len(delivery.geoms):
        return []
    return [Finding("no_features", WARNING, [], f"{delivery.source} holds no features (an empty delivery)")]


def check_crs(delivery: Delivery, expected_crs: Any) -> tuple[Any, list[Finding]]:
    """(the CRS the coordinates are taken in, findings about the declared CRS).

    A delivery without a CRS is taken in ``expected_crs`` when there is one, else as it is
    (``None``: nothing is measured in metres).
    """
    from geolabel.crs import crs_label, parse_crs, same_crs

    data_crs = delivery.crs
    if data_crs is None:
        if expected_crs is None:
            message = f"{delivery.source} {delivery.crs_problem}; coordinates taken as they are"
            return None, [Finding("missing_crs", ERROR, [], message)]
        message = f"{delivery.source} {delivery.crs_problem}; assumed the expected {crs_label(expected_crs)}"
        return parse_crs(expected_crs), [Finding("missing_crs", ERROR, [], message)]
    if expected_crs is not None and not same_crs(data_crs, expected_crs):
        message = f"CRS is {crs_label(data_crs)} but the delivery rules expect {crs_label(expected_crs)}"
        return data_crs, [Finding("unexpected_crs", ERROR, [], message)]
    return data_crs, []


def check_attributes(delivery: Delivery, features: Features, require: Sequence[str]) -> list[Finding]:
    """Classes not in the schema, and attributes named in ``require`` that are missing or empty."""
    findings = check_classes(delivery, features)
    for name in require:
        findings += check_required(delivery, features, name)
    return findings


def check_classes(delivery: Delivery, features: Features) -> list[Finding]:
    """Features whose class is not in the schema."""
    ids = features.ids
    return [
        features.finding(
            "unknown_class", ERROR, i, f"feature {ids[i]}: class {delivery.class_values[i]!r} is not in the schema"
        )
        for i in np.flatnonzero(delivery.codes < 0)
    ]


def check_required(delivery: Delivery, features: Features, name: str) -> list[Finding]:
    """Features whose attribute ``name`` is empty; one finding when no feature has it."""
    values = {"labeler": delivery.labelers, "team": delivery.teams}.get(name) or delivery.extra.get(name)
    if values is None:
        return [Finding("missing_attribute", ERROR, [], f"the delivery has no {name!r} attribute")]
    ids = features.ids
    return [
        features.finding("missing_attribute", ERROR, i, f"feature {ids[i]}: {name} is empty")
        for i, v in enumerate(values)
        if v is None
    ]
