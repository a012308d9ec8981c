"""Incremental checks: after a first check, later ones recompute only what changed.

:func:`check_changed` returns what :func:`~geolabel.qa.check_labels` would, plus a
:class:`CheckState` to pass to the next call. Only the labels that changed since that
state (added, edited, deleted: compared with what the state saw, so edits by any tool
count) are checked one by one; overlap pairs are found again only for them; gaps are
recomputed only in the cells (:mod:`geolabel.qa.partition`) that their old or new
outlines reach, plus :data:`~geolabel.qa.partition.MARGIN_M`. Everything else is kept
from the state and the findings and summaries are assembled by the same functions a
full check uses, so the result equals a full check's.

A check starts over (and says why in :attr:`CheckState.how`) when the state cannot be
reused: none yet, other options, another delivery or CRS, labels whose ids repeat, or
when the cells or the region the gaps are measured in moved (the labels' extent grew,
tiles were marked done).

>>> import tempfile, shapely
>>> from geolabel.labels.store import create_store
>>> from geolabel.qa import load_delivery
>>> path = f"{tempfile.mkdtemp()}/labels.gpkg"
>>> store = create_store(path, crs="EPSG:32649")
>>> boxes = [shapely.box(x, 0, x + 10, 10) for x in (0, 20, 40)]
>>> a, b, c = store.add_geometries(boxes, class_codes=[2, 2, 2])
>>> result, state = check_changed(load_delivery(path), None, workers=1)
>>> state.how, result.errors
('full: no earlier check', 0)
>>> store.update(b, geometry=shapely.box(5, 0, 15, 10))
2
>>> result, state = check_changed(load_delivery(path), state, workers=1)
>>> state.how, [f.type for f in result.findings]
('incremental: 1 labels changed, 0 deleted, 2 cells', ['overlap'])
>>> store.close()
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geolabel.garbage import fewer_collections
from geolabel.labels.delivery import Delivery
from geolabel.qa.findings import Features, Finding, QAResult
from geolabel.qa.label_stage import LabelOutcome, check_each_label, check_outside_each, subset
from geolabel.qa.partition import MARGIN_M, CellGrid, Partitioned, PartitionResult

Key = tuple[int, int, int, int]


@dataclass
class LabelState:
    """What a check kept of one label: a digest of what it was (``signature``), its
    findings with their place in a full check's order, and its polygon in metres (None:
    unusable)."""

    signature: bytes
    findings: list[tuple[Key, Finding]]
    geom: Any
    area: float
    bounds: Any  # of the repaired polygon in the delivery's CRS (None: unusable)


@dataclass
class CheckState:
    """A check's result as the next :func:`check_changed` reuses it."""

    options: dict[str, Any]
    source: str
    crs_wkt: str | None
    metric_wkt: str | None
    labels: dict[str, LabelState]
    file_findings: list[tuple[Key, Finding]]
    pairs: dict[tuple[str, str], Finding]  # the duplicate and overlap findings, by pair
    grid: CellGrid | None
    region_wkb: bytes | None
    cells: dict[tuple[int, int], tuple[list[bytes], list[tuple[int, bytes]]]]
    regions: tuple[Any, Any] = (None, None)
    regions_key: Any = None
    how: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    merged: dict[bytes, bytes] = field(default_factory=dict)  # unions of gap pieces across cells


def check_changed(
    delivery: Delivery,
    previous: CheckState | None,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    progress: Callable[[float], None] | None = None,
    **options: Any,
) -> tuple[QAResult, CheckState]:
    """(the result a full :func:`~geolabel.qa.check_labels` of ``delivery`` with
    ``options`` gives, the state for the next call), recomputing only what changed since
    ``previous`` (None: a full check)."""
    from geolabel.qa.check import check_options

    opts = check_options(**options)
    features = Features.of(delivery)
    reason = _why_full(previous, opts, delivery)
    if reason is None and previous is not None:
        done = _incremental(delivery, features, previous, opts, executor=executor, workers=workers)
        if isinstance(done, str):
            reason = done
        else:
            result, state = done
            _report(progress)
            return result, state
    result, state = _full(delivery, features, opts, executor=executor, workers=workers)
    state.how = f"full: {reason}"
    _report(progress)
    return result, state


def _report(progress: Callable[[float], None] | None) -> None:
    if progress is not None:
        progress(1.0)


def _why_full(previous: CheckState | None, opts: dict[str, Any], delivery: Delivery) -> str | None:
    """Why ``previous`` cannot be reused for ``delivery`` (None: it can)."""
    if previous is None:
        return "no earlier check"
    if previous.options != opts:
        return "the options changed"
    if previous.source != delivery.source:
        return "another delivery"
    if previous.crs_wkt != _wkt(delivery.crs):
        return "the CRS changed"
    if len(set(delivery.ids)) != len(delivery.ids):
        return "label ids repeat"
    return None


def _wkt(crs: Any) -> str | None:
    return crs.to_wkt() if crs is not None else None


@fewer_collections()  # a full check's objects: see geolabel.garbage (an incremental one makes few)
def _full(
    delivery: Delivery, features: Features, opts: dict[str, Any], *, executor: Executor | None, workers: int | None
) -> tuple[QAResult, CheckState]:
    """Every label checked, every cell measured: the state a later check starts from."""
    empty = CheckState(
        opts, delivery.source, _wkt(delivery.crs), None, {}, [], {}, None, None, {}, how="", extra={"full": True}
    )
    done = _incremental(delivery, features, empty, opts, executor=executor, workers=workers)
    assert not isinstance(done, str)  # nothing kept: nothing can have moved
    return done


def _incremental(
    delivery: Delivery,
    features: Features,
    previous: CheckState,
    opts: dict[str, Any],
    *,
    executor: Executor | None,
    workers: int | None,
) -> tuple[QAResult, CheckState] | str:
    """The check reusing ``previous``, or why it cannot (a sentence)."""
    from geolabel.qa.check import done_tiles_of
    from geolabel.qa.coverage import coverage_regions, gap_scope
    from geolabel.qa.partition import partition_plan

    full = bool(previous.extra.get("full"))
    signatures = _signatures(delivery, features)
    changed = _changed(delivery.ids, signatures, previous.labels)
    now = set(delivery.ids)
    gone = [i for i in previous.labels if i not in now]
    some = subset(delivery, changed)
    outcome = check_each_label(some, opts, kept_bounds=_kept_bounds(previous, delivery.ids, changed))
    if not full and outcome.metric_wkt != previous.metric_wkt:
        return "the labels moved to another metric CRS"
    labels = _label_states(delivery, changed, signatures, outcome, previous.labels)
    measured = _measured(delivery, labels, outcome.metric)
    done_tiles = done_tiles_of(delivery, tiles=opts["tiles"], done_only=opts["done_only"])
    regions, regions_key = _regions(measured, opts, done_tiles, previous, coverage_regions)
    region, outer, grid = partition_plan(measured.geoms, gap_scope(regions))
    region_wkb = _wkb(region)
    if not full and (grid != previous.grid or region_wkb != previous.region_wkb or regions_key != previous.regions_key):
        return "the cells or the region to cover changed (labels' extent, done tiles)"
    check_outside_each(outcome, some, regions, opts)
    moved = [previous.labels[delivery.ids[i]] for i in changed if delivery.ids[i] in previous.labels]
    moved += [previous.labels[i] for i in gone]
    moved += [labels[delivery.ids[i]] for i in changed]
    cells = _all_cells(grid) if full else _cells_reached(grid, [s.geom for s in moved])
    cell_pieces, found = _measure_cells(
        measured, region, grid, cells, previous.cells, executor=executor, workers=workers, want_pairs=full
    )
    tolerance = opts["overlap_tolerance"]
    if full:
        pairs = _pair_findings(measured, features, found, tolerance)
    else:
        pairs = _pairs(measured, features, changed, gone, previous.pairs, tolerance)
    pair_list = _ordered(pairs, measured, delivery.ids)
    if pair_list is None:
        return "the labels' order changed"
    merged: dict[bytes, bytes] = {}
    gaps = _gaps(cell_pieces, region, outer, previous.merged, merged)
    result = _assemble(delivery, features, measured, labels, outcome, pair_list, gaps, regions, opts)
    how = "" if full else f"incremental: {len(changed)} labels changed, {len(gone)} deleted, {len(cells)} cells"
    state = CheckState(
        opts, delivery.source, _wkt(delivery.crs), outcome.metric_wkt, labels, outcome.file_findings, pairs,
        grid, region_wkb, cell_pieces, regions, regions_key, how, merged=merged,
    )  # fmt: skip
    return result, state


def _signatures(delivery: Delivery, features: Features) -> list[bytes]:
    """A digest of what each label's findings depend on: its geometry (WKB), class and
    attributes (a digest, so a saved state holds no values of unknown types)."""
    import hashlib

    import shapely

    wkb = shapely.to_wkb(np.asarray(delivery.geoms, dtype=object)).tolist()
    extra = [delivery.extra[k] for k in sorted(delivery.extra)]
    rest = [
        repr((int(delivery.codes[i]), delivery.class_values[i], features.names[i], delivery.labelers[i],
              delivery.teams[i], *(e[i] for e in extra))).encode()
        for i in range(len(wkb))
    ]  # fmt: skip
    # the WKB hashed as bytes, its length first (its repr would cost as much again)
    geoms = [b"n" if w is None else b"g" + len(w).to_bytes(8, "little") + w for w in wkb]
    return [hashlib.blake2b(g + r, digest_size=16).digest() for g, r in zip(geoms, rest)]


def _changed(ids: list[str], signatures: list[bytes], known: dict[str, LabelState]) -> list[int]:
    """Indices of the labels that are new or differ from what ``known`` saw."""
    out = []
    for i, (label, sig) in enumerate(zip(ids, signatures)):
        old = known.get(label)
        if old is None or old.signature != sig:
            out.append(i)
    return out


def _kept_bounds(previous: CheckState, ids: list[str], changed: list[int]) -> Any:
    """Bounds (delivery CRS) of the usable labels kept from ``previous``: with the
    changed ones', they say which metric CRS measures all of them."""
    mine = {ids[i] for i in changed}
    boxes = [previous.labels[i].bounds for i in ids if i not in mine and i in previous.labels]
    return np.array([b for b in boxes if b is not None], dtype=float).reshape(-1, 4)


def _label_states(
    delivery: Delivery,
    changed: list[int],
    signatures: list[bytes],
    outcome: LabelOutcome,
    known: dict[str, LabelState],
) -> dict[str, LabelState]:
    """Every current label's state: the changed ones from ``outcome``, the rest as known."""
    states = {label: known[label] for label in delivery.ids if label in known}
    for k, i in enumerate(changed):
        label = delivery.ids[i]
        states[label] = LabelState(
            signatures[i], outcome.findings[k], outcome.geoms[k], outcome.areas[k], outcome.bounds[k]
        )
    return states


def _measured(delivery: Delivery, labels: dict[str, LabelState], metric: Any) -> Any:
    """The usable polygons in metres, in delivery order, as a full check measures them."""
    from geolabel.qa.validity import Measured

    index, geoms, areas = [], [], []
    for i, label in enumerate(delivery.ids):
        s = labels[label]
        if s.geom is not None:
            index.append(i)
            geoms.append(s.geom)
            areas.append(s.area)
    crs = metric if metric is not None else delivery.crs
    return Measured(np.array(index, dtype=np.int64), _objects(geoms), np.array(areas, dtype=float), crs)


def _objects(values: list[Any]) -> Any:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _regions(measured: Any, opts: dict[str, Any], done_tiles: Any, previous: CheckState, read: Any) -> tuple[Any, Any]:
    """(the regions of :func:`~geolabel.qa.coverage.coverage_regions`, the key they were
    read under): read again only when the AOI or tile index file, the done tiles or the
    metric CRS changed."""
    key = (
        _file_stamp(opts["aoi"]), _file_stamp(opts["tiles"]), tuple(done_tiles) if done_tiles is not None else None,
        _wkt(measured.crs),
    )  # fmt: skip
    if previous.regions_key == key:
        return previous.regions, key
    return read(measured, aoi=opts["aoi"], tiles=opts["tiles"], done_tiles=done_tiles), key


def _file_stamp(path: Any) -> Any:
    """(path, size, modification time) of a file option, so an edited file is read again."""
    if path is None:
        return None
    if isinstance(path, tuple):  # (path, layer)
        return (_file_stamp(path[0]), path[1:])
    try:
        st = Path(str(path)).stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_size, st.st_mtime_ns)


def _wkb(geom: Any) -> bytes | None:
    import shapely

    return None if geom is None else bytes(shapely.to_wkb(geom))


def _all_cells(grid: CellGrid) -> set[tuple[int, int]]:
    return {(ix, iy) for iy in range(grid.ny) for ix in range(grid.nx)}


def _cells_reached(grid: CellGrid, geoms: list[Any]) -> set[tuple[int, int]]:
    """The cells whose window (the cell plus :data:`MARGIN_M`, where a cell looks for
    labels) a bounding box of ``geoms`` reaches, touching included."""
    import shapely

    cells: set[tuple[int, int]] = set()
    for g in geoms:
        if g is None:
            continue
        minx, miny, maxx, maxy = shapely.bounds(g).tolist()
        ix0, ix1 = _span(minx, maxx, grid.x0, grid.size, grid.nx)
        iy0, iy1 = _span(miny, maxy, grid.y0, grid.size, grid.ny)
        cells.update((ix, iy) for ix in range(ix0, ix1 + 1) for iy in range(iy0, iy1 + 1))
    return cells


def _span(lo: float, hi: float, origin: float, size: float, n: int) -> tuple[int, int]:
    """First and last cell (of ``n``) whose window reaches [``lo``, ``hi``]."""
    first = math.ceil((lo - MARGIN_M - origin) / size) - 1
    last = math.floor((hi + MARGIN_M - origin) / size)
    return max(first, 0), min(last, n - 1)


def _measure_cells(
    measured: Any,
    region: Any,
    grid: CellGrid,
    cells: set[tuple[int, int]],
    known: dict[tuple[int, int], tuple[list[bytes], list[tuple[int, bytes]]]],
    *,
    executor: Executor | None,
    workers: int | None,
    want_pairs: bool,
) -> tuple[dict[tuple[int, int], tuple[list[bytes], list[tuple[int, bytes]]]], Any]:
    """(every cell's gap pieces: ``cells`` measured again, the rest as ``known``, the
    overlap pairs the measured cells own when ``want_pairs``: (left, right, equal,
    intersection WKB)), one task per cell."""
    from geolabel.parallel import run_batch
    from geolabel.qa.partition import PartitionTask, check_partition, partition_tasks
    from geolabel.shared import published_for

    pieces = dict(known)
    results: list[PartitionResult] = []
    if region is None or not cells:
        return pieces, _pairs_of_results([])

    def collect(task: PartitionTask, result: PartitionResult) -> None:
        pieces[(task.ix0, task.iy0)] = (result.closed, result.border)
        results.append(result)

    with published_for(executor, measured.geoms) as key:  # before the local pool forks
        tasks = partition_tasks(
            measured.geoms, region, grid, block=1, include_region=True, only=cells, pairs=want_pairs, shared=key
        )
        one = executor is None and len(tasks) <= 1
        run_batch(check_partition, tasks, on_result=collect, executor=executor, workers=1 if one else workers)
    return pieces, _pairs_of_results(results if want_pairs else [])


def _pairs_of_results(results: list[PartitionResult]) -> tuple[Any, Any, Any, Any]:
    """The cells' pairs (left, right, equal, intersection WKB), by measured index."""
    index = np.zeros(0, dtype=np.int64)
    empty = PartitionResult(index, index, np.zeros(0, dtype=bool), np.zeros(0, dtype=object), [], [])
    results = [empty, *results]
    return (
        np.concatenate([r.left for r in results]).astype(np.int64),
        np.concatenate([r.right for r in results]).astype(np.int64),
        np.concatenate([r.same for r in results]).astype(bool),
        np.concatenate([r.overlap for r in results]).astype(object),
    )


def _pair_findings(measured: Any, features: Features, found: Any, tolerance: float) -> dict[tuple[str, str], Finding]:
    """The findings of the pairs ``found`` (left, right, equal, intersection WKB, by
    measured index) as a full check makes them, by the pair's label ids."""
    import shapely

    from geolabel.qa.overlaps import pair_findings

    left, right, same, overlap = found
    overlap = overlap.copy()
    has = overlap != None  # noqa: E711 - element-wise on an object array
    overlap[has] = shapely.from_wkb(overlap[has])
    found_pairs = Partitioned(left, right, same, overlap, None)
    keys, findings = pair_findings(measured, features, found_pairs, tolerance=tolerance)
    ids, index = features.ids, measured.index
    return {(ids[index[a]], ids[index[b]]): f for (a, b), f in zip(keys, findings)}


def _pairs(
    measured: Any,
    features: Features,
    changed: list[int],
    gone: list[str],
    known: dict[tuple[str, str], Finding],
    tolerance: float,
) -> dict[tuple[str, str], Finding]:
    """The pairs' findings by label ids: ``known`` without the changed and deleted
    labels', plus those of the changed labels' pairs found again (as a cell finds them)."""
    from geolabel.geom import intersecting_pairs
    from geolabel.qa.partition import overlapping_pairs

    ids = features.ids
    dropped = {ids[i] for i in changed} | set(gone)
    pairs = {k: v for k, v in known.items() if k[0] not in dropped and k[1] not in dropped}
    position = {int(i): k for k, i in enumerate(measured.index.tolist())}
    mine = [position[i] for i in changed if i in position]
    if not mine or len(measured.geoms) < 2:
        return pairs
    left, right = intersecting_pairs(measured.geoms, of=mine)
    pairs.update(_pair_findings(measured, features, overlapping_pairs(measured.geoms, left, right), tolerance))
    return pairs


def _ordered(pairs: dict[tuple[str, str], Finding], measured: Any, ids: list[str]) -> list[Finding] | None:
    """The pairs' findings in a full check's order: duplicates, then overlaps, each by
    (left, right) position; None when a kept pair's labels no longer come in its order."""
    position = {ids[i]: k for k, i in enumerate(measured.index.tolist())}
    findings = list(pairs.values())
    left = np.array([position[a] for a, _ in pairs], dtype=np.int64)
    right = np.array([position[b] for _, b in pairs], dtype=np.int64)
    if bool(np.any(left >= right)):
        return None
    overlap = np.array([f.type != "duplicate" for f in findings], dtype=bool)
    return [findings[k] for k in np.lexsort((right, left, overlap)).tolist()]


def _gaps(cells: dict[Any, Any], region: Any, outer: Any, known: Any, made: Any) -> Any:
    """The gaps from every cell's pieces, merged as a full check merges them (groups of
    pieces merged before taken from ``known``, this run's merges into ``made``)."""
    from geolabel.qa.partition import final_gaps

    empty = np.zeros(0, dtype=np.int64)
    results = [
        PartitionResult(empty, empty, empty, empty, closed, border)
        for _, (closed, border) in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    return final_gaps(results, region, outer, known, made)


def _assemble(
    delivery: Delivery,
    features: Features,
    measured: Any,
    labels: dict[str, LabelState],
    outcome: LabelOutcome,
    pair_list: list[Finding],
    gaps: Any,
    regions: tuple[Any, Any],
    opts: dict[str, Any],
) -> QAResult:
    """The result, composed as :func:`~geolabel.qa.check_labels` composes it."""
    from geolabel.qa.attributes import check_empty
    from geolabel.qa.check import finish_result
    from geolabel.qa.coverage import check_gaps
    from geolabel.qa.tags import check_tags

    tagged = list(outcome.file_findings)
    for i, label in enumerate(delivery.ids):
        tagged += [((stage, step, i, seq), f) for (stage, step, _, seq), f in labels[label].findings]
    tagged.sort(key=lambda kf: kf[0])
    findings = check_empty(delivery) + outcome.crs_findings + [f for _, f in tagged]
    findings += pair_list
    coverage = check_gaps(
        gaps, regions=regions, aoi=opts["aoi"] is not None, done_only=opts["done_only"],
        min_area=opts["min_area"], tolerance=opts["overlap_tolerance"],
    )  # fmt: skip
    findings += coverage.findings
    findings += check_tags(delivery, tiles=opts["tiles"], crs=measured.crs)  # cheap: computed again each time
    return finish_result(delivery, features, measured, findings, coverage, opts["settings"])
