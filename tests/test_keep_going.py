"""``tile --keep-going``: scenes and chips that fail are listed at the end and in the index;
the rest of the batch is done, and a rerun retries only what failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from geolabel.tileindex import failures, is_complete, read_index
from tests.badinput import assert_one_line_error, run_geolabel
from tests.conftest import make_scene
from tests.test_blockcopy import damage_block


@pytest.fixture
def batch(tmp_path) -> Path:
    """good.tif (6 chips), damaged.tif (4 chips, block x=2 damaged), broken.tif (not a raster)."""
    make_scene(tmp_path / "good.tif", width=768, height=512, nodata=None, seed=1)
    damaged = make_scene(tmp_path / "damaged.tif", width=1024, height=256, nodata=None, seed=2)
    damage_block(damaged, where="checksum")
    (tmp_path / "broken.tif").write_text("not a raster\n")
    return tmp_path


def test_failed_scenes_and_chips_are_listed_and_the_rest_is_done(batch):
    res = run_geolabel("tile", "good.tif", "broken.tif", "damaged.tif", "--out", "out", "--size", "256",
                       "--keep-going", "-q", cwd=batch)  # fmt: skip
    assert res.code == 1, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert lines[0].startswith("geolabel: failed: not tiled: broken.tif: not a raster GDAL can read")
    assert lines[1].startswith("geolabel: failed: 2 chips of damaged (first damaged_r000_c002): damaged.tif: ")
    assert "X offset 2, Y offset 0" in lines[1]
    assert lines[2].startswith("geolabel: 2 problem(s); the rest is done")
    index = batch / "out" / "tiles.gpkg"
    chips, _, _ = read_index(index)
    assert sorted(r.tile_id for r in chips if r.scene == "damaged") == ["damaged_r000_c000", "damaged_r000_c001"]
    assert sum(r.scene == "good" for r in chips) == 6
    assert is_complete(index)  # the run ended: export and check accept the index
    listed = failures(index)
    assert [(f.scene, f.tile_id) for f in listed] == [
        ("broken.tif", ""),
        ("damaged", "damaged_r000_c002"),
        ("damaged", "damaged_r000_c003"),
    ]


def test_a_rerun_after_the_repair_makes_only_what_failed(batch):
    args = ["tile", "good.tif", "damaged.tif", "--out", "out", "--size", "256", "--keep-going"]
    assert run_geolabel(*args, "-q", cwd=batch).code == 1
    good_before = {p.name: p.stat().st_mtime_ns for p in (batch / "out" / "good").iterdir()}
    make_scene(batch / "damaged.tif", width=1024, height=256, nodata=None, seed=2)  # the site sends it again
    res = run_geolabel(*args, cwd=batch)
    assert res.code == 0, res.stderr
    assert "damaged: 4 grid cells -> 2 chips written, 2 by block copy, 2 already done" in res.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (batch / "out" / "good").iterdir()} == good_before
    assert failures(batch / "out" / "tiles.gpkg") == []
    assert len(read_index(batch / "out" / "tiles.gpkg")[0]) == 10


def test_without_keep_going_the_first_bad_scene_stops_the_run(batch):
    res = run_geolabel("tile", "good.tif", "broken.tif", "--out", "out", "--size", "256", cwd=batch)
    assert_one_line_error(res, code=2, file="broken.tif", contains="not a raster")
    assert not (batch / "out").exists()


def test_when_every_scene_fails_keep_going_says_the_first_in_one_line(batch):
    (batch / "empty.tif").write_bytes(b"")
    res = run_geolabel("tile", "broken.tif", "empty.tif", "--out", "out", "--keep-going", cwd=batch)
    assert_one_line_error(res, code=2, file="broken.tif")
    assert not (batch / "out").exists()


def test_library_lists_the_failures_in_the_result(batch):
    from geolabel import tile_raster

    result = tile_raster([batch / "damaged.tif"], batch / "lib", size=256, workers=1, keep_going=True)
    assert result.written == 2
    assert {f.tile_id for f in result.failed} == {"damaged_r000_c002", "damaged_r000_c003"}
    assert all("reading or writing chips failed" in f.reason for f in result.failed)
