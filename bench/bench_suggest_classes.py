"""Training and prediction seconds of `suggest classes` on the village scene, 1 and 2 workers.

The store holds the reference labels with the four diagonal tiles of the 512 px grid
marked done (as tests/test_suggest_classes.py). Training: sampling the sites and fitting
the two forests (hold-out and final); prediction: classifying, cleaning and polygonizing
the twelve other tiles. Min of repeats. Run: python bench/bench_suggest_classes.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import geolabel.suggest.classes as engine
from geolabel import tile_raster
from geolabel.labels.importer import import_labels
from geolabel.labels.store import create_store

SCENE = Path(__file__).parent.parent / "sample_data" / "village.tif"
LABELS = SCENE.with_name("village_labels.gpkg")
TRAINING = ("village_r000_c000", "village_r001_c001", "village_r002_c002", "village_r003_c003")
REPEATS = 3


def timed(fn: Any, spent: list[float]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    return wrapper


def run(index: Path, store: Path, workers: int) -> tuple[float, float]:
    spent: list[float] = []
    sample, fit = engine._site_samples, engine._fit
    engine._site_samples, engine._fit = timed(sample, spent), timed(fit, spent)
    try:
        t0 = time.perf_counter()
        engine.suggest_classes(SCENE, store=store, tiles=index, workers=workers)
        total = time.perf_counter() - t0
    finally:
        engine._site_samples, engine._fit = sample, fit
    return sum(spent), total - sum(spent)


def main() -> None:
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        index = tile_raster(SCENE, Path(tmp) / "chips", size=512, workers=1).index_path
        with create_store(Path(tmp) / "labels.gpkg", crs="EPSG:32649") as store:
            import_labels(store, [LABELS])
            for tile_id in TRAINING:
                store.set_tile_status(tile_id, "done")
        for workers in (1, 2):
            times = [run(index, Path(tmp) / "labels.gpkg", workers) for _ in range(REPEATS)]
            train, predict = min(t for t, _ in times), min(p for _, p in times)
            print(f"workers={workers}: training {train:.2f} s, prediction {predict:.2f} s")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
