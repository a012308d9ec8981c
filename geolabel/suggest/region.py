"""One click, one region: the homogeneous region of a chip around a map point.

:meth:`SmartRegion.from_raster` reads a chip of a scene once and cuts it into superpixels
(:mod:`geolabel.suggest.superpixels`, cached for the last few chips); a click then grows
the superpixel under it over its similar neighbours and returns the polygon in the
scene's CRS. :func:`snap_to_labels` fits the polygon between existing labels with the
class-priority rule of :func:`geolabel.labels.resolve.resolve_overlaps`.

The growing rule: start with the superpixel under the click; repeatedly take, of all
superpixels touching the region, the one whose mean band values are closest to the
region's mean (pixel-weighted), and add it while that distance (root mean square over
the bands, scaled 0..1) is below ``threshold``. Each superpixel already follows the
image's edges; the threshold decides how different two touching superpixels may be and
still be one field or pond. Comparing with the region's mean (not with the last
superpixel added) stops a slow gradient from leaking the region across a whole chip.

A smart region is the labeler's own drawing, made faster: it is stored as
``source="manual"`` (:data:`REGION_SOURCE`), like any polygon they digitize. Suggestions
(``source="suggested"``) are what the engine proposes without being asked at a place.

>>> window = chip_window_at("sample_data/village.tif", 686651.0, 3120716.0)
>>> region = SmartRegion.from_raster("sample_data/village.tif", window)
>>> pond = region.region_at(686651.0, 3120716.0)  # a fish pond of 742 m²
>>> pond.geom_type, round(pond.area)
('Polygon', 742)
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from geolabel.errors import InputError
from geolabel.suggest.superpixels import Superpixels, compute_superpixels

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from geolabel.geo import GeoGrid
    from geolabel.labels.schema import ClassSchema

#: How far (root mean square of the 0..1 scaled bands) a neighbouring superpixel's mean may
#: lie from the region's mean and still join it; measured on the village scene's fields
#: and ponds (bench/bench_region.py: 0.08 stops fields early, 0.12 leaks more of them).
THRESHOLD = 0.10
#: Superpixels separated by a boundary whose mean Sobel edge strength (0..1 scaled bands)
#: is above this never join: a field next to grass of the same mean colour still has an edge.
#: Fields found on the village scene (bench/bench_region.py): 16 of 51 at 0.08, 36 at 0.10,
#: 39 to 40 from 0.11 to 0.15; the middle of that plateau.
MAX_EDGE = 0.13
#: Chips whose superpixels are kept: the current tile and a few the labeler pans back to.
CACHED_CHIPS = 4
#: The store's ``source`` of a smart region: the labeler's own label (see the module docstring).
REGION_SOURCE = "manual"

#: A pixel window: (col_off, row_off, width, height).
Window = tuple[int, int, int, int]


@dataclass(frozen=True)
class Chip:
    """The pixel grid of one chip (in the scene's CRS) and its superpixels."""

    grid: GeoGrid
    superpixels: Superpixels


def chip_window_at(path: str | os.PathLike[str], x: float, y: float, *, size: int = 512) -> Window:
    """The window of the ``size`` px tile grid (from the scene's top-left pixel) holding map
    point (``x``, ``y``), cut at the scene's edges; the point in the scene's CRS.

    >>> chip_window_at("sample_data/village.tif", 686651.0, 3120716.0)
    (1024, 1024, 512, 512)
    """
    grid = _scene_grid(str(path))
    col, row = _pixel_inside(grid, x, y, what=str(path))
    col_off, row_off = col // size * size, row // size * size
    return (col_off, row_off, min(size, grid.width - col_off), min(size, grid.height - row_off))


@dataclass
class SmartRegion:
    """The region selected on one chip by clicks: :meth:`region_at` starts a selection,
    :meth:`add` (shift-click) adds the region around another point, :meth:`remove`
    (ctrl-click) takes one away; :meth:`polygon` is the selection in the scene's CRS.
    Click coordinates are map coordinates in the scene's CRS."""

    chip: Chip
    threshold: float = THRESHOLD
    max_edge: float = MAX_EDGE
    selected: NDArray[Any] = field(init=False)

    def __post_init__(self) -> None:
        import numpy as np

        if not 0 < self.threshold < float("inf"):
            raise InputError(f"`threshold` must be more than 0; got {self.threshold}", params=("threshold",))
        self.selected = np.zeros(len(self.chip.superpixels.sizes), dtype=bool)

    @classmethod
    def from_raster(
        cls, path: str | os.PathLike[str], window: Window, *, threshold: float = THRESHOLD, max_edge: float = MAX_EDGE
    ) -> SmartRegion:
        """Read ``window`` (col_off, row_off, width, height; see :func:`chip_window_at`) of
        the scene at ``path`` and cut it into superpixels (or take them from the cache)."""
        p = str(path)
        _scene_grid(p)  # a missing or unreadable scene: the one-line error of inspect_scene
        return cls(_cached_chip(p, tuple(window), os.stat(p).st_mtime_ns), threshold=threshold, max_edge=max_edge)

    @property
    def crs(self) -> str | None:
        return self.chip.grid.crs

    def region_at(self, x: float, y: float) -> Any:
        """Select the region around (``x``, ``y``) alone; return the selection's polygon."""
        self.selected = self._grown(x, y)
        return self.polygon()

    def add(self, x: float, y: float) -> Any:
        """Add the region around (``x``, ``y``) to the selection; return the selection's polygon."""
        self.selected |= self._grown(x, y)
        return self.polygon()

    def remove(self, x: float, y: float) -> Any:
        """Take the region around (``x``, ``y``) out of the selection; return the selection's polygon."""
        self.selected &= ~self._grown(x, y)
        return self.polygon()

    def polygon(self) -> Any:
        """The selection as a valid shapely (Multi)Polygon in the scene's CRS, holes kept,
        simplified to half a pixel (empty when nothing is selected)."""
        return polygon_of(
            self.selected[self.chip.superpixels.segments] & (self.chip.superpixels.segments >= 0), self.chip.grid
        )

    def _grown(self, x: float, y: float) -> NDArray[Any]:
        sp = self.chip.superpixels
        col, row = _pixel_inside(self.chip.grid, x, y, what="the chip")
        seed = int(sp.segments[row, col])
        if seed < 0:
            raise InputError(f"({x}, {y}) is on nodata (no image there); click inside the image")
        return grow_region(sp, seed, threshold=self.threshold, max_edge=self.max_edge)


def grow_region(sp: Superpixels, seed: int, *, threshold: float, max_edge: float = MAX_EDGE) -> NDArray[Any]:
    """Superpixels (boolean per superpixel) of the region grown from ``seed`` by the rule in
    the module docstring: best-first, closest to the region's pixel-weighted mean."""
    import heapq

    import numpy as np

    member = np.zeros(len(sp.sizes), dtype=bool)
    member[seed] = True
    total, count = sp.means[seed] * sp.sizes[seed], float(sp.sizes[seed])
    heap: list[tuple[float, int]] = []
    _queue(heap, sp, seed, member, total / count, max_edge)
    while heap:
        _, j = heapq.heappop(heap)
        if member[j]:
            continue
        # the region's mean moved since j was queued: measure again before deciding
        if _distance(sp.means[j], total / count) > threshold:
            continue
        member[j] = True
        total, count = total + sp.means[j] * sp.sizes[j], count + sp.sizes[j]
        _queue(heap, sp, j, member, total / count, max_edge)
    return member


def _queue(
    heap: list[tuple[float, int]], sp: Superpixels, i: int, member: NDArray[Any], mean: NDArray[Any], max_edge: float
) -> None:
    """Queue the neighbours of ``i`` not yet in the region and not behind an image edge."""
    import heapq

    for k, edge in zip(*sp.neighbours(i)):
        if not member[k] and edge <= max_edge:
            heapq.heappush(heap, (_distance(sp.means[k], mean), int(k)))


def _distance(a: NDArray[Any], b: NDArray[Any]) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((a - b) ** 2)))


def polygon_of(mask: NDArray[Any], grid: GeoGrid) -> Any:
    """The True pixels of ``mask`` as one valid (Multi)Polygon in ``grid``'s CRS, holes kept,
    simplified to half a pixel (rasterio.features.shapes traces pixel edges)."""
    import numpy as np
    import shapely

    from geolabel.rasterfeatures import shapes

    if not mask.any():
        return shapely.Polygon()
    traced = [shapely.geometry.shape(g) for g, _ in shapes(mask.astype(np.uint8), mask=mask, transform=grid.affine)]
    merged = shapely.union_all(traced)
    pixel = min(abs(grid.transform[0]), abs(grid.transform[4]))
    return shapely.make_valid(shapely.simplify(merged, pixel / 2, preserve_topology=True))


@functools.lru_cache(maxsize=CACHED_CHIPS)
def _cached_chip(path: str, window: Window, mtime_ns: int) -> Chip:
    """The chip's superpixels, computed once per (scene, window, file version)."""
    data, valid, grid = _read_chip(path, window)
    return Chip(grid=grid, superpixels=compute_superpixels(data, valid))


def _read_chip(path: str, window: Window) -> tuple[NDArray[Any], NDArray[Any], GeoGrid]:
    """The chip's pixels (bands, rows, cols), where they are valid, and its grid."""
    import rasterio
    from rasterio.windows import Window as RioWindow

    grid = _scene_grid(path)
    col_off, row_off, width, height = window
    fits = min(col_off, row_off) >= 0 and col_off + width <= grid.width and row_off + height <= grid.height
    if not (fits and width > 0 and height > 0):
        raise InputError(f"{path}: window {window} is not inside the scene ({grid.width} x {grid.height} px)")
    with rasterio.open(path) as src:
        # the dataset mask covers nodata values, mask bands and alpha alike
        data = src.read(window=RioWindow(col_off, row_off, width, height))
        valid = src.dataset_mask(window=RioWindow(col_off, row_off, width, height)) > 0
    return data, valid, grid.window(col_off=col_off, row_off=row_off, width=width, height=height)


@functools.lru_cache(maxsize=CACHED_CHIPS)
def _scene_grid(path: str) -> GeoGrid:
    from geolabel.raster import inspect_scene

    return inspect_scene(path).grid


def _pixel_inside(grid: GeoGrid, x: float, y: float, *, what: str) -> tuple[int, int]:
    """The (col, row) pixel of map point (x, y); an error when it lies outside the grid."""
    import math

    colf, rowf = grid.pixel(x=x, y=y)
    col, row = math.floor(colf), math.floor(rowf)
    if not (0 <= col < grid.width and 0 <= row < grid.height):
        left, bottom, right, top = grid.bounds
        raise InputError(f"({x}, {y}) is outside {what} (x {left:.2f} to {right:.2f}, y {bottom:.2f} to {top:.2f})")
    return col, row


@dataclass(frozen=True)
class Snapped:
    """A new region fitted between existing labels.

    ``geometry``: the new label's (Multi)Polygon (empty when existing labels of higher or
    equal priority cover it all); ``changed``: existing labels (keyed by the index of
    ``existing_labels``) whose geometry changes (they lost area to the new, higher-priority
    region); ``removed``: existing labels the new region covers entirely.
    """

    geometry: Any
    changed: dict[Any, Any]
    removed: list[Any]


def snap_to_labels(polygon: Any, class_code: int, existing_labels: Any, schema: ClassSchema) -> Snapped:
    """Fit ``polygon`` (class ``class_code``) between ``existing_labels`` (a GeoDataFrame with
    ``class_code`` and a geometry, in the polygon's CRS) so no overlap is created.

    The existing labels the polygon overlaps are resolved together with it by
    :func:`~geolabel.labels.resolve.resolve_overlaps` (existing labels first): the class of
    higher priority keeps the overlap; on equal priority (same class) the existing label
    keeps it. A new region that mostly duplicates an existing label of its class is merged
    into that label (``changed``), as resolve merges duplicates.
    """
    import numpy as np
    import shapely

    from geolabel.geom import interiors_intersect
    from geolabel.labels.resolve import resolve_overlaps

    geoms = existing_labels.geometry.values.to_numpy() if len(existing_labels) else np.array([], dtype=object)
    touching = np.flatnonzero(interiors_intersect(geoms, polygon)) if len(geoms) else np.array([], dtype=np.int64)
    if not len(touching):
        return Snapped(geometry=polygon, changed={}, removed=[])
    codes = existing_labels["class_code"].to_numpy(dtype=np.int64)[touching]
    new = len(touching)
    result = resolve_overlaps(
        np.r_[geoms[touching], np.array([polygon], dtype=object)], np.r_[codes, class_code], schema
    )
    index = existing_labels.index[touching]
    parts: dict[int, list[Any]] = {}
    for geom, src in zip(result.geometries, result.source.tolist()):
        parts.setdefault(int(src), []).append(geom)
    merged = {int(k): shapely.union_all(v) for k, v in parts.items()}
    changed = {
        index[i]: merged[i] for i in range(new) if i in merged and not shapely.equals(merged[i], geoms[touching[i]])
    }
    removed = [index[i] for i in range(new) if i not in merged]
    return Snapped(geometry=merged.get(new, shapely.Polygon()), changed=changed, removed=removed)
