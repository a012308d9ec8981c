"""``kill -9`` (and SIGTERM, Ctrl-C) through the real command line, while work is in flight.

Afterwards the outputs must be intact (no partial file or dataset under a final name, a
store that passes ``PRAGMA integrity_check`` with all or none of an import), the worker
processes must be gone, and rerunning the same command must give exactly what an
uninterrupted run gives, without redoing complete work. The kill moment comes from
polling the output (first chips written, dataset files being built, the import's
transaction journal), never from a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import fiona
import numpy as np
import pytest

from geolabel import tile_raster
from geolabel.export import export_dataset
from geolabel.labels.importer import import_labels
from geolabel.labels.store import create_store
from geolabel.tileindex import read_index

from .badinput import ROOT, run_geolabel
from .conftest import make_scene, village_store
from .outputs import chip_bytes, dataset_state, identity, index_status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

TIMEOUT = 300  # seconds; generous for a loaded 2-core machine


class Run:
    """``python -m geolabel ARGS`` in its own session (so Ctrl-C can go to its process group).

    stderr goes to a file, not a pipe: workers that outlive a killed parent would hold a
    pipe open and hang the reader.
    """

    def __init__(self, *args: object, cwd: Path) -> None:
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as the run)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "geolabel", *map(str, args)],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            text=True,
            start_new_session=True,
        )

    def error_output(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Poll ``condition`` until it holds while the command still runs."""
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail(f"the command ended (exit {self.proc.returncode}) before {what}: {self.error_output()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.005)

    def signal(self, sig: int, *, group: bool = False) -> tuple[int, str, list[int]]:
        """Send ``sig`` (to the process group for Ctrl-C); returns (exit code, stderr, worker
        pids still running 60 s later, which must be none: workers end with their parent)."""
        assert self.proc.poll() is None, "nothing left to interrupt"
        kids = children(self.proc.pid)
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=TIMEOUT)
            deadline = time.monotonic() + 60
            while not all(has_ended(k) for k in kids) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            alive = [k for k in kids if not has_ended(k)]
            for k in alive:  # never leave them behind, whatever the test says
                os.kill(k, signal.SIGKILL)
        return self.proc.returncode, self.error_output(), alive


def children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def has_ended(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat.rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")  # a zombie has ended


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------------
# geolabel tile

TILE_ARGS = ("--size", "64", "--compress", "zstd", "--workers", "2", "-q")


@pytest.fixture(scope="module")
def tiling(tmp_path_factory):
    """A 2048 x 1024 px scene (512 chips of 64 px, re-encoded) and an uninterrupted run's output."""
    root = tmp_path_factory.mktemp("kill_tile")
    scene = make_scene(root / "s.tif", width=2048, height=1024, count=3, block=256, nodata=None)
    reference = tile_raster(scene, root / "reference", size=64, compress="zstd", workers=2)
    return root, scene, reference


def n_chips(folder: Path) -> int:
    return len(list(folder.glob("[!.]*.tif"))) if folder.is_dir() else 0


def assert_rerun_finishes_the_job(root: Path, out: Path, reference) -> None:
    """After an interruption: every chip on disk is complete and, once the run's index
    exists, kept by the rerun, which ends with the chips and index of an uninterrupted run."""
    ref_chips = chip_bytes(reference.out_dir / "s")
    on_disk = {p.name: identity(p) for p in (out / "s").glob("[!.]*.tif")}
    left = chip_bytes(out / "s")
    assert all(left[name] == ref_chips[name] for name in left)  # no partial chip under a final name
    if (out / "tiles.gpkg").exists():
        assert integrity(out / "tiles.gpkg") == "ok"
        listed, _, _ = read_index(out / "tiles.gpkg")
        assert {r.tile_id + ".tif" for r in listed} <= set(on_disk)
    else:  # killed before its index first appeared: its chips (all in flight then) are redone
        on_disk = {}
    rerun = run_geolabel("tile", "s.tif", "--out", out.name, *TILE_ARGS[:-1], cwd=root, timeout=TIMEOUT)
    assert rerun.code == 0, rerun.stderr
    assert f"{len(on_disk)} already done" in rerun.stdout, rerun.stdout
    assert {p.name: identity(p) for p in (out / "s").glob("[!.]*.tif") if p.name in on_disk} == on_disk
    assert chip_bytes(out / "s") == ref_chips
    assert read_index(out / "tiles.gpkg") == read_index(reference.index_path)
    assert index_status(out / "tiles.gpkg") == "complete"
    assert hidden(out) == [] and hidden(out / "s") == []  # temporaries of the killed run swept


@pytest.mark.parametrize("moment", [1, 150])
def test_tile_killed_with_sigkill_loses_only_the_chips_in_flight(tiling, moment):
    root, _, reference = tiling
    out = root / f"killed_{moment}"
    run = Run("tile", "s.tif", "--out", out.name, *TILE_ARGS, cwd=root)
    run.wait_until(lambda: n_chips(out / "s") >= moment, f"{moment} chips were written")
    code, _, alive = run.signal(signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert alive == [], "worker processes outlived the killed run"
    assert n_chips(out / "s") < 512
    if moment > 1:
        # the index is first written when the first tasks are queued; 150 chips take longer
        # than that write (they are more than the first batch in flight, 4 tasks x 32 chips),
        # while after 1 chip the write may still be under way
        assert (out / "tiles.gpkg").exists()
    assert_rerun_finishes_the_job(root, out, reference)


def test_tile_terminated_writes_its_index_and_says_so_in_one_line(tiling):
    root, _, reference = tiling
    out = root / "terminated"
    run = Run("tile", "s.tif", "--out", out.name, *TILE_ARGS, cwd=root)
    run.wait_until(lambda: n_chips(out / "s") >= 100, "100 chips were written")
    code, err, alive = run.signal(signal.SIGTERM)
    assert (code, err.strip()) == (143, "geolabel: terminated")
    assert alive == []
    assert index_status(out / "tiles.gpkg") == "incomplete"
    assert len(read_index(out / "tiles.gpkg")[0]) > 0
    assert hidden(out / "s") == []  # the stopped workers' temporaries are gone
    assert_rerun_finishes_the_job(root, out, reference)


def test_tile_interrupted_early_with_ctrl_c_leaves_an_index_to_resume(tiling):
    root, _, reference = tiling
    out = root / "ctrl_c"
    run = Run("tile", "s.tif", "--out", out.name, *TILE_ARGS, cwd=root)
    run.wait_until(lambda: n_chips(out / "s") >= 1, "the first chip was written")
    code, err, alive = run.signal(signal.SIGINT, group=True)  # what a terminal's Ctrl-C does
    assert (code, err.strip()) == (130, "geolabel: interrupted")
    assert alive == []
    assert index_status(out / "tiles.gpkg") == "incomplete"
    assert_rerun_finishes_the_job(root, out, reference)


# ---------------------------------------------------------------------------------
# geolabel export


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """The village in 64 px chips (1024) with its labels, and an uninterrupted export."""
    root = tmp_path_factory.mktemp("kill_export")
    labels, index = village_store(root, size=64, workers=2)
    export_dataset(labels, index, root / "reference", formats="geojson,masks", workers=2)
    return root, dataset_state(root / "reference")


EXPORT_ARGS = ("labels.gpkg", "--tiles", "chips/tiles.gpkg", "--format", "geojson,masks", "--workers", "2", "-q")


def building(root: Path, name: str) -> Callable[[], bool]:
    """True once a temporary dataset folder for ``name`` holds some label files."""

    def condition() -> bool:
        return any(sum(1 for _ in (tmp / "labels").rglob("*.tif")) >= 20 for tmp in root.glob(f".{name}.*.tmp"))

    return condition


def test_export_killed_with_sigkill_leaves_no_dataset_and_the_rerun_builds_it(labelled):
    root, reference = labelled
    run = Run("export", *EXPORT_ARGS, "--out", "ds", cwd=root)
    run.wait_until(building(root, "ds"), "the dataset was being built")
    code, _, alive = run.signal(signal.SIGKILL)
    assert code == -signal.SIGKILL and alive == []
    assert not (root / "ds").exists()  # no partial dataset under the final name
    assert list(root.glob(".ds.*.tmp"))  # only the killed run's temporary folder
    rerun = run_geolabel("export", *EXPORT_ARGS, "--out", "ds", cwd=root, timeout=TIMEOUT)
    assert rerun.code == 0, rerun.stderr
    assert dataset_state(root / "ds") == reference
    assert not list(root.glob(".ds.*"))  # the killed run's temporary folder was swept


def test_export_overwrite_killed_with_sigkill_keeps_the_old_dataset(labelled):
    root, reference = labelled
    first = run_geolabel("export", *EXPORT_ARGS, "--out", "old", "--seed", "7", "--format", "geojson", cwd=root)
    assert first.code == 0, first.stderr
    before = dataset_state(root / "old")
    run = Run("export", *EXPORT_ARGS, "--out", "old", "--overwrite", cwd=root)
    run.wait_until(building(root, "old"), "the new dataset was being built")
    code, _, alive = run.signal(signal.SIGKILL)
    assert code == -signal.SIGKILL and alive == []
    assert dataset_state(root / "old") == before
    rerun = run_geolabel("export", *EXPORT_ARGS, "--out", "old", "--overwrite", cwd=root, timeout=TIMEOUT)
    assert rerun.code == 0, rerun.stderr
    assert dataset_state(root / "old") == reference
    assert not list(root.glob(".old.*"))


# ---------------------------------------------------------------------------------
# geolabel labels import


@pytest.fixture(scope="module")
def delivery(tmp_path_factory):
    """40,000 small polygons in three classes, and the rows an uninterrupted import stores."""
    import geopandas as gpd
    import shapely

    root = tmp_path_factory.mktemp("kill_import")
    rng = np.random.default_rng(0)
    n = 40_000
    x, y = rng.uniform(686000, 690000, n), rng.uniform(3120000, 3124000, n)
    boxes = shapely.box(x, y, x + rng.uniform(5, 30, n), y + rng.uniform(5, 30, n))
    classes = rng.choice(["water", "farmland", "forest"], n)
    gpd.GeoDataFrame({"class": classes}, geometry=boxes, crs="EPSG:32649").to_file(root / "big.gpkg")
    store = create_store(root / "reference.gpkg", crs="EPSG:32649")
    import_labels(store, [root / "big.gpkg"], class_field="class", labeler="li")
    store.close()
    return root, label_rows(root / "reference.gpkg")


def label_rows(store: Path) -> list[tuple[object, ...]]:
    """Every label's content (ids and timestamps differ between imports by design)."""
    with sqlite3.connect(store) as conn:
        rows = conn.execute(
            "SELECT hex(geom), class_code, class_name, labeler, team, status, source, tile_id, comment, version "
            "FROM labels"
        ).fetchall()
    return sorted(rows, key=repr)


IMPORT_ARGS = ("labels", "import", "store.gpkg", "big.gpkg", "--class-field", "class", "--labeler", "li")


def test_labels_import_killed_with_sigkill_leaves_the_store_intact(delivery):
    root, reference = delivery
    store = root / "store.gpkg"
    create_store(store, crs="EPSG:32649").close()
    run = Run(*IMPORT_ARGS, cwd=root)
    journal = root / "store.gpkg-journal"
    run.wait_until(journal.exists, "the import's write transaction began")
    code, _, alive = run.signal(signal.SIGKILL)
    assert code == -signal.SIGKILL and alive == []
    assert integrity(store) == "ok"  # opening it rolls the hot journal back
    assert len(label_rows(store)) in (0, 40_000)  # all or nothing
    if label_rows(store):
        pytest.fail("the import had committed before the kill; nothing was in flight")
    with fiona.open(store, layer="labels") as layer:  # still a GeoPackage GDAL reads
        assert len(layer) == 0
    rerun = run_geolabel(*IMPORT_ARGS, cwd=root, timeout=TIMEOUT)
    assert rerun.code == 0, rerun.stderr
    assert label_rows(store) == reference
    assert integrity(store) == "ok"


def test_a_ctrl_c_during_an_import_is_delivered_just_after_it(tmp_path, monkeypatch):
    """Raised inside an import, a KeyboardInterrupt can be dropped (Cython modules run code
    while imported) and leaves a half-imported module; the CLI's handler lets the import
    finish and delivers the Ctrl-C right after it, and records it for the batch loops."""
    from geolabel.cli import _on_signal
    from geolabel.stop import clear_stop, stop_requested

    (tmp_path / "geolabel_test_slow_module.py").write_text(
        "import signal\nsignal.raise_signal(signal.SIGINT)\nDONE = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = signal.signal(signal.SIGINT, _on_signal)
    clear_stop()
    try:
        with pytest.raises(KeyboardInterrupt):
            import geolabel_test_slow_module  # noqa: F401

            time.sleep(10)  # the Ctrl-C arrives here, after the import
        assert stop_requested() == signal.SIGINT
    finally:
        signal.signal(signal.SIGINT, previous)
        clear_stop()
    assert sys.modules["geolabel_test_slow_module"].DONE


def test_a_ctrl_c_during_a_tile_index_write_waits_for_its_end(tmp_path, monkeypatch):
    """Cut inside fiona, a half-written GeoPackage failed again when Python collected it
    ("Exception ignored in: Session.__dealloc__" after "geolabel: interrupted"); the CLI's
    handler lets the write finish and delivers the Ctrl-C right after it."""
    from geolabel import tileindex
    from geolabel.cli import _on_signal
    from geolabel.stop import clear_stop

    reference = tile_raster(make_scene(tmp_path / "s.tif", width=640, height=640), tmp_path / "ref", size=32)
    chips = read_index(reference.index_path)[0]
    footprints = tileindex._footprints

    def interrupted_footprints(records, crs):  # Ctrl-C while fiona writes the 100th row
        for n, geom in enumerate(footprints(records, crs)):
            if n == 100:
                os.kill(os.getpid(), signal.SIGINT)
            yield geom

    monkeypatch.setattr(tileindex, "_footprints", interrupted_footprints)
    previous = signal.signal(signal.SIGINT, _on_signal)
    clear_stop()
    try:
        with pytest.raises(KeyboardInterrupt):
            tileindex.write_index(tmp_path / "tiles.gpkg", chips, [], crs="EPSG:32649", params={}, complete=False)
            time.sleep(10)  # not reached: the Ctrl-C comes as the write ends
    finally:
        signal.signal(signal.SIGINT, previous)
        clear_stop()
    assert len(chips) == 400
    assert read_index(tmp_path / "tiles.gpkg")[0] == chips  # the write finished and was renamed
