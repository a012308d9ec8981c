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

The result is deterministic for a seed.

>>> import shapely
>>> tiles = [shapely.box(x, 0, x + 10, 10) for x in range(0, 100, 10)]
>>> result = spatial_split(tiles, fractions={"train": 0.8, "test": 0.2}, block_size=20, seed=1)
>>> sorted(set(result.splits) - {None}), len(result.excluded)
(['test', 'train'], 0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geolabel.errors import InputError

SPLIT_NAMES = ("train", "val", "test")


def parse_split(text: str | Sequence[float] | Mapping[str, float] | None) -> dict[str, float]:
    """``'0.8,0.1,0.1'`` -> {'train': 0.8, 'val': 0.1, 'test': 0.1}; fractions must sum to 1.

    >>> parse_split("0.7,0.3")
    {'train': 0.7, 'val': 0.3}
    """
    if text is None:
        return {"train": 1.0}
    if isinstance(text, Mapping):
        fractions = {str(k): float(v) for k, v in text.items()}
    else:
        values = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
        if not 1 <= len(values) <= 3:
            raise InputError(f"--split takes 1 to 3 fractions (train,val,test); got {text!r}")
        fractions = dict(zip(SPLIT_NAMES, values))
    if any(v < 0 for v in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise InputError(f"--split fractions must be >= 0 and sum to 1; got {text!r}")
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
) -> SplitResult:
    """Assign tiles (footprint polygons in one CRS) to splits by spatial blocks, with a guard."""
    import shapely

    geoms = np.asarray(footprints, dtype=object)
    n = len(geoms)
    names = list(fractions)
    if n == 0:
        return SplitResult([], [])
    if len(names) == 1:
        return SplitResult([names[0]] * n, [0] * n)
    if not block_size > 0:
        raise InputError(f"block size must be positive; got {block_size}")
    centres = shapely.get_coordinates(shapely.centroid(geoms))
    origin = centres.min(axis=0)
    cells = np.floor((centres - origin) / block_size).astype(np.int64)
    keys, block_of = np.unique(cells, axis=0, return_inverse=True)
    block_of = block_of.ravel()
    sizes = np.bincount(block_of, minlength=len(keys))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    targets = np.array([fractions[s] for s in names]) * n
    assigned = np.zeros(len(names))
    block_split = np.empty(len(keys), dtype=np.int64)
    for b in order:
        # give the block to the split furthest below its target (relative), ties by order
        need = (targets - assigned) / np.maximum(targets, 1e-9)
        k = int(np.argmax(need))
        block_split[b] = k
        assigned[k] += sizes[b]
    split_idx = block_split[block_of]

    # guard: tiles in different splits must not overlap or come closer than `guard`
    tree = shapely.STRtree(geoms)
    if guard > 0:
        left, right = tree.query(geoms, predicate="dwithin", distance=guard)
    else:
        left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    differ = split_idx[left] != split_idx[right]
    left, right = left[differ], right[differ]
    if guard <= 0 and len(left):  # touching edges are fine without a guard distance
        inner = shapely.relate_pattern(geoms[left], geoms[right], "T********")
        left, right = left[inner], right[inner]
    # keep the smaller splits intact: exclude from the split listed first (train, then val)
    rank = {k: i for i, k in enumerate(names)}
    excluded = np.zeros(n, dtype=bool)
    for a, b in zip(left.tolist(), right.tolist()):
        if excluded[a] or excluded[b]:
            continue
        loser = a if rank[names[split_idx[a]]] < rank[names[split_idx[b]]] else b
        excluded[loser] = True
    splits: list[str | None] = [None if excluded[i] else names[split_idx[i]] for i in range(n)]
    return SplitResult(splits=splits, blocks=block_of.tolist(), excluded=np.flatnonzero(excluded).tolist())


def leaks(footprints: Sequence[Any], splits: Sequence[str | None], *, guard: float = 0.0) -> list[tuple[int, int]]:
    """Pairs of tiles in different splits that overlap or are closer than ``guard``."""
    import shapely

    geoms = np.asarray(footprints, dtype=object)
    tree = shapely.STRtree(geoms)
    if guard > 0:
        left, right = tree.query(geoms, predicate="dwithin", distance=guard)
    else:
        left, right = tree.query(geoms, predicate="intersects")
    out = []
    for a, b in zip(left.tolist(), right.tolist()):
        apart = a < b and splits[a] is not None and splits[b] is not None and splits[a] != splits[b]
        if apart and (guard > 0 or shapely.relate_pattern(geoms[a], geoms[b], "T********")):
            out.append((a, b))
    return out
