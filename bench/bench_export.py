"""Benchmark training-set export: 50,000 polygons on a 16 x 16 grid of 512 px chips.

Setup (not timed): the 8192 x 8192 benchmark scene of ``bench_tile.py`` is tiled into
256 chips of 512 px; 50,000 seeded land-cover polygons (fields, ponds, houses, roads,
tree patches; overlapping, as delivered) go into a geolabel label store and, for the
peers, into a GeoPackage layer.

Contenders (each a separate process; imports and start-up included; min of repeats):
- ``geolabel export --format geojson`` (RFC 7946 and pixel GeoJSON per chip, images
  linked, summary, manifest with checksums) and ``--format geojson,masks``;
- per-tile ``geopandas.clip`` + ``to_crs(4326)`` + ``to_file`` (GeoJSON) for every chip:
  what a user writes with geopandas;
- a lean STRtree reference: what a strong user writes for one lon/lat GeoJSON per chip
  (labels and footprints read with pyogrio, one STRtree, per chip a query,
  ``shapely.intersection`` and a pyproj ``Transformer`` through ``shapely.transform``,
  GeoJSON written with orjson, 2 forked processes); less than geolabel writes (no pixel
  GeoJSON, no linked images, no manifest), so it bounds what the export's core may cost;
- per-tile ``geopandas.clip`` + ``rasterio.features.rasterize`` masks (GeoJSON + masks);
- geoai's ``export_geotiff_tiles`` with the vector labels (image chips and label masks),
  when ``bench/work/geoai-venv`` exists (``python3 -m venv bench/work/geoai-venv &&
  bench/work/geoai-venv/bin/pip install torch==2.13.0 geoai-py``).

Usage: ``.venv/bin/python bench/bench_export.py [--n 50000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PER_TILE_GEOJSON = textwrap.dedent(
    """
    import sys, geopandas as gpd
    labels_path, index_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    labels = gpd.read_file(labels_path, layer="labels")
    tiles = gpd.read_file(index_path, layer="tiles")
    for tile in tiles.itertuples():
        clipped = gpd.clip(labels, tile.geometry)
        clipped.to_crs(4326).to_file(f"{out}/{tile.tile_id}.geojson", driver="GeoJSON")
    """
)

LEAN_STRTREE = textwrap.dedent(
    """
    import multiprocessing, sys
    import numpy as np, orjson, shapely
    from pyogrio.raw import read
    from pyproj import Transformer
    labels_path, index_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    _, _, wkb, (codes,) = read(labels_path, layer="labels", columns=["class_code"])
    geoms = shapely.from_wkb(wkb)
    meta, _, wkb, (tile_ids,) = read(index_path, layer="tiles", columns=["tile_id"])
    footprints = shapely.from_wkb(wkb)
    tree = shapely.STRtree(geoms)
    to_lonlat = Transformer.from_crs(meta["crs"], "EPSG:4326", always_xy=True)

    def lonlat(xy):
        return np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))

    def write(i):
        rows = tree.query(footprints[i], predicate="intersects")
        clipped = shapely.intersection(geoms[rows], footprints[i])
        keep = shapely.area(clipped) > 0
        world = shapely.to_geojson(shapely.transform(clipped[keep], lonlat))
        features = [{"type": "Feature", "properties": {"class_code": int(c)}, "geometry": orjson.Fragment(g)}
                    for c, g in zip(codes[rows][keep], world)]
        with open(f"{out}/{tile_ids[i]}.geojson", "wb") as fh:
            fh.write(orjson.dumps({"type": "FeatureCollection", "features": features}))

    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(write, range(len(footprints)), chunksize=8)
    """
)

PER_TILE_MASKS = textwrap.dedent(
    """
    import sys, geopandas as gpd, numpy as np, rasterio
    from pathlib import Path
    from rasterio.features import rasterize
    labels_path, index_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    labels = gpd.read_file(labels_path, layer="labels")
    tiles = gpd.read_file(index_path, layer="tiles")
    root = Path(index_path).parent
    for tile in tiles.itertuples():
        clipped = gpd.clip(labels, tile.geometry)
        clipped.to_crs(4326).to_file(f"{out}/{tile.tile_id}.geojson", driver="GeoJSON")
        with rasterio.open(root / tile.path) as chip:
            profile = dict(driver="GTiff", width=chip.width, height=chip.height, count=1, dtype="uint8",
                           crs=chip.crs, transform=chip.transform, nodata=255, compress="deflate")
        mask = rasterize(zip(clipped.geometry, clipped.class_code), out_shape=(profile["height"], profile["width"]),
                         transform=profile["transform"], fill=255, dtype="uint8")
        with rasterio.open(f"{out}/{tile.tile_id}_mask.tif", "w", **profile) as dst:
            dst.write(mask, 1)
    """
)

GEOAI = textwrap.dedent(
    """
    import sys
    from geoai.utils import export_geotiff_tiles
    scene, labels, out = sys.argv[1], sys.argv[2], sys.argv[3]
    export_geotiff_tiles(in_raster=scene, out_folder=out, in_class_data=labels, tile_size=512, stride=512,
                         class_value_field="class_code", quiet=True)
    """
)


def make_labels(n: int, extent: tuple[float, float, float, float], seed: int = 5) -> tuple[list, np.ndarray]:
    """Seeded polygons over ``extent``: a field grid and objects on top (overlapping)."""
    import shapely

    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = extent
    n_fields = int(n * 0.6)
    side = int(np.ceil(np.sqrt(n_fields)))
    size = (x1 - x0) / side
    geoms, codes = [], []
    for k in range(n_fields):
        r, c = divmod(k, side)
        gx, gy = x0 + c * size, y0 + r * size
        geoms.append(shapely.box(gx, gy, gx + size * 0.97, gy + size * 0.97))
        codes.append(int(rng.choice([2, 5, 6], p=[0.7, 0.15, 0.15])))
    for _ in range(n - n_fields):
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        kind = int(rng.choice([1, 3, 4], p=[0.3, 0.5, 0.2]))
        if kind == 1:
            g = shapely.Point(x, y).buffer(rng.uniform(2, 8), quad_segs=4)
        elif kind == 3:
            w, h = rng.uniform(4, 12, 2)
            g = shapely.affinity.rotate(shapely.box(x, y, x + w, y + h), rng.uniform(0, 90))
        else:
            a = rng.uniform(0, np.pi)
            length = rng.uniform(20, 80)
            g = shapely.LineString([(x, y), (x + length * np.cos(a), y + length * np.sin(a))]).buffer(
                2, cap_style="flat"
            )
        geoms.append(g)
        codes.append(kind)
    return geoms, np.array(codes)


def measure_rounds(contenders: dict[str, tuple[list[str], Path]], repeat: int) -> dict[str, dict[str, float]]:
    """:func:`measure` of every contender once per round, ``repeat`` rounds (a slow spell of
    the VM hits all contenders alike; see ``bench_tile.measure_rounds``)."""
    found: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, (cmd, out) in contenders.items():
            found[name].append(measure(cmd, out, 1))
    return {
        name: {"wall_s": min(m["wall_s"] for m in ms), "peak_mb": max(m["peak_mb"] for m in ms)}
        for name, ms in found.items()
    }


def measure(cmd: list[str], out: Path, repeat: int) -> dict[str, float]:
    """Min wall time and max peak memory over ``repeat`` runs, each into a fresh ``out``."""
    from bench_tile import measure as measure_tree
    from bench_tile import retire

    runs = []
    for _ in range(repeat):
        retire(out)  # kept until the end: deleting it slows the next run (see bench_tile.retire)
        if "export" not in cmd:  # geolabel creates its dataset folder itself (and refuses an existing one)
            out.mkdir(parents=True)
        runs.append(measure_tree(cmd, out=None, repeat=1))
    return {"wall_s": min(r["wall_s"] for r in runs), "peak_mb": max(r["peak_mb"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import geopandas as gpd
    import rasterio
    from bench_tile import DATA, make_scene

    from geolabel import tile_raster
    from geolabel.labels.store import create_store

    DATA.mkdir(exist_ok=True)
    scene = make_scene(DATA / "scene_8192.tif", 8192)
    work = Path(tempfile.mkdtemp(prefix="geolabel-bench-export-"))
    tiles = tile_raster(scene, work / "chips", size=512, workers=2)
    with rasterio.open(scene) as src:
        extent = tuple(src.bounds)
    geoms, codes = make_labels(args.n, extent)
    frame = gpd.GeoDataFrame({"class_code": codes}, geometry=geoms, crs="EPSG:32649")
    store = create_store(work / "labels.gpkg", crs="EPSG:32649")
    store.add(frame)
    store.close()
    frame.to_file(work / "labels_plain.gpkg", layer="labels", driver="GPKG")
    print(f"{len(tiles.chips)} chips, {args.n} polygons")

    py = sys.executable
    geolabel = [
        py,
        "-m",
        "geolabel",
        "export",
        str(work / "labels.gpkg"),
        "--tiles",
        str(tiles.index_path),
        "-q",
        "--split",
        "1",
        "--out",
        str(work / "ds"),
    ]
    (work / "per_tile.py").write_text(PER_TILE_GEOJSON)
    (work / "lean.py").write_text(LEAN_STRTREE)
    (work / "per_tile_masks.py").write_text(PER_TILE_MASKS)
    (work / "run_geoai.py").write_text(GEOAI)
    lbl, idx = str(work / "labels.gpkg"), str(tiles.index_path)
    contenders = {  # (command, output folder)
        "geolabel export --format geojson": ([*geolabel, "--format", "geojson"], work / "ds"),
        "per-tile geopandas.clip + to_file": ([py, str(work / "per_tile.py"), lbl, idx, str(work / "o")], work / "o"),
        "lean STRtree reference, 2 procs, lon/lat GeoJSON": (
            [py, str(work / "lean.py"), lbl, idx, str(work / "o")],
            work / "o",
        ),
        "geolabel export --format geojson,masks": ([*geolabel, "--format", "geojson,masks"], work / "ds"),
        "per-tile geopandas.clip + to_file + rasterize": (
            [py, str(work / "per_tile_masks.py"), lbl, idx, str(work / "o")],
            work / "o",
        ),
    }
    runs = measure_rounds(contenders, args.repeat)
    geoai_py = HERE / "work" / "geoai-venv" / "bin" / "python"
    has_geoai = (
        geoai_py.exists() and subprocess.run([str(geoai_py), "-c", "import geoai"], capture_output=True).returncode == 0
    )
    if has_geoai:
        runs["geoai export_geotiff_tiles (chips + masks)"] = measure(
            [str(geoai_py), str(work / "run_geoai.py"), str(scene), str(work / "labels_plain.gpkg"), str(work / "o")],
            work / "o",
            1,
        )
    shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'contender':50s} {'wall s':>8s} {'peak MB':>8s}")
    for name, m in runs.items():
        print(f"{name:50s} {m['wall_s']:8.2f} {m['peak_mb']:8.0f}")
    g1 = runs["geolabel export --format geojson"]["wall_s"]
    g2 = runs["geolabel export --format geojson,masks"]["wall_s"]
    print(
        f"\nper-tile clip / geolabel (GeoJSON)          {runs['per-tile geopandas.clip + to_file']['wall_s'] / g1:6.2f}"
    )
    lean = runs["lean STRtree reference, 2 procs, lon/lat GeoJSON"]["wall_s"]
    print(f"lean STRtree reference / geolabel (GeoJSON)  {lean / g1:6.2f}")
    print(
        f"per-tile clip+rasterize / geolabel (+masks) "
        f"{runs['per-tile geopandas.clip + to_file + rasterize']['wall_s'] / g2:6.2f}"
    )
    if "geoai export_geotiff_tiles (chips + masks)" in runs:
        print(
            f"geoai / geolabel (GeoJSON + masks)          {runs['geoai export_geotiff_tiles (chips + masks)']['wall_s'] / g2:6.2f}"
        )
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
