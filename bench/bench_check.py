"""Benchmark ``geolabel check`` on 50,000 polygons (target: under a minute on 2 cores).

The delivery is the seeded 50,000-polygon layout of ``bench_resolve.py`` (a field grid whose
borders overlap, ponds, houses, roads and patches on top), written as a GeoPackage with
labeler and team attributes and checked against an AOI covering it, with the full report
(findings GeoPackage, JSON, HTML with thumbnails). Wall time of the whole command with
``--workers 1`` and ``--workers 2``, and of :func:`geolabel.qa.check_labels` alone (no
reading, no report) for both; the two reports must hold the same findings. Then the same
layout resolved (neighbours sharing edges, as a cleaned delivery has them: QA overlays on
the 0.1 µm grid there, not in floating point).

Usage: ``.venv/bin/python bench/bench_check.py [--n 50000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


#: The core of QA written plainly, as a user would (issue 15's reference): validity, the
#: overlapping pairs from an STRtree with their intersection areas, and the gaps as the AOI
#: minus the union of all labels; one process, no report, shapely's default overlay.
PLAIN_CORE = """
import sys, numpy as np, pyogrio, shapely
geoms = pyogrio.read_dataframe(sys.argv[1]).geometry.values
aoi = pyogrio.read_dataframe(sys.argv[2]).geometry.values[0]
invalid = ~shapely.is_valid(geoms)
fixed = np.asarray(shapely.make_valid(geoms))
tree = shapely.STRtree(fixed)
left, right = tree.query(fixed, predicate="intersects")
keep = left < right
left, right = left[keep], right[keep]
areas = shapely.area(shapely.intersection(fixed[left], fixed[right]))
overlaps = int((areas > 0.01).sum())
gaps = shapely.get_parts(shapely.difference(aoi, shapely.union_all(fixed)))
print(f"{int(invalid.sum())} invalid, {overlaps} overlaps, {len(gaps)} gaps")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import geopandas as gpd
    import numpy as np
    import shapely
    from bench_resolve import make_polygons

    geoms, codes = make_polygons(args.n)
    rng = np.random.default_rng(1)
    names = {1: "water", 2: "farmland", 3: "building", 4: "road", 5: "forest", 6: "grassland"}
    frame = gpd.GeoDataFrame(
        {
            "class_name": [names[int(c)] for c in codes],
            "labeler": rng.choice(["li", "wang", "zhang", "liu"], size=len(codes)),
            "team": rng.choice(["hunan", "hubei"], size=len(codes)),
        },
        geometry=geoms,
        crs="EPSG:32649",
    )
    work = Path(tempfile.mkdtemp(prefix="geolabel-bench-check-"))
    frame.to_file(work / "delivery.gpkg")
    b = shapely.total_bounds(np.array(geoms, dtype=object))
    gpd.GeoDataFrame(geometry=[shapely.box(*b)], crs="EPSG:32649").to_file(work / "aoi.gpkg")
    delivery, aoi = work / "delivery.gpkg", work / "aoi.gpkg"
    docs, docs_wall = {}, {}
    (work / "plain_core.py").write_text(PLAIN_CORE)
    plain_walls = []
    for round_ in range(args.repeat):  # geolabel and the plain core alternate: a slow spell hits both
        for workers in (1, 2) if round_ == 0 else (2,):
            wall, proc, doc = run_command(delivery, aoi, work / f"qa{workers}-{round_}", workers)
            docs[workers], docs_wall[workers] = doc, min(wall, docs_wall.get(workers, wall))
            print(
                f"--workers {workers}: {len(geoms)} polygons checked with report in {wall:.1f} s "
                f"(exit {proc.returncode}); {doc['errors']} errors, {doc['warnings']} warnings; counts {doc['counts']}"
            )
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, str(work / "plain_core.py"), str(delivery), str(aoi)], capture_output=True
        )
        plain_walls.append(time.perf_counter() - t0)
        print(f"plain QA core (one process, no report): {plain_walls[-1]:.2f} s: {out.stdout.decode().strip()}")
    print(f"reports equal: {docs[1] == docs[2]}")
    plain = min(plain_walls)
    print(
        f"best of {args.repeat}: geolabel check --workers 2 with report {docs_wall[2]:.2f} s, plain core {plain:.2f} s; "
        f"geolabel / plain core: {docs_wall[2] / plain:.2f}"
    )
    for workers in (1, 2):
        print(f"check_labels alone, workers={workers}: {time_check(delivery, aoi, workers):.1f} s")
    resolved = resolved_delivery(geoms, codes, names, work / "resolved.gpkg")
    wall, proc, doc = run_command(resolved, aoi, work / "qa_resolved", 2)
    print(
        f"the same layout resolved ({doc['features']} labels sharing edges, so every overlay takes the grid), "
        f"--workers 2 with report: {wall:.1f} s; counts {doc['counts']}"
    )
    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    shutil.rmtree(work, ignore_errors=True)


def resolved_delivery(geoms: list[Any], codes: Any, names: dict[int, str], path: Path) -> Path:
    """The layout after ``labels resolve`` (priority cuts): neighbours share edges exactly,
    cut vertices lie at rounding distance from their neighbours' edges."""
    import geopandas as gpd
    import numpy as np

    from geolabel.labels.resolve import resolve_overlaps
    from geolabel.labels.schema import default_schema

    res = resolve_overlaps(np.array(geoms, dtype=object), codes, default_schema())
    rng = np.random.default_rng(2)
    frame = gpd.GeoDataFrame(
        {
            "class_name": [names.get(int(c), "farmland") for c in res.codes],
            "labeler": rng.choice(["li", "wang"], size=len(res.codes)),
            "team": rng.choice(["hunan", "hubei"], size=len(res.codes)),
        },
        geometry=list(res.geometries),
        crs="EPSG:32649",
    )
    frame.to_file(path)
    return path


def run_command(delivery: Path, aoi: Path, out: Path, workers: int) -> tuple[float, Any, dict[str, Any]]:
    """(wall seconds, the process, findings.json) of one ``geolabel check`` with the report."""
    cmd = [sys.executable, "-m", "geolabel", "check", str(delivery), "--aoi", str(aoi)]
    cmd += ["--require", "labeler,team", "--workers", str(workers), "--out", str(out), "-q"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return wall, proc, json.loads((out / "findings.json").read_text())


def time_check(delivery: Path, aoi: Path, workers: int) -> float:
    """Seconds of :func:`check_labels` on the loaded delivery (the checks alone)."""
    from geolabel.qa import check_labels, load_delivery

    loaded = load_delivery(delivery)
    t0 = time.perf_counter()
    check_labels(loaded, aoi=aoi, require="labeler,team", workers=workers)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
