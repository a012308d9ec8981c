"""Per-click latency and quality of the smart region on 512 px chips of the village scene.

Latency: the first click on a chip (read + superpixels + grow + polygon) vs later clicks
on the same chip (grow + polygon from the cache), median and p95 over clicks at the
middles of the reference ponds and fields, one first click per chip. Quality: each click's
region against the reference polygon clipped to its chip (IoU), ponds and fields apart.
Run from the checkout: PYTHONPATH=. python bench/bench_region.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.ops import polylabel

from geolabel.labels.resolve import resolve_overlaps
from geolabel.labels.schema import default_schema
from geolabel.suggest import SmartRegion, chip_window_at
from geolabel.suggest.region import _cached_chip

SCENE = Path(__file__).parent.parent / "sample_data" / "village.tif"
LABELS = SCENE.with_name("village_labels.gpkg")
WATER, FARMLAND = 1, 2


def visible_reference() -> gpd.GeoDataFrame:
    """Ponds (not the river) and fields as the image shows them: ponds cut out of fields."""
    ref = gpd.read_file(LABELS, layer="labels")
    res = resolve_overlaps(ref.geometry.values, ref["class_code"].to_numpy(), default_schema())
    vis = gpd.GeoDataFrame({"class_code": res.codes}, geometry=list(res.geometries), crs=ref.crs)
    ponds = (vis["class_code"] == WATER) & (vis.area < 20_000)
    return vis[ponds | (vis["class_code"] == FARMLAND)]


def timings(ref: gpd.GeoDataFrame) -> tuple[list[float], list[float]]:
    """Seconds of the first click on each chip, and of five later clicks per chip."""
    first, cached, seen = [], [], set()
    p = polylabel(ref.geometry.iloc[0], 0.5)
    t0 = time.perf_counter()
    SmartRegion.from_raster(SCENE, chip_window_at(SCENE, p.x, p.y)).region_at(p.x, p.y)
    print(f"first click of the session (imports scikit-image): {(time.perf_counter() - t0) * 1000:.0f} ms")
    for polygon in ref.geometry:
        p = polylabel(polygon, 0.5)
        window = chip_window_at(SCENE, p.x, p.y)
        if window in seen:
            continue
        seen.add(window)
        _cached_chip.cache_clear()
        t0 = time.perf_counter()
        SmartRegion.from_raster(SCENE, window).region_at(p.x, p.y)
        first.append(time.perf_counter() - t0)
        for _ in range(5):
            t0 = time.perf_counter()
            SmartRegion.from_raster(SCENE, window).region_at(p.x, p.y)
            cached.append(time.perf_counter() - t0)
    return first, cached


def ious(ref: gpd.GeoDataFrame) -> np.ndarray:
    out = []
    for polygon in ref.geometry:
        p = polylabel(polygon, 0.5)
        region = SmartRegion.from_raster(SCENE, chip_window_at(SCENE, p.x, p.y))
        got = region.region_at(p.x, p.y)
        want = polygon.intersection(region.chip.grid.footprint())
        out.append(got.intersection(want).area / got.union(want).area)
    return np.array(out)


def main() -> None:
    ref = visible_reference()
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    first, cached = timings(ref)
    for name, times in (("first click on a chip", first), ("cached chip", cached)):
        ms = np.array(times) * 1000
        print(
            f"{name}: n={len(ms)} median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms"
        )
    print(f"load average after: {os.getloadavg()}")
    iou = ious(ref)
    for name, code, bar in (("ponds", WATER, 0.92), ("fields", FARMLAND, 0.8)):
        v = iou[ref["class_code"].to_numpy() == code]
        print(f"{name}: {(v >= bar).sum()}/{len(v)} IoU >= {bar}, min {v.min():.3f}, median {np.median(v):.3f}")


if __name__ == "__main__":
    main()
