"""Benchmark ``geolabel tags suggest``: the village cut into 64 and 32 px chips (940 and
3,737 tiles: the grid's all-nodata cells are skipped), a water and a forest rule, dry run
(no writes), min of the repeats. The time should grow at most linearly with the tiles (one
STRtree query per class, vectorised intersections, one union per tile): a ratio of about
4 or less, not 16.

Usage: ``PYTHONPATH=. .venv/bin/python bench/bench_tags.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"


def main() -> None:
    from geolabel import tile_raster
    from geolabel.labels.importer import import_labels
    from geolabel.labels.store import create_store
    from geolabel.labels.tag_rules import suggest_tags
    from geolabel.labels.tagschema import load_tag_schema

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "labels.gpkg"
        with create_store(store, crs="EPSG:32649", tag_schema=load_tag_schema(SAMPLE / "village_tags.toml")) as st:
            import_labels(st, [SAMPLE / "village_labels.gpkg"])
        for size in (64, 32):
            index = tile_raster(SAMPLE / "village.tif", Path(tmp) / f"chips{size}", size=size, workers=2).index_path
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                result = suggest_tags(store, index, ["water>=0.05", "forest>=0.2"], dry_run=True)
                times.append(time.perf_counter() - start)
            results[result.tiles] = {"seconds": min(times), "tagged": {k: len(v) for k, v in result.tagged.items()}}
    small, large = sorted(results)
    report = {
        "tiles": results,
        "ratio_time": results[large]["seconds"] / results[small]["seconds"],
        "ratio_tiles": large / small,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
