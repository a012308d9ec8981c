"""Per-click latency of the smart region on 512 px chips of the village scene.

First click on a chip (read + superpixels + grow + polygon) vs later clicks on the same
chip (grow + polygon from the cache); median and p95 over clicks at the middles of the
reference ponds and fields. Run: python bench/bench_region.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.ops import polylabel

from geolabel.suggest import SmartRegion, chip_window_at
from geolabel.suggest.region import _cached_chip

SCENE = Path(__file__).parent.parent / "sample_data" / "village.tif"
LABELS = SCENE.with_name("village_labels.gpkg")


def clicks() -> list[tuple[float, float]]:
    ref = gpd.read_file(LABELS, layer="labels")
    ref = ref[ref["class_code"].isin([1, 2, 5])]
    return [(p.x, p.y) for p in (polylabel(g, 0.5) for g in ref.geometry)]


def main() -> None:
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    first, cached = [], []
    for x, y in clicks():
        window = chip_window_at(SCENE, x, y)
        _cached_chip.cache_clear()
        t0 = time.perf_counter()
        region = SmartRegion.from_raster(SCENE, window)
        region.region_at(x, y)
        first.append(time.perf_counter() - t0)
        for _ in range(5):
            t0 = time.perf_counter()
            SmartRegion.from_raster(SCENE, window).region_at(x, y)
            cached.append(time.perf_counter() - t0)
    for name, times in (("first click on a chip", first), ("cached chip", cached)):
        ms = np.array(times) * 1000
        print(
            f"{name}: n={len(ms)} median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
