"""Benchmark scaling out: a batch of scenes serial, on local processes and on a Dask
cluster; and the memory of exporting 500,000 labels.

1. Tiling 8 scenes (4096 x 4096, 4-band uint8, DEFLATE, 512 px blocks, nodata 0 outside a
   rotated footprint, so every window is decoded once to count nodata; 512 px chips):
   ``geolabel tile --workers 1``, ``--workers 2``, and ``--scheduler`` on a loopback cluster
   of two single-thread ``dask worker`` processes started before the clock (an existing
   cluster, as users have one). Each run is its own process (start-up included), min of
   repeats. The cluster's workers are other processes, so its peak memory is not comparable
   and is not reported.
2. Per-task overhead: 400 no-op tasks through :func:`geolabel.parallel.run_batch` on a
   local pool of 2 processes and on the cluster (ms per task, in one process).
3. Export of N labels (``geolabel export --format geojson``, 256 chips of the 8192 px
   benchmark scene) for N = 50,000, 200,000 and 500,000, against a process that only reads
   the store (``store.read()``): peak memory of the process tree, and its growth per label.

Usage: ``.venv/bin/python bench/bench_scale.py [--repeat 3] [--parts tile,overhead,export]``
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

READ_STORE = textwrap.dedent(
    """
    import sys
    from geolabel.labels.store import open_store
    with open_store(sys.argv[1]) as store:
        labels = store.read()
    print(len(labels))
    """
)


def noop(x: int) -> int:
    return x


def bench_tile(work: Path, cluster: object, repeat: int) -> dict[str, dict[str, float]]:
    from bench_tile import make_scene, measure

    scenes = [make_scene(work / f"scene_{k}.tif", 4096, nodata=0, seed=20 + k) for k in range(8)]
    base = [sys.executable, "-m", "geolabel", "tile", *map(str, scenes), "--size", "512", "-q", "--out"]
    runs = {}
    for name, extra in (
        ("geolabel tile --workers 1", ["--workers", "1"]),
        ("geolabel tile --workers 2", ["--workers", "2"]),
        ("geolabel tile --scheduler (2 loopback workers)", ["--scheduler", str(cluster.scheduler_file)]),  # type: ignore[attr-defined]
    ):
        out = work / "chips"
        runs[name] = measure([*base, str(out), *extra], out=out, repeat=repeat, px=4096)  # emptied before each run
        _clear(out)
    return runs


def _clear(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)


def bench_overhead(cluster: object) -> dict[str, float]:
    from geolabel.cluster import cluster_executor
    from geolabel.parallel import local_executor, run_batch

    n = 400
    out = {}
    with local_executor(2) as pool:
        t0 = time.perf_counter()
        run_batch(noop, range(n), on_result=lambda t, r: None, executor=pool)
        out["local pool, 2 processes"] = (time.perf_counter() - t0) / n * 1000
    with cluster_executor(str(cluster.scheduler_file)) as executor:  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        run_batch(noop, range(n), on_result=lambda t, r: None, executor=executor)
        out["Dask cluster, 2 workers"] = (time.perf_counter() - t0) / n * 1000
    return out


def bench_export(work: Path, sizes: list[int]) -> dict[int, dict[str, float]]:
    import geopandas as gpd
    import rasterio
    from bench_export import make_labels
    from bench_tile import DATA, make_scene, measure

    from geolabel import tile_raster
    from geolabel.labels.store import create_store

    DATA.mkdir(exist_ok=True)
    scene = make_scene(DATA / "scene_8192.tif", 8192)
    tiles = tile_raster(scene, work / "chips8192", size=512, workers=2)
    with rasterio.open(scene) as src:
        extent = tuple(src.bounds)
    (work / "read_store.py").write_text(READ_STORE)
    out: dict[int, dict[str, float]] = {}
    for n in sizes:
        geoms, codes = make_labels(n, extent)
        store_path = work / f"labels_{n}.gpkg"
        with create_store(store_path, crs="EPSG:32649") as store:
            for k in range(0, n, 100_000):
                part = slice(k, k + 100_000)
                store.add(gpd.GeoDataFrame({"class_code": codes[part]}, geometry=geoms[part], crs="EPSG:32649"))
        del geoms
        read = measure([sys.executable, str(work / "read_store.py"), str(store_path)], repeat=1)
        export_cmd = [sys.executable, "-m", "geolabel", "export", str(store_path), "--tiles", str(tiles.index_path)]
        ds = work / "ds"
        _clear(ds)
        exp = measure([*export_cmd, "--format", "geojson", "--split", "1", "-q", "--out", str(ds)], repeat=1)
        _clear(ds)
        out[n] = {"read_peak_mb": read["peak_mb"], "export_peak_mb": exp["peak_mb"], "export_s": exp["wall_s"]}
        store_path.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parts", default="tile,overhead,export")
    parser.add_argument("--sizes", default="50000,200000,500000")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    from tests.daskcluster import start

    work = Path(tempfile.mkdtemp(prefix="geolabel-bench-scale-"))
    cluster = start(work / "dask") if parts & {"tile", "overhead"} else None
    try:
        if "tile" in parts:
            runs = bench_tile(work, cluster, args.repeat)
            print(f"\n{'8 scenes of 4096 px, 512 px chips':52s} {'wall s':>8s} {'x serial':>9s}")
            serial = runs["geolabel tile --workers 1"]["wall_s"]
            for name, m in runs.items():
                print(f"{name:52s} {m['wall_s']:8.2f} {serial / m['wall_s']:9.2f}")
        if "overhead" in parts:
            print(f"\n{'per-task overhead (400 no-op tasks)':52s} {'ms/task':>8s}")
            for name, ms in bench_overhead(cluster).items():
                print(f"{name:52s} {ms:8.2f}")
    finally:
        if cluster is not None:
            cluster.stop()
    if "export" in parts:
        sizes = [int(s) for s in args.sizes.split(",")]
        rows = bench_export(work, sizes)
        print(f"\n{'export --format geojson, 256 chips':36s} {'read MB':>8s} {'export MB':>10s} {'export s':>9s}")
        for n, m in rows.items():
            print(
                f"{n:>10,d} labels {'':18s} {m['read_peak_mb']:8.0f} {m['export_peak_mb']:10.0f} {m['export_s']:9.1f}"
            )
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
