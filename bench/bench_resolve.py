"""Benchmark overlap resolution on 50,000 synthetic land-cover polygons.

Layout (seeded): a grid of farmland parcels with slightly jittered, overlapping edges
(digitizing errors), ponds and houses drawn on top of them, roads crossing the grid
and forest patches; every kind of overlap the resolver handles, on a 2 x 2 km village
landscape repeated over a larger area.

Contenders, all producing "higher priority cut out of lower priority":
- ``geolabel``: :func:`geolabel.labels.resolve.resolve_overlaps` (vectorised shapely 2 +
  STRtree), in process; and the whole ``geolabel labels resolve`` command on a
  GeoPackage store holding the same polygons (reading and writing included);
- ``naive per pair``: what a user writes with geopandas: for each polygon, query the
  spatial index and subtract each overlapping higher-priority polygon, one shapely call
  per pair, in a Python loop;
- ``geopandas.overlay by class``: for each class from the lowest priority, one
  ``gpd.overlay(lower, higher, how="difference")`` against all higher-priority classes.

Usage: ``.venv/bin/python bench/bench_resolve.py [--n 50000]``
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_polygons(n: int, seed: int = 11) -> tuple[list, np.ndarray]:
    import shapely

    rng = np.random.default_rng(seed)
    geoms, codes = [], []
    n_fields = int(n * 0.7)
    side = int(np.ceil(np.sqrt(n_fields)))
    size = 40.0
    for k in range(n_fields):
        r, c = divmod(k, side)
        x0, y0 = c * size, r * size
        j = rng.uniform(-1.5, 1.5, 4)  # edges overlap their neighbours by up to 1.5 m
        geoms.append(shapely.box(x0 + j[0], y0 + j[1], x0 + size + j[2], y0 + size + j[3]))
        codes.append(2)
    extent = side * size
    rest = n - n_fields
    kinds = rng.choice([1, 3, 4, 5, 6], size=rest, p=[0.25, 0.45, 0.1, 0.1, 0.1])
    for kind in kinds:
        x, y = rng.uniform(0, extent, 2)
        if kind == 1:  # pond
            g = shapely.Point(x, y).buffer(rng.uniform(4, 15), quad_segs=4)
        elif kind == 3:  # house
            w, h = rng.uniform(6, 14, 2)
            g = shapely.affinity.rotate(shapely.box(x, y, x + w, y + h), rng.uniform(0, 90))
        elif kind == 4:  # road segment
            length = rng.uniform(60, 200)
            angle = rng.uniform(0, np.pi)
            line = shapely.LineString([(x, y), (x + length * np.cos(angle), y + length * np.sin(angle))])
            g = line.buffer(rng.uniform(2, 4), cap_style="flat")
        else:  # forest or grass patch
            g = shapely.Point(x, y).buffer(rng.uniform(10, 30), quad_segs=3)
        geoms.append(g)
        codes.append(int(kind))
    return geoms, np.array(codes)


def naive_per_pair(geoms: list, codes: np.ndarray) -> list:
    import geopandas as gpd

    from geolabel.labels.schema import default_schema

    schema = default_schema()
    gdf = gpd.GeoDataFrame({"class_code": codes}, geometry=geoms)
    prio = np.array([schema.priority(int(c)) for c in codes])
    out = list(gdf.geometry)
    sindex = gdf.sindex
    for i, geom in enumerate(gdf.geometry):
        for j in sindex.query(geom, predicate="intersects"):
            if j != i and (prio[j] > prio[i] or (prio[j] == prio[i] and j < i)):
                out[i] = out[i].difference(gdf.geometry.iloc[j])
    return out


def overlay_by_class(geoms: list, codes: np.ndarray) -> object:
    import geopandas as gpd
    import pandas as pd

    from geolabel.labels.schema import default_schema

    schema = default_schema()
    gdf = gpd.GeoDataFrame({"class_code": codes}, geometry=geoms, crs="EPSG:32649")
    order = sorted(set(codes.tolist()), key=schema.priority, reverse=True)
    parts = []
    for k, code in enumerate(order):
        layer = gdf[gdf.class_code == code]
        higher = gdf[gdf.class_code.isin(order[:k])]
        if len(higher):
            layer = gpd.overlay(layer, higher[["geometry"]], how="difference", keep_geom_type=True)
        parts.append(layer)
    return pd.concat(parts)


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()

    import geopandas as gpd
    import shapely

    from geolabel.labels.resolve import resolve_overlaps
    from geolabel.labels.schema import default_schema
    from geolabel.labels.store import create_store

    geoms, codes = make_polygons(args.n)
    print(f"{len(geoms)} polygons, classes {dict(zip(*np.unique(codes, return_counts=True)))}")
    results: dict[str, float] = {}
    t, res = timed(resolve_overlaps, np.array(geoms, dtype=object), codes, default_schema())
    results["geolabel resolve_overlaps (in process)"] = t
    print(
        f"geolabel: {res.report.labels_in} -> {res.report.labels_out} labels, cut {res.report.cut}, "
        f"merged {res.report.merged}, overlap {res.report.overlap_area:.0f} m²"
    )
    tmp = Path(tempfile.mkdtemp(prefix="geolabel-bench-"))
    store = create_store(tmp / "labels.gpkg", crs="EPSG:32649")
    store.add(gpd.GeoDataFrame({"class_code": codes}, geometry=geoms, crs="EPSG:32649"))
    store.close()
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "geolabel", "labels", "resolve", str(tmp / "labels.gpkg"), "--min-area", "0"],
        check=True,
        capture_output=True,
    )
    results["geolabel labels resolve (CLI, GeoPackage read + write)"] = time.perf_counter() - t0
    if not args.skip_naive:
        t, naive = timed(naive_per_pair, geoms, codes)
        results["naive per-pair loop (geopandas sindex + shapely)"] = t
        t, over = timed(overlay_by_class, geoms, codes)
        results["geopandas.overlay by class"] = t
        # same answer: compare covered area per class (the naive loop does not merge same-class)
        union_geolabel = shapely.union_all(res.geometries).area
        union_naive = shapely.union_all(np.array(naive, dtype=object)).area
        print(
            f"union area: geolabel {union_geolabel:.1f} m², naive {union_naive:.1f} m², overlay "
            f"{over.union_all().area:.1f} m²"
        )
    base = results["geolabel resolve_overlaps (in process)"]
    print(f"\n{'contender':58s} {'s':>8s} {'x geolabel':>11s}")
    for name, t in results.items():
        print(f"{name:58s} {t:8.2f} {t / base:11.1f}")
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
