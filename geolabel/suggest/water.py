"""Water from the imagery: a normalised-difference water index (NDWI or MNDWI),
thresholded, cleaned and polygonized window by window.

Two passes over the scene, each a batch of window tasks (:func:`geolabel.parallel.run_batch`,
so both cores work and memory stays that of a few windows whatever the scene's size):

1. a histogram of the index over the whole scene, from which the threshold is chosen;
2. per window (read with a margin, so the morphology sees the same neighbours whatever
   the window size): water mask, clean-up, polygons in scene pixel coordinates, clipped
   to the window. Pixel coordinates are whole numbers, so the pieces of one pond cut at
   window borders share their edges exactly and their union joins them without slivers.

The polygons then go to the scene's CRS, are simplified by half a pixel, limited to the
area asked for, and parts and holes (islands) below ``min_area`` are dropped.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from geolabel import vocabulary as v
from geolabel.errors import InputError
from geolabel.suggest.windows import Box, run_windows, scene_windows, with_margin

#: Histogram bins over the index's range [-1, 1]: steps of 0.001.
HIST_BINS = 2000
#: Pixels read around each window: an opening and a closing with a radius-1 disk reach 2 px
#: each, so 4 px make the result independent of the window size; 8 to be safe.
MARGIN = 8
#: Window side in pixels (see the vocabulary).
WINDOW = v.SUGGEST_WINDOW
#: The automatic threshold never goes below 0: water reflects more green than NIR (or
#: SWIR) and vegetation and soil less, so on a scene with no water the 3-class Otsu's
#: upper class (then bare soil or roads) is not called water.
WATER_FLOOR = 0.0


@dataclass(frozen=True)
class WaterSuggestion:
    """Suggested water polygons in the scene's CRS, with how they were found."""

    polygons: Any  # numpy array of shapely Polygons
    crs: str  # the scene's CRS (WKT)
    index: str
    threshold: float
    area_m2: Any  # numpy array, one area per polygon

    @property
    def total_area_m2(self) -> float:
        return float(np.sum(self.area_m2))


@dataclass(frozen=True)
class _Job:
    """What a window task needs: plain values, as tasks may run in other processes."""

    path: str
    bands: tuple[int, int]
    scales: tuple[float, float]
    offsets: tuple[float, float]
    width: int
    height: int
    threshold: float = 0.0


def suggest_water(
    scene: str | os.PathLike[str],
    *,
    index: str = "ndwi",
    bands: str | Mapping[str, int] | None = None,
    threshold: str | float = v.WATER_THRESHOLD,
    min_area: float = v.SUGGEST_MIN_AREA_M2,
    aoi: Any = None,
    tiles: str | os.PathLike[str] | None = None,
    tile: str | None = None,
    window: int = WINDOW,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> WaterSuggestion:
    """Water polygons of ``scene`` from a water index, in the scene's CRS.

    ``bands``: roles of bands the scene does not name itself (``"green=2,nir=4"``).
    ``threshold``: ``"otsu"`` (the upper threshold of a 3-class Otsu on the whole scene's
    histogram, at least 0) or a number. ``aoi`` or ``tiles`` (with ``tile``) limit where
    polygons are made; the threshold still comes from the whole scene, so neighbouring
    tiles get the same one. ``progress``: called with the finished fraction (0..1);
    ``is_cancelled``: polled between windows, a :class:`~geolabel.errors.CancelledError`
    when it says so (nothing is written: the caller writes the result).

    >>> s = suggest_water("sample_data/village.tif", workers=1)
    >>> len(s.polygons), round(s.threshold, 2), s.index
    (11, 0.18, 'ndwi')
    """
    from geolabel.raster import inspect_scene
    from geolabel.suggest import require_extra
    from geolabel.suggest.area import area_boxes, suggestion_area
    from geolabel.suggest.bands import index_bands, parse_band_roles

    require_extra()
    level = _threshold_value(threshold)
    _check_limits(min_area=min_area, window=window)
    info = inspect_scene(scene)
    given = parse_band_roles(bands) if isinstance(bands, str) else bands
    pair = index_bands(
        index, given=given, descriptions=info.descriptions, colorinterp=info.colorinterp, scene=info.path
    )
    area = suggestion_area(info.crs_wkt, aoi=aoi, tiles=tiles, tile=tile)
    boxes = area_boxes(info.transform, info.width, info.height, area=area, size=window, scene=info.path)
    job = _Job(info.path, pair, _pick(info.scales, pair), _pick(info.offsets, pair), info.width, info.height)
    run = functools.partial(
        run_windows, executor=executor, workers=workers, progress=progress, is_cancelled=is_cancelled
    )
    if level is None:
        counts = run(
            functools.partial(_histogram, job), scene_windows(info.width, info.height, size=window), span=(0.0, 0.4)
        )
        level = otsu_water_threshold(np.sum(counts, axis=0))
    pieces = run(functools.partial(_window_polygons, replace(job, threshold=level)), boxes, span=(0.4, 1.0))
    polygons = finish_polygons(
        merge_pieces(pieces), transform=info.transform, crs=info.crs_wkt, area=area, min_area=min_area
    )
    from geolabel.crs import area_m2

    return WaterSuggestion(polygons, info.crs_wkt or "", index, level, area_m2(polygons, info.crs_wkt))


def _threshold_value(threshold: str | float) -> float | None:
    """None for ``"otsu"``, else the number (within the index's range -1..1)."""
    if isinstance(threshold, str) and threshold.strip().lower() == "otsu":
        return None
    try:
        value = float(threshold)
    except ValueError:
        value = float("nan")
    if not -1.0 <= value <= 1.0:
        raise InputError(f"`threshold` must be otsu or a number from -1 to 1; got {threshold!r}", params=("threshold",))
    return value


def _check_limits(*, min_area: float, window: int) -> None:
    if not 0 <= min_area < float("inf"):
        raise InputError(f"`min_area` must be 0 or more square metres; got {min_area}", params=("min_area",))
    if window < 2 * MARGIN:
        raise InputError(f"`window` must be at least {2 * MARGIN} pixels; got {window}", params=("window",))


def _pick(values: Sequence[float], pair: tuple[int, int]) -> tuple[float, float]:
    return (float(values[pair[0] - 1]), float(values[pair[1] - 1]))


def read_index(src: Any, box: Box, job: _Job) -> tuple[Any, Any]:
    """(index, valid) of the pixels of ``box``: (a - b) / (a + b) of the job's two bands
    (scaled and offset as the scene says), and where both bands hold data."""
    from rasterio.windows import Window

    window = Window(*box)
    data = src.read(list(job.bands), window=window, out_dtype="float32")
    valid = (src.read_masks(list(job.bands), window=window) > 0).all(axis=0)
    a = data[0] * job.scales[0] + job.offsets[0]
    b = data[1] * job.scales[1] + job.offsets[1]
    total = a + b
    valid &= np.isfinite(total) & (total != 0)
    index = np.zeros_like(a)
    np.divide(a - b, total, out=index, where=valid)
    return np.clip(index, -1.0, 1.0), valid


def _histogram(job: _Job, box: Box) -> Any:
    import rasterio

    with rasterio.open(job.path) as src:
        index, valid = read_index(src, box, job)
    counts, _ = np.histogram(index[valid], bins=HIST_BINS, range=(-1.0, 1.0))
    return counts


def otsu_water_threshold(counts: Any) -> float:
    """The upper threshold of a 3-class Otsu on a histogram of the index over [-1, 1]
    (:data:`HIST_BINS` bins), at least :data:`WATER_FLOOR`.

    Plain (2-class) Otsu splits the scene's largest contrast, on the village scene
    vegetation from bare ground (IoU 0.05 with the real water); with three classes the
    upper one is water even when water is a small part of the scene (IoU 0.97).

    >>> soil_grass_water = [-0.5] * 800 + [0.1] * 600 + [0.6] * 50
    >>> round(otsu_water_threshold(np.histogram(soil_grass_water, bins=HIST_BINS, range=(-1, 1))[0]), 2)
    0.1
    >>> no_water = [-0.5] * 800 + [-0.3] * 600 + [-0.2] * 50  # soil, grass, roads: never water
    >>> round(otsu_water_threshold(np.histogram(no_water, bins=HIST_BINS, range=(-1, 1))[0]), 2)
    0.0
    """
    from geolabel.suggest import require_extra

    require_extra()
    from skimage.filters import threshold_multiotsu

    counts = np.asarray(counts)
    if np.count_nonzero(counts) < 3:  # too few distinct values to split in three
        return WATER_FLOOR
    centers = np.linspace(-1.0, 1.0, HIST_BINS, endpoint=False) + 1.0 / HIST_BINS
    upper = threshold_multiotsu(hist=(counts, centers), classes=3)[-1]
    return max(float(upper), WATER_FLOOR)


def clean_mask(mask: Any) -> Any:
    """An opening (removes specks and one-pixel bridges between ponds) then a closing
    (fills one-pixel gaps, e.g. a dark reed line across a pond) with a radius-1 disk."""
    from skimage.morphology import binary_closing, binary_opening, disk

    footprint = disk(1)
    return binary_closing(binary_opening(mask, footprint), footprint)


def _window_polygons(job: _Job, box: Box) -> tuple[Any, Any]:
    """Water polygons of one window in scene pixel coordinates, clipped to the window:
    (those inside it, those reaching its border, which :func:`merge_pieces` joins)."""
    import rasterio
    import shapely
    from affine import Affine

    from geolabel import rasterfeatures
    from geolabel.geom import polygonal_parts

    outer = with_margin(box, margin=MARGIN, width=job.width, height=job.height)
    with rasterio.open(job.path) as src:
        index, valid = read_index(src, outer, job)
    water = clean_mask((index > job.threshold) & valid) & valid
    shapes = rasterfeatures.shapes(water.view(np.uint8), mask=water, transform=Affine.translation(outer[0], outer[1]))
    geoms = np.array([shapely.geometry.shape(g) for g, _ in shapes], dtype=object)
    col, row, w, h = box
    core = (col, row, col + w, row + h)
    pieces = polygonal_parts(shapely.intersection(geoms, shapely.box(*core)))[0] if len(geoms) else geoms
    b = shapely.bounds(pieces).reshape(-1, 4)
    at_border = (b[:, 0] <= core[0]) | (b[:, 1] <= core[1]) | (b[:, 2] >= core[2]) | (b[:, 3] >= core[3])
    return pieces[~at_border], pieces[at_border]


def merge_pieces(pieces: Sequence[tuple[Any, Any]]) -> Any:
    """All windows' polygons, those cut at window borders joined (their union)."""
    import shapely

    from geolabel.geom import polygonal_parts

    inside = [p for p, _ in pieces if len(p)]
    border = [p for _, p in pieces if len(p)]
    joined = polygonal_parts([shapely.union_all(np.concatenate(border))])[0] if border else np.array([], dtype=object)
    return np.concatenate([*inside, joined]) if inside or len(joined) else np.array([], dtype=object)


def finish_polygons(pixel_polygons: Any, *, transform: Sequence[float], crs: Any, area: Any, min_area: float) -> Any:
    """Pixel-coordinate polygons to the CRS, simplified by half a pixel, limited to
    ``area``, without parts or holes below ``min_area`` m²; ordered north to south, then
    west to east, so the order does not depend on the windows."""
    import shapely

    from geolabel.crs import area_m2
    from geolabel.geom import polygonal_parts

    if not len(pixel_polygons):
        return pixel_polygons
    a, b, c, d, e, f = transform[:6]
    geoms = shapely.transform(
        pixel_polygons, lambda xy: np.column_stack([a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f])
    )
    # normalized first: the simplified outline depends on where a ring starts, which
    # depends on how window pieces were joined
    geoms = shapely.simplify(
        shapely.normalize(geoms), 0.5 * max(abs(a), abs(b), abs(d), abs(e)), preserve_topology=True
    )
    if area is not None:
        geoms = shapely.intersection(geoms, area)
    geoms = polygonal_parts(shapely.make_valid(geoms))[0]
    geoms = drop_small_holes(geoms, crs, min_area)
    geoms = geoms[area_m2(geoms, crs) >= min_area] if len(geoms) else geoms
    bounds = shapely.bounds(geoms).reshape(-1, 4)
    return geoms[np.lexsort((bounds[:, 0], -bounds[:, 3]))]


def drop_small_holes(geoms: Any, crs: Any, min_area: float) -> Any:
    """Polygons without the holes smaller than ``min_area`` m² (islands above it stay).

    >>> import shapely
    >>> pond = shapely.box(0, 0, 100, 100) - shapely.box(10, 10, 12, 12) - shapely.box(50, 50, 70, 70)
    >>> [len(p.interiors) for p in drop_small_holes(np.array([pond]), "EPSG:32649", 100.0)]
    [1]
    """
    import shapely

    from geolabel.crs import area_m2

    holes = shapely.get_num_interior_rings(geoms)
    if not holes.any():
        return geoms
    rings, owner = shapely.get_rings(geoms, return_index=True)
    shell = np.r_[True, owner[1:] != owner[:-1]]  # each polygon's exterior ring comes first
    keep = shell | (area_m2(shapely.polygons(rings), crs) >= min_area)
    out = geoms.copy()
    for i in np.flatnonzero(holes):
        mine = owner == i
        out[i] = shapely.Polygon(rings[mine & shell][0], list(rings[mine & ~shell & keep]))
    return out
