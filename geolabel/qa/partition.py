"""Overlaps and gaps checked partition by partition, so a check runs on an executor.

The labels' extent is cut into square *cells* whose size depends only on the data
(:func:`cell_grid`); a *partition* is a block of cells and is one task. Each task gets
plain values (WKB of the labels reaching its block, the gap region clipped to it) and
returns plain values, so it runs in a worker process or on a Dask cluster:

- overlap pairs: a pair belongs to the cell holding the lower-left corner of the
  intersection of the two bounding boxes, so it is found exactly once;
- gaps: per cell, the region minus the union of the labels reaching the cell (plus a
  margin), cut to the cell. Pieces inside a cell are final; pieces touching the cell's
  border are merged across cells afterwards (:func:`merge_gap_pieces`).

Cells, not partitions, decide every geometry, so the result is the same for any
partition size, worker count or executor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from geolabel.crs import FLOATING_CLEARANCE_M, OVERLAY_GRID_M

#: About this many labels per cell: enough work per cell to pay for the labels that
#: cross its border, small enough for tasks on every core.
CELL_LABELS = 500
#: Labels this far beyond a cell are unioned with it, so snapping inside the cell sees
#: every label nearby (m; far above the overlay grid).
MARGIN_M = 1.0
#: A gap piece this close to its cell's border is merged with its neighbours (m): a cut
#: computed in floating point may land a hair beside the border line.
TOUCH_M = 1e-6


@dataclass(frozen=True)
class CellGrid:
    """Square cells of ``size`` from (``x0``, ``y0``): ``nx`` columns, ``ny`` rows."""

    x0: float
    y0: float
    size: float
    nx: int
    ny: int

    def box(self, ix: int, iy: int, margin: float = 0.0) -> Any:
        import shapely

        x, y = self.x0 + ix * self.size, self.y0 + iy * self.size
        return shapely.box(x - margin, y - margin, x + self.size + margin, y + self.size + margin)

    def cell_of(self, x: Any, y: Any) -> tuple[Any, Any]:
        """(column, row) of the cell holding each point (half-open cells, clipped to the grid)."""
        ix = np.clip(np.floor((np.asarray(x) - self.x0) / self.size), 0, self.nx - 1).astype(np.int64)
        iy = np.clip(np.floor((np.asarray(y) - self.y0) / self.size), 0, self.ny - 1).astype(np.int64)
        return ix, iy


def cell_grid(bounds: tuple[float, float, float, float], n_labels: int) -> CellGrid:
    """Cells over ``bounds`` sized for about :data:`CELL_LABELS` labels each: a power of
    two in metres, aligned to its own multiples, so the same data gets the same cells.

    >>> cell_grid((0.0, 0.0, 3000.0, 1000.0), 12_000)
    CellGrid(x0=0.0, y0=0.0, size=512.0, nx=6, ny=2)
    """
    minx, miny, maxx, maxy = bounds
    area = max((maxx - minx) * (maxy - miny), 1.0)
    size = 2.0 ** max(4, math.ceil(math.log2(math.sqrt(area * CELL_LABELS / max(n_labels, 1)))))
    x0, y0 = math.floor(minx / size) * size, math.floor(miny / size) * size
    nx = max(1, math.ceil((maxx - x0) / size) + (maxx - x0 == 0))
    ny = max(1, math.ceil((maxy - y0) / size) + (maxy - y0 == 0))
    return CellGrid(x0, y0, size, nx, ny)


@dataclass(frozen=True)
class PartitionTask:
    """One block of cells: columns ``ix0..ix1-1``, rows ``iy0..iy1-1`` of ``grid``; the
    labels reaching it (global ``index``, ``wkb``) and the gap ``region`` cut to it
    (WKB; None: no gaps to measure)."""

    grid: CellGrid
    ix0: int
    ix1: int
    iy0: int
    iy1: int
    index: Any
    wkb: Any  # None when the labels are ``shared``
    region: bytes | None
    pairs: bool = True  # False: gap pieces only (an incremental check has the pairs)
    shared: str | None = None  # the key all labels are published under (geolabel.shared)

    def labels(self) -> Any:
        """The labels reaching the block."""
        import shapely

        from geolabel.shared import lookup

        return lookup(self.shared)[self.index] if self.shared is not None else shapely.from_wkb(self.wkb)


@dataclass
class PartitionResult:
    """Duplicate and overlap candidates (global index pairs, ``left < right``), and gap
    pieces: final ones, and ones touching their cell's border with the cell's number."""

    left: Any
    right: Any
    same: Any
    overlap: Any  # WKB of the intersection (None for duplicates)
    closed: list[bytes]
    border: list[tuple[int, bytes]]


def partition_tasks(
    geoms: Any,
    region: Any,
    grid: CellGrid,
    *,
    block: int,
    include_region: bool,
    only: Any = None,
    pairs: bool = True,
    shared: str | None = None,
) -> list[PartitionTask]:
    """The tasks of ``block`` x ``block`` cells, in row-major order, each with the labels
    whose bounding box reaches the block (plus :data:`MARGIN_M`); ``only``: just the
    blocks whose first cell (column, row) is in it; ``pairs`` False: no overlap pairs;
    ``shared``: the key ``geoms`` are published under (the tasks carry no WKB)."""
    import shapely

    tree = shapely.STRtree(geoms)
    tasks = []
    for iy0 in range(0, grid.ny, block):
        for ix0 in range(0, grid.nx, block):
            if only is not None and (ix0, iy0) not in only:
                continue
            ix1, iy1 = min(ix0 + block, grid.nx), min(iy0 + block, grid.ny)
            x, y = grid.x0 + ix0 * grid.size, grid.y0 + iy0 * grid.size
            window = shapely.box(
                x - MARGIN_M, y - MARGIN_M, grid.x0 + ix1 * grid.size + MARGIN_M, grid.y0 + iy1 * grid.size + MARGIN_M
            )
            index = np.sort(tree.query(window))
            part = None
            if include_region:
                part = shapely.to_wkb(_clip(region, window))
            wkb = shapely.to_wkb(geoms[index]) if shared is None else None
            tasks.append(PartitionTask(grid, ix0, ix1, iy0, iy1, index, wkb, part, pairs, shared))
    return tasks


def check_partition(task: PartitionTask) -> PartitionResult:
    """Overlap candidates owned by the block and gap pieces of its cells (a task)."""
    import shapely

    from geolabel.geom import intersecting_pairs, near_boundary

    geoms = task.labels()
    left, right = intersecting_pairs(geoms)
    fragile = near_boundary(geoms, left, right, FLOATING_CLEARANCE_M)
    mine = _owned(task, geoms, left, right) if task.pairs else np.zeros(len(left), dtype=bool)
    left_, right_, same, overlap = overlapping_pairs(geoms, left[mine], right[mine], fragile[mine])
    closed: list[bytes] = []
    border: list[tuple[int, bytes]] = []
    if task.region is not None:
        region = shapely.from_wkb(task.region)
        tree = shapely.STRtree(geoms)
        touchy = (left[fragile], right[fragile])
        for iy in range(task.iy0, task.iy1):
            for ix in range(task.ix0, task.ix1):
                _cell_gaps(task.grid, ix, iy, geoms, tree, touchy, region, closed, border)
    return PartitionResult(task.index[left_], task.index[right_], same, overlap, closed, border)


def _owned(task: PartitionTask, geoms: Any, left: Any, right: Any) -> Any:
    """Which of the pairs the block owns: the lower-left corner of the intersection of the
    two bounding boxes lies in one of its cells."""
    import shapely

    bounds = shapely.bounds(geoms)
    ix, iy = task.grid.cell_of(
        np.maximum(bounds[left, 0], bounds[right, 0]), np.maximum(bounds[left, 1], bounds[right, 1])
    )
    return (ix >= task.ix0) & (ix < task.ix1) & (iy >= task.iy0) & (iy < task.iy1)


def overlapping_pairs(geoms: Any, left: Any, right: Any, fragile: Any = None) -> tuple[Any, Any, Any, Any]:
    """(left, right, equal, intersection WKB) of the candidate pairs (``left[k]``,
    ``right[k]``) whose interiors meet (equal pairs as duplicates, without an intersection).

    ``fragile[k]``: the pair has a vertex within :data:`FLOATING_CLEARANCE_M` of the
    other's boundary (computed when not given); only those are overlaid on the grid."""
    import shapely

    from geolabel.geom import interiors_intersect, near_boundary

    if fragile is None:
        fragile = near_boundary(geoms, left, right, FLOATING_CLEARANCE_M)
    same = shapely.equals(geoms[left], geoms[right])
    inner = same.copy()
    inner[~same] = interiors_intersect(geoms[left[~same]], geoms[right[~same]])
    left, right, same, fragile = left[inner], right[inner], same[inner], fragile[inner]
    overlap = np.full(len(left), None, dtype=object)
    for on_grid in (False, True):
        pick = ~same & (fragile == on_grid)
        grid = OVERLAY_GRID_M if on_grid else None
        overlap[pick] = shapely.to_wkb(shapely.intersection(geoms[left[pick]], geoms[right[pick]], grid_size=grid))
    return left, right, same, overlap


def _cell_gaps(
    grid: CellGrid,
    ix: int,
    iy: int,
    geoms: Any,
    tree: Any,
    touchy: tuple[Any, Any],
    region: Any,
    closed: list[bytes],
    border: Any,
) -> None:
    """The region minus the labels in cell (``ix``, ``iy``): pieces inside the cell to
    ``closed``, pieces touching its border to ``border``. ``touchy``: the pairs too close
    for a floating overlay; the cell's labels are unioned on the grid if two of them are
    such a pair (decided by the cell's labels alone, so any partitioning agrees)."""
    import shapely

    from geolabel.geom import polygonal_parts

    cell, window = grid.box(ix, iy), grid.box(ix, iy, MARGIN_M)
    near = np.sort(tree.query(window))
    on_grid = bool((np.isin(touchy[0], near) & np.isin(touchy[1], near)).any())
    grid_size = OVERLAY_GRID_M if on_grid else None
    cover = shapely.union_all(geoms[near], grid_size=grid_size) if len(near) else shapely.Polygon()
    # normalised: the block a cell's region was cut from must not change where rings start
    local = shapely.normalize(_clip(region, window))
    gaps = shapely.intersection(shapely.difference(local, cover, grid_size=OVERLAY_GRID_M), cell)
    parts, _ = polygonal_parts(np.array([gaps], dtype=object))
    parts = shapely.normalize(parts)
    if not len(parts):
        return
    touching = shapely.dwithin(shapely.boundary(cell), parts, TOUCH_M)
    closed.extend(shapely.to_wkb(parts[~touching]).tolist())
    number = iy * grid.nx + ix
    border.extend((number, w) for w in shapely.to_wkb(parts[touching]).tolist())


def _clip(region: Any, window: Any) -> Any:
    """``region`` cut to ``window``, polygons only: where the region only touches the
    window's edge, GEOS adds lines and points, and the next overlay refuses such
    mixed-dimension input."""
    import shapely

    from geolabel.geom import polygonal_parts

    cut = shapely.intersection(region, window, grid_size=OVERLAY_GRID_M)
    if shapely.get_type_id(cut) != 7:  # not a GeometryCollection: one dimension already
        return cut
    parts, _ = polygonal_parts(np.array([cut], dtype=object))
    return shapely.multipolygons(parts)


def merge_gap_pieces(results: list[PartitionResult], known: Any = None, made: Any = None) -> Any:
    """Every gap as one polygon: the closed pieces as they are, the border pieces unioned
    across cells group by group (pieces touching each other), sorted by their bounds so the
    order never depends on which task finished first.

    ``known``: unions of earlier runs by :func:`_group_key` (reused, so an incremental
    check merges only the groups it changed); ``made``: receives the unions of this run."""
    import shapely

    from geolabel.geom import polygonal_parts

    closed = shapely.from_wkb([w for r in results for w in r.closed])
    border = sorted((n, w) for r in results for n, w in r.border)
    parts = [np.asarray(closed, dtype=object)]
    if border:
        merged = _merge_border([w for _, w in border], known or {}, {} if made is None else made)
        parts.append(polygonal_parts(merged)[0])
    gaps = np.concatenate(parts) if parts else np.zeros(0, dtype=object)
    order = np.lexsort(shapely.bounds(gaps).T[::-1]) if len(gaps) else np.zeros(0, dtype=np.int64)
    return gaps[order]


def _merge_border(wkbs: list[bytes], known: dict[bytes, bytes], made: dict[bytes, bytes]) -> Any:
    """The union of each group of border pieces within :data:`TOUCH_M` of each other."""
    import shapely

    from geolabel.geom import components

    pieces = shapely.from_wkb(wkbs)
    left, right = shapely.STRtree(pieces).query(pieces, predicate="dwithin", distance=TOUCH_M)
    out = []
    for group in components(len(pieces), left, right, min_size=1):
        if len(group) == 1:
            out.append(pieces[group[0]])
            continue
        key = _group_key([wkbs[i] for i in group])
        wkb = known.get(key) or shapely.to_wkb(shapely.union_all(pieces[group]))
        made[key] = wkb
        out.append(shapely.from_wkb(wkb))
    return np.array(out, dtype=object)


def _group_key(wkbs: list[bytes]) -> bytes:
    """A digest of a group's pieces (each WKB with its length first)."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for w in wkbs:
        digest.update(len(w).to_bytes(8, "little") + w)
    return digest.digest()


@dataclass
class Partitioned:
    """What the partitions found: candidate pairs sorted by (left, right), and the gaps
    (None when no gap region was given and labels enclose none)."""

    left: Any
    right: Any
    same: Any
    overlap: Any  # intersection geometries (None for duplicates)
    gaps: Any


def run_partitions(
    geoms: Any,
    gap_region: Any,
    *,
    workers: int | None,
    executor: Any,
    partition_size: float | None,
    progress: Any = None,
    meanwhile: Callable[[], None] | None = None,
) -> Partitioned:
    """Overlap candidates and gaps of ``geoms``, found per partition on ``executor`` (or
    ``workers`` local processes). ``gap_region`` None: the gaps are the areas enclosed
    by labels (what is left of a box around them once the part reaching its edge is
    dropped). ``meanwhile`` is called once, in this thread, while the first partitions
    run (work that needs no partition: it then costs the machine's idle moments)."""
    from geolabel.parallel import run_batch, worker_count
    from geolabel.shared import published_for

    n = worker_count(workers) if executor is None else 0
    region, outer, grid = partition_plan(geoms, gap_region)
    block = _block(grid, partition_size, n)
    results: list[PartitionResult] = []
    with published_for(executor, geoms) as key:  # before the local pool forks
        tasks = partition_tasks(geoms, region, grid, block=block, include_region=region is not None, shared=key)

        def collect(_: PartitionTask, result: PartitionResult) -> None:
            results.append(result)
            if progress is not None:
                progress(len(results) / len(tasks))

        waiting = [meanwhile] if meanwhile is not None else []

        def started() -> None:
            while waiting:
                waiting.pop()()

        one = executor is None and len(tasks) == 1  # nothing to share out: no pool
        run_batch(
            check_partition,
            tasks,
            on_result=collect,
            executor=executor,
            workers=1 if one else workers,
            on_started=started,
        )
    started()  # no partition was queued
    return _pairs_of(results, final_gaps(results, region, outer))


def partition_plan(geoms: Any, gap_region: Any) -> tuple[Any, Any, CellGrid]:
    """(the region gaps are measured in, the box around the labels when that region is
    theirs, else None, the cells): what :func:`run_partitions` cuts into tasks."""
    region, outer = (gap_region, None) if gap_region is not None else _enclosing_box(geoms)
    return region, outer, cell_grid(_extent(geoms, region), len(geoms))


def final_gaps(results: list[PartitionResult], region: Any, outer: Any, known: Any = None, made: Any = None) -> Any:
    """The gaps of the cells' pieces (none without a region); with the labels' own box as
    the region, without the part reaching its edge (the outside, not a gap)."""
    import shapely

    gaps = merge_gap_pieces(results, known, made) if region is not None else np.zeros(0, dtype=object)
    if outer is not None and len(gaps):
        gaps = gaps[~shapely.dwithin(shapely.boundary(outer), gaps, TOUCH_M)]
    return gaps


def _pairs_of(results: list[PartitionResult], gaps: Any) -> Partitioned:
    """The tasks' pairs in one canonical order (by left, then right index)."""
    import shapely

    left = np.concatenate([r.left for r in results]).astype(np.int64)
    right = np.concatenate([r.right for r in results]).astype(np.int64)
    same = np.concatenate([r.same for r in results]).astype(bool)
    overlap = np.concatenate([r.overlap for r in results]).astype(object)
    order = np.lexsort((right, left))
    overlap = overlap[order]
    has = overlap != None  # noqa: E711 - element-wise on an object array
    overlap[has] = shapely.from_wkb(overlap[has])
    return Partitioned(left[order], right[order], same[order], overlap, gaps)


def _enclosing_box(geoms: Any) -> tuple[Any, Any]:
    """(region, the same box): whole metres around the labels plus a margin, or (None,
    None) without labels."""
    import shapely

    if not len(geoms):
        return None, None
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    pad = 2 * MARGIN_M
    box = shapely.box(math.floor(minx) - pad, math.floor(miny) - pad, math.ceil(maxx) + pad, math.ceil(maxy) + pad)
    return box, box


def _extent(geoms: Any, region: Any) -> tuple[float, float, float, float]:
    """Bounds of the labels and the region together."""
    import shapely

    boxes = [shapely.total_bounds(geoms)] if len(geoms) else []
    if region is not None and not region.is_empty:
        boxes.append(np.asarray(region.bounds))
    if not boxes or not np.isfinite(np.array(boxes)).all():
        return (0.0, 0.0, 0.0, 0.0)
    b = np.array(boxes)
    return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))


def _block(grid: CellGrid, partition_size: float | None, workers: int) -> int:
    """Cells per partition side: from ``partition_size`` (m), else about twelve
    partitions per local worker (16 on an executor: its size is unknown here). Local
    workers share the labels (no copy per task), so many small partitions cost little
    and let the workers finish together (50,000 labels on 2 workers: 3.43 s with 25
    partitions, 3.62 s with 9 of uneven sizes)."""
    if partition_size is not None:
        return max(1, math.ceil(partition_size / grid.size))
    target = 12 * workers if workers else 16
    return max(1, math.ceil(math.sqrt(grid.nx * grid.ny / target)))
