""":func:`check_labels`: every check family run on a delivery, in the order findings are listed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from geolabel.errors import InputError
from geolabel.garbage import fewer_collections
from geolabel.labels.delivery import Delivery
from geolabel.qa.attributes import check_attributes, check_crs, check_empty
from geolabel.qa.coverage import check_coverage, coverage_regions, gap_scope
from geolabel.qa.findings import Features, Finding, QAResult, sort_findings
from geolabel.qa.overlaps import check_duplicates_and_overlaps
from geolabel.qa.partition import run_partitions
from geolabel.qa.shape import check_size_and_shape
from geolabel.qa.summaries import summarize
from geolabel.qa.tags import check_tags
from geolabel.qa.validity import check_geometry, measure
from geolabel.vocabulary import parse_list


@fewer_collections()
def check_labels(
    delivery: Delivery,
    *,
    aoi: Any = None,
    tiles: str | Path | None = None,
    done_only: bool = False,
    min_area: float = 1.0,
    min_width: float = 0.5,
    spike_angle: float = 5.0,
    overlap_tolerance: float = 0.01,
    require: str | Sequence[str] = (),
    expected_crs: Any = None,
    workers: int | None = None,
    executor: Executor | None = None,
    partition_size: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> QAResult:
    """Run every check on a delivery. Areas and widths are in metres (m², m).

    ``tiles``: a tile index; labels must lie on the chips' imagery and cover it, or with
    ``done_only`` only the tiles the store marks done. ``require``: attributes that must be
    filled ("labeler,team" or a list).

    Overlaps and gaps are found per partition (squares of ``partition_size`` m, by
    default about four per worker) on ``executor`` (a ``concurrent.futures`` pool, a Dask
    client's) or on ``workers`` local processes (None: all cores; 1: in this process);
    the result is the same for any of them. ``progress`` gets the fraction done.
    """
    from geolabel.parallel import worker_count

    if executor is None:
        worker_count(workers)  # a typo is said before any work
    opts = check_options(
        aoi=aoi, tiles=tiles, done_only=done_only, min_area=min_area, min_width=min_width, spike_angle=spike_angle,
        overlap_tolerance=overlap_tolerance, require=require, expected_crs=expected_crs,
    )  # fmt: skip
    require, expected_crs, settings = opts["require"], opts["expected_crs"], opts["settings"]
    done_tiles = done_tiles_of(delivery, tiles=tiles, done_only=done_only)
    findings = check_empty(delivery)
    features = Features.of(delivery)
    limits = {"min_area": min_area, "min_width": min_width, "spike_angle": spike_angle}
    data_crs, crs_findings = check_crs(delivery, expected_crs)
    findings += crs_findings
    findings += check_attributes(delivery, features, require)
    geometry_findings, index, repaired = check_geometry(delivery, features)
    findings += geometry_findings
    labels = measure(index, repaired, data_crs, geometry_findings)  # everything below is in metres
    regions = coverage_regions(labels, aoi=aoi, tiles=tiles, done_tiles=done_tiles)
    shapes: list[Finding] = []
    parts = run_partitions(
        labels.geoms,
        gap_scope(regions),
        workers=workers,
        executor=executor,
        partition_size=partition_size,
        progress=progress,
        meanwhile=lambda: shapes.extend(check_size_and_shape(labels, features, **limits)),
    )
    findings += check_duplicates_and_overlaps(labels, features, parts, tolerance=overlap_tolerance)
    findings += shapes
    coverage = check_coverage(
        labels,
        features,
        regions=regions,
        gaps=parts.gaps,
        aoi=aoi is not None,
        done_only=done_tiles is not None,
        min_area=min_area,
        tolerance=overlap_tolerance,
    )
    findings += coverage.findings
    findings += check_tags(delivery, tiles=tiles, crs=labels.crs)
    return finish_result(delivery, features, labels, findings, coverage, settings)


def finish_result(
    delivery: Delivery, features: Features, labels: Any, findings: list[Finding], coverage: Any, settings: Any
) -> QAResult:
    """The last step of a full and of an incremental check: summaries, the findings in
    report order and the result (``labels``: the measured labels, ``coverage``: the gaps)."""
    by_class, by_team, by_labeler = summarize(delivery, features, labels, findings)
    sort_findings(findings)
    return QAResult(
        source=delivery.source,
        crs=labels.crs,
        n_features=len(delivery.geoms),
        findings=findings,
        by_class=by_class,
        by_team=by_team,
        by_labeler=by_labeler,
        region_area_m2=coverage.region_area_m2,
        gap_area_m2=coverage.gap_area_m2,
        settings=settings,
        labels=labels.geoms,
        label_codes=delivery.codes[labels.index],
    )


def check_options(
    *,
    aoi: Any = None,
    tiles: str | Path | None = None,
    done_only: bool = False,
    min_area: float = 1.0,
    min_width: float = 0.5,
    spike_angle: float = 5.0,
    overlap_tolerance: float = 0.01,
    require: str | Sequence[str] = (),
    expected_crs: Any = None,
) -> dict[str, Any]:
    """The options of :func:`check_labels`, checked and parsed (``require`` a tuple,
    ``expected_crs`` a CRS), with the ``settings`` a report shows; two checks with equal
    options measure the same way."""
    from geolabel.crs import parse_crs

    names = tuple(_attribute_names(require))
    _check_limits(min_area=min_area, min_width=min_width, spike_angle=spike_angle)
    if expected_crs is not None:
        expected_crs = parse_crs(expected_crs, param="expected_crs")
    limits = {"min_area": min_area, "min_width": min_width, "spike_angle": spike_angle}
    return {
        "aoi": aoi, "tiles": tiles, "done_only": done_only, "overlap_tolerance": overlap_tolerance,
        "require": names, "expected_crs": expected_crs, **limits,
        "settings": _settings(aoi=aoi, tiles=tiles, require=names, overlap_tolerance=overlap_tolerance, **limits),
    }  # fmt: skip


def _attribute_names(require: str | Sequence[str]) -> Sequence[str]:
    """The attributes ``require`` names ("labeler,team" or a list)."""
    if isinstance(require, str):
        return parse_list(require)
    return require


def _settings(
    *,
    aoi: Any,
    tiles: str | Path | None,
    require: Sequence[str],
    min_area: float,
    min_width: float,
    spike_angle: float,
    overlap_tolerance: float,
) -> dict[str, Any]:
    """The options a check ran with, as the report shows them."""
    from geolabel.labels.importer import source_label

    return {
        "min_area_m2": min_area,
        "min_width_m": min_width,
        "spike_angle_deg": spike_angle,
        "overlap_tolerance_m2": overlap_tolerance,
        "require": list(require),
        "aoi": source_label(aoi) if aoi else None,
        "tiles": str(tiles) if tiles else None,
    }


def _check_limits(*, min_area: float, min_width: float, spike_angle: float) -> None:
    """Refuse limits no delivery could be measured against."""
    for name, value, unit in (("min_area", min_area, "m²"), ("min_width", min_width, "m")):
        if not 0 <= value < float("inf"):
            raise InputError(f"`{name}` must be 0 {unit} or more; got {value}", params=(name,))
    if not 0 <= spike_angle < 180:
        raise InputError(f"`spike_angle` must be from 0 to 180 degrees; got {spike_angle}", params=("spike_angle",))


def done_tiles_of(delivery: Delivery, *, tiles: str | Path | None, done_only: bool) -> list[str] | None:
    """The store's done tiles when only they are checked (``done_only``), else None."""
    if not done_only:
        return None
    if tiles is None:
        raise InputError(
            "checking only the done tiles (`done_only`) needs a tile index (`tiles`)", params=("done_only", "tiles")
        )
    if delivery.done_tiles is None:
        raise InputError(f"{delivery.source}: is not a label store; only a store records which tiles are done")
    return delivery.done_tiles
