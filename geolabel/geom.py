"""Generic geometry helpers over arrays of shapely geometries (no labels, no I/O).

>>> import shapely
>>> squares = np.array([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3), shapely.box(2, 0, 4, 1)])
>>> sorted(zip(*(p.tolist() for p in intersecting_pairs(squares))))
[(0, 1), (0, 2), (1, 2)]
>>> sorted(zip(*(p.tolist() for p in intersecting_pairs(squares, interiors=True))))
[(0, 1)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

#: DE-9IM pattern: the interiors of two geometries share at least one point.
INTERIORS_INTERSECT = "T********"


def geometry_array(geoms: Iterable[Any], n: int) -> Any:
    """``n`` shapely geometries (or None) as a numpy object array.

    ``np.array(list_of_geometries, dtype=object)`` probes every element for the array
    protocols and costs about 0.8 µs each (0.1 s for a check's 100,000 findings);
    ``np.fromiter`` stores them as they are, 30 times faster.

    >>> import shapely
    >>> geometry_array((shapely.Point(i, 0) for i in range(3)), 3).shape
    (3,)
    """
    return np.fromiter(geoms, dtype=object, count=n)


def threaded(func: Callable[..., Any], *arrays: Any, min_size: int = 2000) -> Any:
    """``func(*arrays)`` for an element-wise shapely function, split over all cores.

    Shapely 2 releases the GIL inside its vectorised functions, so threads run GEOS in
    parallel without copying geometries between processes.
    """
    from concurrent.futures import ThreadPoolExecutor

    from geolabel.parallel import thread_count

    n = len(arrays[0])
    workers = min(thread_count(), max(1, n // min_size))
    if workers <= 1:
        return func(*arrays)
    chunks = np.array_split(np.arange(n), workers)
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda ix: func(*(a[ix] for a in arrays)), chunks))
    return np.concatenate(parts)


def polygonal_parts(geoms: Any) -> tuple[Any, Any]:
    """Explode geometries into Polygons: (parts, index of the source geometry of each part).

    Points, lines and empty parts are dropped (a GeometryCollection keeps its polygons).
    """
    import shapely

    parts, index = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    # GeometryCollections inside MultiPolygons are not possible; collections need a second pass
    nested = shapely.get_type_id(parts) == 7
    if nested.any():
        sub, sub_index = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], sub])
        index = np.concatenate([index[~nested], index[nested][sub_index]])
    multi = shapely.get_type_id(parts) == 6
    if multi.any():
        sub, sub_index = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        index = np.concatenate([index[~multi], index[multi][sub_index]])
    keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    parts, index = parts[keep], index[keep]
    order = np.argsort(index, kind="stable")
    return parts[order], index[order]


def groups(keys: Any) -> tuple[Any, Any, Any]:
    """For sorted ``keys``: start and size of each run of equal keys, and each item's rank
    within its run (round r of a vectorised loop takes the items of rank r).

    >>> [a.tolist() for a in groups(np.array([4, 4, 7, 9, 9, 9]))]
    [[0, 2, 3], [2, 1, 3], [0, 1, 0, 0, 1, 2]]
    """
    starts = np.r_[0, np.flatnonzero(np.diff(keys)) + 1]
    counts = np.diff(np.r_[starts, len(keys)])
    return starts, counts, np.arange(len(keys)) - np.repeat(starts, counts)


def components(n: int, left: Any, right: Any, *, min_size: int = 2) -> list[list[int]]:
    """Connected components of the graph of ``n`` nodes and edges (``left[k]``,
    ``right[k]``) with at least ``min_size`` nodes, each sorted, in order of their first node.

    >>> components(5, np.array([0, 3]), np.array([1, 1]), min_size=1)
    [[0, 1, 3], [2], [4]]
    """
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(left.tolist(), right.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    found: dict[int, list[int]] = {}
    nodes = range(n) if min_size <= 1 else sorted(set(left.tolist()) | set(right.tolist()))
    for i in nodes:
        found.setdefault(find(i), []).append(i)
    return [g for g in found.values() if len(g) >= min_size]


def intersecting_pairs(
    geoms: Any,
    *,
    interiors: bool = False,
    distance: float = 0.0,
    of: Sequence[int] | None = None,
) -> tuple[Any, Any]:
    """Index pairs (i < j) of geometries that intersect, found with one STRtree query.

    ``interiors``: only pairs whose interiors intersect (polygons that share area, not
    just an edge or a corner). ``distance`` > 0: pairs closer than that instead of
    intersecting. ``of``: only the pairs of these geometries with any other, as sorted
    unique pairs (the pairs of labels that changed); otherwise in the tree's order.
    """
    import shapely

    tree = shapely.STRtree(geoms)
    predicate, options = ("dwithin", {"distance": distance}) if distance > 0 else ("intersects", {})
    if of is None:
        left, right = tree.query(geoms, predicate=predicate, **options)
        keep = left < right
        left, right = left[keep], right[keep]
    else:
        mine = np.asarray(of, dtype=np.int64)
        q_idx, o_idx = tree.query(geoms[mine], predicate=predicate, **options)
        q_idx = mine[q_idx]
        other = q_idx != o_idx
        left, right = np.minimum(q_idx[other], o_idx[other]), np.maximum(q_idx[other], o_idx[other])
    if interiors and len(left):
        inner = interiors_intersect(geoms[left], geoms[right])
        left, right = left[inner], right[inner]
    if of is not None:
        pairs = np.unique(np.column_stack([left, right]), axis=0) if len(left) else np.zeros((0, 2), dtype=np.int64)
        left, right = pairs[:, 0], pairs[:, 1]
    return left, right


def interiors_intersect(a: Any, b: Any) -> Any:
    """Whether the interiors of ``a[k]`` and ``b[k]`` intersect (area shared, not just an
    edge or a corner), over all cores."""
    import shapely

    return threaded(lambda x, y: shapely.relate_pattern(x, y, INTERIORS_INTERSECT), a, b)


def near_boundary(geoms: Any, left: Any, right: Any, tolerance: float) -> Any:
    """Whether a vertex of ``geoms[left[k]]`` lies within ``tolerance`` of the boundary of
    ``geoms[right[k]]`` or the other way round (on it included), per pair.

    >>> import shapely
    >>> g = np.array([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3), shapely.box(2, 0, 4, 1)])
    >>> near_boundary(g, np.array([0, 0]), np.array([1, 2]), 1e-6).tolist()
    [False, True]
    """
    import shapely

    if not len(left):
        return np.zeros(0, dtype=bool)
    used, pairs = np.unique(np.concatenate([left, right]), return_inverse=True)
    left, right = pairs[: len(left)], pairs[len(left) :]  # positions in ``used``
    xy, owner = shapely.get_coordinates(geoms[used], return_index=True)
    points = shapely.points(xy)
    first = np.searchsorted(owner, np.arange(len(used)))
    count = np.bincount(owner, minlength=len(used))
    boundaries = shapely.boundary(geoms[used])

    def vertices_near(a: Any, b: Any) -> Any:
        n = count[a]
        pair = np.repeat(np.arange(len(a)), n)
        vertex = first[a][pair] + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        hit = threaded(lambda p, q: shapely.dwithin(p, q, tolerance), points[vertex], boundaries[b][pair])
        return np.bincount(pair[hit], minlength=len(a)) > 0

    return vertices_near(left, right) | vertices_near(right, left)


def to_pixels(geoms: Any, transform: tuple[float, ...]) -> Any:
    """Geometries in pixel coordinates (column, row; y grows downwards) of the raster
    with geotransform ``transform``.

    >>> import shapely
    >>> to_pixels(np.array([shapely.Point(105, 195)]), (10.0, 0.0, 100.0, 0.0, -10.0, 200.0))[0].wkt
    'POINT (0.5 0.5)'
    """
    import shapely

    return shapely.transform(geoms, lambda xy: pixel_coords(xy, transform))


def pixel_coords(xy: Any, transform: tuple[float, ...]) -> Any:
    """An (n, 2) array of x/y coordinates in pixels (column, row) of the raster with
    geotransform ``transform`` (the arithmetic of :func:`to_pixels`, on bare coordinates).

    >>> pixel_coords(np.array([[105.0, 195.0]]), (10.0, 0.0, 100.0, 0.0, -10.0, 200.0)).tolist()
    [[0.5, 0.5]]
    """
    from affine import Affine

    inv = ~Affine(*transform[:6])
    a, b, c, d, e, f = inv.a, inv.b, inv.c, inv.d, inv.e, inv.f
    return np.column_stack([a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f])
