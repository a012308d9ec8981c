"""Benchmark the incremental check (what the dock's "Check now" runs after an edit).

A 50,000-label GeoPackage store of the seeded layout of ``bench_check.py`` /
``bench_resolve.py`` (a field grid whose borders overlap, ponds, houses, roads, patches);
a first check keeps its state; then the labels of one 256 m tile (a 512 px chip at 0.5 m)
are edited (a third moved by 1 m, one deleted, one added) and the store is checked
again: full :func:`geolabel.qa.check_labels` vs :func:`geolabel.qa.incremental.check_changed`,
both including reading the store, on a pool of 2 threads as the dock runs them; min of
``--repeat`` (each repeat edits again). The two results must be equal.

Usage: ``.venv/bin/python bench/bench_incremental.py [--n 50000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

TILE_M = 256.0


def make_store(path: Path, n: int) -> tuple[float, float, float, float]:
    """The store; returns the labels' bounds."""
    import geopandas as gpd
    import numpy as np
    import shapely
    from bench_resolve import make_polygons

    from geolabel.labels.store import create_store

    geoms, codes = make_polygons(n)
    frame = gpd.GeoDataFrame({"class_code": codes, "labeler": "li", "team": "hunan"}, geometry=geoms, crs="EPSG:32649")
    store = create_store(path, crs="EPSG:32649")
    store.add(frame)
    store.close()
    return tuple(shapely.total_bounds(np.array(geoms, dtype=object)).tolist())  # type: ignore[return-value]


def edit_tile(path: Path, bounds: tuple[float, float, float, float], k: int) -> int:
    """Edit the labels inside one tile near the middle; returns how many were edited."""
    import shapely

    from geolabel.labels.store import open_store

    cx, cy = (bounds[0] + bounds[2]) / 2 + k * TILE_M, (bounds[1] + bounds[3]) / 2
    tile = (cx, cy, cx + TILE_M, cy + TILE_M)
    with open_store(path) as store:
        inside = store.read(bbox=tile)
        ids = [str(i) for i in inside.columns["label_id"]]
        inner = [(i, g) for i, g in zip(ids, inside.geoms) if shapely.box(*tile).contains(g)]
        for label, geom in inner[::3]:
            store.update(label, geometry=shapely.affinity.translate(geom, 1.0, 0.5))
        store.delete([inner[1][0]])
        store.add_geometries([shapely.box(cx + 10, cy + 10, cx + 30, cy + 25)], class_codes=[3], labeler="li")
    return len(inner[::3]) + 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from geolabel.qa import check_labels, load_delivery
    from geolabel.qa.incremental import check_changed

    work = Path(tempfile.mkdtemp(prefix="geolabel-bench-incremental-"))
    path = work / "labels.gpkg"
    bounds = make_store(path, args.n)
    full_s, inc_s, equal, hows = [], [], True, []
    with ThreadPoolExecutor(2) as pool:
        t0 = time.perf_counter()
        _, state = check_changed(load_delivery(path), None, executor=pool)
        first = time.perf_counter() - t0
        for k in range(args.repeat):
            edited = edit_tile(path, bounds, k)
            t0 = time.perf_counter()
            inc, state = check_changed(load_delivery(path), state, executor=pool)
            inc_s.append(time.perf_counter() - t0)
            hows.append(state.how)
            t0 = time.perf_counter()
            full = check_labels(load_delivery(path), executor=pool)
            full_s.append(time.perf_counter() - t0)
            equal = equal and same(inc, full)
    print(
        f"{args.n} labels; first check (full, keeps the state) {first:.2f} s; each round edits {edited} labels of one tile"
    )
    print(f"after editing one tile: full check {min(full_s):.2f} s, incremental {min(inc_s):.2f} s "
          f"({min(full_s) / min(inc_s):.0f}x); all rounds {[round(t, 2) for t in inc_s]}; equal: {equal}")  # fmt: skip
    print(f"how: {hows}")
    load = os.getloadavg()
    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, load {load[0]:.2f}, Python {platform.python_version()}"
    )
    shutil.rmtree(work, ignore_errors=True)


def same(a: Any, b: Any) -> bool:
    def key(r: Any) -> Any:
        rows = [(f.type, f.severity, f.feature_ids, f.message, f.area_m2 and round(f.area_m2, 4)) for f in r.findings]
        return rows, r.by_class, r.by_team, r.by_labeler, r.gap_area_m2 and round(r.gap_area_m2, 4)

    return bool(key(a) == key(b))


if __name__ == "__main__":
    main()
