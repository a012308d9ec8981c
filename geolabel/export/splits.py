"""Spatial train/val/test splits that cannot leak.

Random tile splits leak: neighbouring (let alone overlapping) chips share objects and
context, so a model "sees" the test set in training. geolabel splits by spatial blocks
and then enforces a guard:

1. tiles are grouped into square blocks of ``block_size`` map units (by tile centre);
2. blocks, not tiles, are shuffled with ``seed`` and dealt to the splits so that each
   split gets close to its fraction of the tiles;
3. any two tiles in different splits that overlap, or whose gap is smaller than
   ``guard`` map units, are a leak: the tile in the larger split (train before val
   before test) is excluded from the dataset.

Neighbours that only share an edge do not overlap, even when floating point puts their
edges a unit in the last place apart (chip origins are ``origin + col * pixel``). Chips on
one pixel grid (same CRS, pixel size and origin: the chips of one scene) are compared by
their pixel offsets and sizes, which are exact integers; other pairs (different scenes,
reprojected footprints) by geometry, ignoring overlaps and gaps thinner than
:data:`EDGE_TOLERANCE_PX` of a pixel.

The result is deterministic for a seed.

>>> import shapely
>>> tiles = [shapely.box(x, 0, x + 10, 10) for x in range(0, 100, 10)]
>>> result = spatial_split(tiles, fractions={"train": 0.8, "test": 0.2}, block_size=20, seed=1)
>>> sorted(set(result.splits) - {None}), len(result.excluded)
(['test', 'train'], 0)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geolabel.errors import InputError

SPLIT_NAMES = ("train", "val", "test")
#: Overlaps and gaps thinner than this fraction of a pixel are floating point noise.
EDGE_TOLERANCE_PX = 0.01
#: Without pixel grids: noise tolerance relative to the coordinates' magnitude.
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PixelBox:
    """Where a chip lies on its pixel grid: offsets and size in pixels.

    ``grid`` is equal for chips that share one pixel grid (CRS, pixel size and origin),
    so their overlap can be decided on integers.

    >>> a = PixelBox.of("EPSG:32617", (29.906, 0.0, 703986.5, 0.0, -29.883, 4254601.9), 0, 0, 64, 64)
    >>> b = PixelBox.of("EPSG:32617", (29.906, 0.0, 703986.5 + 64 * 29.906, 0.0, -29.883, 4254601.9), 0, 64, 64, 64)
    >>> a.grid == b.grid, a.overlaps(b)
    (True, False)
    """

    grid: Hashable
    row_off: int
    col_off: int
    width: int
    height: int

    @classmethod
    def of(cls, crs: str, transform: Sequence[float], row_off: int, col_off: int, width: int, height: int) -> PixelBox:
        """The box of a chip with geotransform ``transform`` at ``row_off``/``col_off`` of its grid."""
        a, b, c, d, e, f = (float(v) for v in transform[:6])
        pixel = max(abs(a), abs(b), abs(d), abs(e)) or 1.0
        x0 = c - a * col_off - b * row_off
        y0 = f - d * col_off - e * row_off
        # the grid origin to a millionth of a pixel: the chips' float noise does not split a grid
        key = (crs, a, b, d, e, round(x0 / pixel * 1e6), round(y0 / pixel * 1e6))
        return cls(key, int(row_off), int(col_off), int(width), int(height))

    def overlaps(self, other: PixelBox) -> bool:
        """Whether the two boxes share pixels (both must be on one grid)."""
        return bool(_interval_overlap(self, other))


def _interval_overlap(p: Any, q: Any) -> Any:
    """Pixel boxes (or arrays of their fields) share at least one pixel."""
    rows = np.maximum(p.row_off, q.row_off) < np.minimum(p.row_off + p.height, q.row_off + q.height)
    cols = np.maximum(p.col_off, q.col_off) < np.minimum(p.col_off + p.width, q.col_off + q.width)
    return rows & cols


def parse_split(text: str | Sequence[float] | Mapping[str, float] | None) -> dict[str, float]:
    """``'0.8,0.1,0.1'`` -> {'train': 0.8, 'val': 0.1, 'test': 0.1}; fractions must sum to 1.

    >>> parse_split("0.7,0.3")
    {'train': 0.7, 'val': 0.3}
    """
    if text is None:
        return {"train": 1.0}
    try:
        if isinstance(text, Mapping):
            fractions = {str(k): float(v) for k, v in text.items()}
        else:
            values = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
            if not 1 <= len(values) <= 3:
                raise InputError(f"`split` takes 1 to 3 fractions (train,val,test); got {text!r}", params=("split",))
            fractions = dict(zip(SPLIT_NAMES, values))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(
            f"`split` {text!r} must be fractions for train,val,test (e.g. 0.8,0.1,0.1)", params=("split",)
        ) from None
    if not all(0 <= v <= 1 for v in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise InputError(f"`split` fractions must be >= 0 and sum to 1; got {text!r}", params=("split",))
    return {k: v for k, v in fractions.items() if v > 0}


@dataclass
class SplitResult:
    """``splits[i]`` is the split of tile i, or None if excluded by the guard."""

    splits: list[str | None]
    blocks: list[int]
    excluded: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.splits:
            if s is not None:
                out[s] = out.get(s, 0) + 1
        return out


def spatial_split(
    footprints: Sequence[Any],
    *,
    fractions: Mapping[str, float],
    block_size: float,
    seed: int = 0,
    guard: float = 0.0,
    pixel_boxes: Sequence[PixelBox] | None = None,
) -> SplitResult:
    """Assign tiles (footprint polygons in one CRS) to splits by spatial blocks, with a guard.

    ``pixel_boxes`` (one per footprint) place the tiles on their pixel grids: edges are
    then decided exactly, and the tolerance for other pairs is a fraction of a pixel.
    """
    import shapely

    geoms = np.asarray(footprints, dtype=object)
    n = len(geoms)
    names = list(fractions)
    if n == 0:
        return SplitResult([], [])
    if len(names) == 1:
        return SplitResult([names[0]] * n, [0] * n)
    if not 0 < block_size < float("inf"):
        raise InputError(
            f"`block_size` must be a positive number of CRS units; got {block_size}", params=("block_size",)
        )
    centres = shapely.get_coordinates(shapely.centroid(geoms))
    origin = centres.min(axis=0)
    cells = np.floor((centres - origin) / block_size).astype(np.int64)
    keys, block_of = np.unique(cells, axis=0, return_inverse=True)
    block_of = block_of.ravel()
    targets = np.array([fractions[s] for s in names]) * n
    split_idx = _deal_blocks(np.bincount(block_of, minlength=len(keys)), targets, seed)[block_of]

    # guard: tiles in different splits must not overlap or come closer than `guard`
    left, right = _leaking_pairs(geoms, pixel_boxes, split_idx, guard)
    # keep the smaller splits intact: exclude from the split listed first (train, then val)
    rank = {k: i for i, k in enumerate(names)}
    excluded = np.zeros(n, dtype=bool)
    for a, b in zip(left.tolist(), right.tolist()):
        if excluded[a] or excluded[b]:
            continue
        loser = a if rank[names[split_idx[a]]] < rank[names[split_idx[b]]] else b
        excluded[loser] = True
    splits: list[str | None] = [None if excluded[i] else names[split_idx[i]] for i in range(n)]
    result = SplitResult(splits=splits, blocks=block_of.tolist(), excluded=np.flatnonzero(excluded).tolist())
    dealt = np.bincount(split_idx, minlength=len(names))
    _warn_empty_splits(result, {name: int(dealt[k]) for k, name in enumerate(names)}, blocks=len(keys))
    return result


def _deal_blocks(sizes: NDArray[Any], targets: NDArray[Any], seed: int) -> NDArray[Any]:
    """The split of each block (``sizes``: tiles per block), blocks shuffled with ``seed``
    and each given to the split furthest below its target number of tiles."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sizes))
    assigned = np.zeros(len(targets))
    block_split = np.empty(len(sizes), dtype=np.int64)
    for b in order:
        # give the block to the split furthest below its target (relative), ties by order
        need = (targets - assigned) / np.maximum(targets, 1e-9)
        k = int(np.argmax(need))
        block_split[b] = k
        assigned[k] += sizes[b]
    return block_split


def _warn_empty_splits(result: SplitResult, dealt: Mapping[str, int], *, blocks: int) -> None:
    """Say so when a split asked for has no chip left: a model evaluated on an empty test
    set is a surprise best found before training. ``dealt``: chips per split before the guard."""
    import warnings

    from geolabel.errors import EmptySplitWarning

    counts = result.counts()
    for name, n in dealt.items():
        if counts.get(name):
            continue
        if n:
            why, params = f"all {n} of its chips were left out to keep it apart from the other splits", ("guard",)
        else:
            in_blocks = f"{blocks} spatial block{'s' if blocks != 1 else ''}"
            why = f"{len(result.splits)} chips fall in only {in_blocks}; use a smaller `block_size`"
            why, params = why + " (CRS units; the default is 2 chips) or more chips", ("block_size",)
        warnings.warn(EmptySplitWarning(f"split {name!r} got no chips: {why}", params=params), stacklevel=3)


def leaks(
    footprints: Sequence[Any],
    splits: Sequence[str | None],
    *,
    guard: float = 0.0,
    pixel_boxes: Sequence[PixelBox] | None = None,
) -> list[tuple[int, int]]:
    """Pairs of tiles in different splits that overlap or are closer than ``guard``."""
    geoms = np.asarray(footprints, dtype=object)
    names = {s: k for k, s in enumerate(dict.fromkeys(s for s in splits if s is not None))}
    group = np.array([names[s] if s is not None else -1 for s in splits], dtype=np.int64)
    left, right = _leaking_pairs(geoms, pixel_boxes, group, guard)
    keep = (group[left] >= 0) & (group[right] >= 0)
    return sorted(zip(left[keep].tolist(), right[keep].tolist()))


def _tolerances(geoms: NDArray[Any], pixel_boxes: Sequence[PixelBox] | None) -> NDArray[Any]:
    """Per tile: overlaps and gaps thinner than this (map units) are noise."""
    import shapely

    if pixel_boxes is not None:
        pixels = np.array([b.width * b.height for b in pixel_boxes], dtype=float)
        pixel_size: NDArray[Any] = np.sqrt(shapely.area(geoms) / np.maximum(pixels, 1.0))
        return EDGE_TOLERANCE_PX * pixel_size
    scale: NDArray[Any] = np.abs(shapely.bounds(geoms)).max(axis=1)
    return RELATIVE_TOLERANCE * np.maximum(scale, 1.0)


def _leaking_pairs(
    geoms: NDArray[Any], pixel_boxes: Sequence[PixelBox] | None, group: NDArray[Any], guard: float
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Pairs (i < j) of different groups that overlap, or come closer than ``guard``."""
    import shapely

    from geolabel.geom import intersecting_pairs

    left, right = intersecting_pairs(geoms, distance=guard)
    keep = group[left] != group[right]
    left, right = left[keep], right[keep]
    if not len(left):
        return left, right
    tol = _tolerances(geoms, pixel_boxes)
    tol = np.minimum(tol[left], tol[right])
    overlap = np.zeros(len(left), dtype=bool)
    on_grid = np.zeros(len(left), dtype=bool)
    if pixel_boxes is not None:
        grid_ids: dict[Hashable, int] = {}
        grid = np.array([grid_ids.setdefault(b.grid, len(grid_ids)) for b in pixel_boxes], dtype=np.int64)
        on_grid = grid[left] == grid[right]
        fields = ("row_off", "col_off", "width", "height")
        arrays = {f: np.array([getattr(b, f) for b in pixel_boxes], dtype=np.int64) for f in fields}
        p = _Boxes(*(arrays[f][left[on_grid]] for f in fields))
        q = _Boxes(*(arrays[f][right[on_grid]] for f in fields))
        overlap[on_grid] = _interval_overlap(p, q)
    off = ~on_grid
    if off.any():  # geometry: the shared area must be thicker than the tolerance
        shared = shapely.intersection(geoms[left[off]], geoms[right[off]])
        overlap[off] = ~shapely.is_empty(shapely.buffer(shared, -tol[off] / 2, join_style="mitre"))
    leak = overlap
    if guard > 0:
        leak = leak | (shapely.distance(geoms[left], geoms[right]) < guard - tol)
    return left[leak], right[leak]


@dataclass(frozen=True)
class _Boxes:
    """Pixel box fields as arrays (vectorised :func:`_interval_overlap`)."""

    row_off: NDArray[Any]
    col_off: NDArray[Any]
    width: NDArray[Any]
    height: NDArray[Any]
