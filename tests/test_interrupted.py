"""Interrupted and killed runs: what they leave behind, and what the next run makes of it.

A chip exists under its final name only when complete, so the next run of the same job
keeps every complete chip (listed in the index or not) and redoes only the rest; the
index of a running job is rewritten every few seconds; temporary files of dead
processes are swept, those of live ones left alone; a dataset a killed export had moved
aside is put back.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from geolabel import tile_raster
from geolabel.errors import OutputExistsError, RecoveredOutputWarning
from geolabel.export import export_dataset
from geolabel.files import HOST_TAG, sweep_stale, temp_pattern
from geolabel.tileindex import read_index

from .conftest import make_scene, village_store
from .outputs import chip_bytes, dataset_state, dead_pid, identity, index_status


class Interrupt:
    """A progress callback that raises KeyboardInterrupt (Ctrl-C) once ``after`` is passed."""

    def __init__(self, after: float) -> None:
        self.after = after

    def __call__(self, fraction: float) -> None:
        if fraction >= self.after:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """1024 x 512 px, 128 chips of 64 px, and the chips of an uninterrupted run."""
    root = tmp_path_factory.mktemp("interrupted")
    path = make_scene(root / "s.tif", width=1024, height=512, count=3, block=64, nodata=None)
    reference = tile_raster(path, root / "reference", size=64, compress="zstd", workers=1)
    return path, reference


def test_an_interrupted_run_lists_its_chips_and_the_rerun_finishes_the_job(scene, tmp_path):
    path, reference = scene
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        tile_raster(path, out, size=64, compress="zstd", workers=1, progress=Interrupt(0.3))
    assert index_status(out / "tiles.gpkg") == "incomplete"
    listed, _, _ = read_index(out / "tiles.gpkg")
    assert 0 < len(listed) < 128
    assert {r.tile_id + ".tif" for r in listed} == set(chip_bytes(out / "s"))  # every chip on disk is listed

    again = tile_raster(path, out, size=64, compress="zstd", workers=1)
    assert again.resumed == len(listed) and again.written == 128 - len(listed)
    assert index_status(out / "tiles.gpkg") == "complete"
    assert read_index(out / "tiles.gpkg") == read_index(reference.index_path)
    assert chip_bytes(out / "s") == chip_bytes(reference.out_dir / "s")


def test_complete_chips_a_killed_run_did_not_list_are_kept_and_stale_temporaries_swept(scene, tmp_path):
    """What kill -9 leaves: an index listing the chips of a few seconds ago, more complete
    chips, temporaries of dead workers. A chip that is not the planned one is redone."""
    path, reference = scene
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        tile_raster(path, out, size=64, compress="zstd", workers=1, progress=Interrupt(0.01))
    listed = {r.tile_id for r in read_index(out / "tiles.gpkg")[0]}
    assert len(listed) == 32  # one task
    # chips the killed run finished but never listed, straight from the reference run
    ref_dir = reference.out_dir / "s"
    unlisted = ["s_r004_c000", "s_r004_c001", "s_r005_c003", "s_r007_c015"]
    for tid in unlisted:
        shutil.copy2(ref_dir / f"{tid}.tif", out / "s" / f"{tid}.tif")
    shutil.copy2(ref_dir / "s_r000_c000.tif", out / "s" / "s_r006_c006.tif")  # not the planned chip
    complete = sorted(p for p in (out / "s").glob("[!.]*.tif") if p.name != "s_r006_c006.tif")
    assert len(complete) > len(listed) + len(unlisted)  # the engine's own unlisted chips (task 2) too
    kept = {p.name: identity(p) for p in complete}
    dead, alive = dead_pid(), os.getppid()
    stale = [out / "s" / f".s_r006_c007.tif.{dead}-{HOST_TAG}.tmp.tif", out / f".tiles.gpkg.{dead}-{HOST_TAG}.tmp.gpkg"]
    stale.append(out / f".tiles.gpkg.{dead}-{HOST_TAG}.tmp.gpkg-journal")
    live = out / "s" / f".s_r006_c008.tif.{alive}-{HOST_TAG}.tmp.tif"  # another process is writing it
    for p in [*stale, live]:
        p.write_bytes(b"half a chip")
    try:
        again = tile_raster(path, out, size=64, compress="zstd", workers=2)
        assert again.resumed == len(complete)
        assert again.written == 128 - len(complete)
        assert {p.name: identity(p) for p in complete} == kept  # not rewritten
        assert not any(p.exists() for p in stale)
        assert live.exists()
        assert chip_bytes(out / "s") == chip_bytes(ref_dir)  # the wrong chip was redone
        assert read_index(out / "tiles.gpkg") == read_index(reference.index_path)
    finally:
        live.unlink(missing_ok=True)


def test_a_running_job_rewrites_its_index_as_chips_finish(scene, tmp_path, monkeypatch):
    """With the checkpoint interval at 0 the index on disk always lists every finished chip."""
    import geolabel.tileindex

    monkeypatch.setattr(geolabel.tileindex, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(geolabel.tileindex, "CHECKPOINT_COST_RATIO", 0.0)
    path, _ = scene
    out = tmp_path / "out"
    seen = []

    def look(fraction: float) -> None:
        if fraction < 1.0:
            listed, _, _ = read_index(out / "tiles.gpkg")
            seen.append((round(fraction * 128), len(listed), index_status(out / "tiles.gpkg")))

    tile_raster(path, out, size=64, compress="zstd", workers=1, progress=look)
    assert len(seen) >= 3  # one per task (32 chips, fewer towards the end)
    assert all(finished == listed for finished, listed, _ in seen), seen
    assert {status for *_, status in seen} == {"incomplete"}


def test_an_interruption_before_any_chip_leaves_no_trace(scene, tmp_path):
    path, _ = scene
    out = tmp_path / "new"

    def cancelled() -> bool:
        return True

    with pytest.raises(Exception, match="cancelled"):
        tile_raster(path, out, size=64, workers=1, is_cancelled=cancelled)
    assert not out.exists()


def test_overwrite_also_deletes_chips_the_index_did_not_list(scene, tmp_path):
    """A killed run's unlisted chips were made with the old options: after --overwrite no
    later resume may keep them, even when their size and georeferencing match."""
    import rasterio
    from rasterio.windows import Window

    path, reference = scene
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        tile_raster(path, out, size=64, compress="zstd", workers=1, progress=Interrupt(0.01))
    stale = out / "s" / "s_r007_c015.tif"
    shutil.copy2(reference.out_dir / "s" / stale.name, stale)  # finished, never listed
    with pytest.raises(KeyboardInterrupt):  # other band order, interrupted before reaching that chip
        tile_raster(
            path, out, size=64, compress="zstd", bands=[3, 2, 1], workers=1, overwrite=True, progress=Interrupt(0.01)
        )
    result = tile_raster(path, out, size=64, compress="zstd", bands=[3, 2, 1], workers=1)
    assert result.resumed == 64 and result.written == 64  # the two tasks of the interrupted run
    with rasterio.open(stale) as chip, rasterio.open(path) as src:
        assert (chip.read() == src.read([3, 2, 1], window=Window(960, 448, 64, 64))).all()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return village_store(tmp_path_factory.mktemp("export"), size=512)


def kill_between_renames(ds: Path) -> tuple[Path, Path]:
    """The state replace_dir leaves when killed after moving the old dataset aside."""
    pid = dead_pid()
    old = ds.with_name(f".{ds.name}.{pid}-{HOST_TAG}.old")
    os.replace(ds, old)
    tmp = ds.with_name(f".{ds.name}.{pid}-{HOST_TAG}.tmp")
    (tmp / "labels").mkdir(parents=True)
    (tmp / "labels" / "half.geojson").write_text("{")
    return old, tmp


def test_an_export_killed_between_its_renames_gets_its_old_dataset_back(store, tmp_path):
    labels, tiles = store
    ds = tmp_path / "ds"
    export_dataset(labels, tiles, ds, formats="geojson,masks", workers=1)
    before = dataset_state(ds)
    old, tmp = kill_between_renames(ds)
    assert not ds.exists()
    with (
        pytest.warns(RecoveredOutputWarning, match=re.escape(old.name)),
        pytest.raises(OutputExistsError, match="overwrite=True"),  # as if it had never been touched
    ):
        export_dataset(labels, tiles, ds, formats="geojson,masks", workers=1)
    assert dataset_state(ds) == before
    assert not old.exists() and not tmp.exists()


def test_overwriting_after_a_killed_export_replaces_the_restored_dataset(store, tmp_path):
    labels, tiles = store
    ds = tmp_path / "ds"
    export_dataset(labels, tiles, ds, formats="geojson", seed=1, workers=1)
    reference = tmp_path / "reference"
    export_dataset(labels, tiles, reference, formats="geojson,masks", workers=1)
    old, tmp = kill_between_renames(ds)
    with pytest.warns(RecoveredOutputWarning):
        export_dataset(labels, tiles, ds, formats="geojson,masks", workers=1, overwrite=True)
    assert dataset_state(ds) == dataset_state(reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "reference"]


@pytest.mark.parametrize("nodata", [0, None], ids=["nodata value", "padding mask"])
def test_kept_chips_get_the_nodata_fraction_they_were_written_with(tmp_path, nodata):
    """Chips found on disk are counted again from their pixels (nodata value or mask): the
    index of the resumed run equals an uninterrupted run's, padded edge chips included."""
    path = make_scene(tmp_path / "e.tif", width=1000, height=500, count=3, block=None, nodata=nodata, collar=100)
    reference = tile_raster(path, tmp_path / "reference", size=64, workers=1)
    assert any(0 < r.nodata_fraction < 1 for r in reference.chips)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        tile_raster(path, out, size=64, workers=1, progress=Interrupt(0.01))
    listed = len(read_index(out / "tiles.gpkg")[0])
    on_disk = len(chip_bytes(out / "e"))
    assert on_disk > listed  # unlisted chips to count again
    again = tile_raster(path, out, size=64, workers=1)
    assert again.resumed == on_disk
    assert read_index(out / "tiles.gpkg") == read_index(reference.index_path)
    assert chip_bytes(out / "e") == chip_bytes(reference.out_dir / "e")


def test_a_sweep_leaves_temporaries_of_other_machines_until_they_are_a_day_old(tmp_path):
    """A shared output folder (NFS, cluster workers): the pid in another machine's temporary
    name says nothing about this machine's processes."""
    pattern = temp_pattern(r".+\.tif", r"\.tif")
    dead = dead_pid()
    mine = tmp_path / f".a.tif.{dead}-{HOST_TAG}.tmp.tif"
    foreign_new = tmp_path / f".b.tif.{dead}-0123abcd.tmp.tif"
    foreign_old = tmp_path / f".c.tif.{dead}-0123abcd.tmp.tif"
    for p in (mine, foreign_new, foreign_old):
        p.write_bytes(b"half a chip")
    day_ago = os.stat(foreign_old).st_mtime - 25 * 3600
    os.utime(foreign_old, (day_ago, day_ago))
    assert HOST_TAG != "0123abcd"
    removed = sweep_stale(tmp_path, pattern)
    assert sorted(p.name for p in removed) == sorted([mine.name, foreign_old.name])
    assert foreign_new.exists() and not mine.exists() and not foreign_old.exists()


def test_a_qa_report_killed_between_its_renames_gets_its_old_report_back(store, tmp_path):
    from click.testing import CliRunner

    from geolabel.cli import main

    labels, _tiles = store
    qa = tmp_path / "qa"
    first = CliRunner().invoke(main, ["check", str(labels), "--out", str(qa), "-q"])
    assert first.exit_code == 1 and (qa / "findings.json").exists()  # the sample's pond overlaps
    before = dataset_state(qa)
    old, tmp = kill_between_renames(qa)
    again = CliRunner().invoke(main, ["check", str(labels), "--out", str(qa), "-q"])
    assert again.exit_code == 2 and "already exists; pass --overwrite" in again.output
    assert f"restored the previous version from {old.name}" in again.output
    assert dataset_state(qa) == before and not old.exists() and not tmp.exists()
